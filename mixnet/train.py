r"""Trains a mixnet model: the main job.

  python -m mixnet.train --config=experiments/base.py --workdir=/tmp/mixnet/base
  python -m mixnet.train --config=experiments/base.py:tiny --workdir=/tmp/mixnet/tiny \
      --config.data.raw_dir=my/raw --config.data.mixed_dir=my/mixed

Run the same command again to resume from the last checkpoint. This file is intentionally kept
short: the logic lives in `mixnet.train_lib`, which tests and notebooks import. Nothing imports
this module (it defines the absl flags).
"""

import jax
import tensorflow as tf
from absl import app, flags, logging
from ml_collections import config_flags

from mixnet import train_lib

_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and prepared data.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Run on several hosts: calls jax.distributed.initialize(), which finds "
    "the cluster by itself on Cloud TPU pods, SLURM and Open MPI. Start the same command on "
    "every host.")
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. experiments/base.py:tiny.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # TensorFlow only feeds data; keep it off the accelerators JAX needs.
  tf.config.set_visible_devices([], "GPU")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.info("JAX process %d/%d, %d local / %d global devices (%s)", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  train_lib.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)

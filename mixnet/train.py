r"""Trains a mixnet model: the main job.

  python -m mixnet.train --config=experiments/base.py --workdir=/tmp/mixnet/base
  python -m mixnet.train --config=experiments/base.py:tiny --workdir=/tmp/mixnet/tiny \
      --config.data.raw_dir=my/raw --config.data.mixed_dir=my/mixed

Run the same command again to resume from the last checkpoint. The terminal shows one progress
line, the eval results and warnings that need action; everything else (Orbax, TFDS, absl INFO)
goes to `WORKDIR/train.INFO`, or also to the terminal with `--verbosity=0` (or higher).

This file is intentionally kept short: the logic lives in `mixnet.train_lib`, which tests and
notebooks import. Nothing imports this module (it defines the absl flags).
"""

import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

# `cli` first: it quiets TensorFlow's C++ notices before train_lib loads TensorFlow.
from mixnet import cli, parallel, train_lib

_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and prepared data.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Run on several hosts: calls jax.distributed.initialize(), which finds "
    "the cluster by itself on Cloud TPU pods, SLURM and Open MPI. Start the same command on "
    "every host.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "With --multihost where the cluster is not detected: "
    "host:port of process 0, reachable from every host.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "With --coordinator_address: how many processes the run has.")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "With --coordinator_address: this process's index, 0 on the host "
    "whose address is the coordinator's.")
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. experiments/base.py:tiny.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_start():
  """Until the log file is open, the terminal keeps only warnings (unless --verbosity)."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


class _MixnetWarnings:
  """Passes warnings logged by mixnet's own modules (the ones that need the user's action)."""

  def __init__(self):
    self.prefix = os.path.dirname(os.path.abspath(__file__)) + os.sep

  def filter(self, record):
    return (_STANDARD_WARNING <= record.levelno < _STANDARD_ERROR
            and os.path.abspath(record.pathname).startswith(self.prefix))


# The levels handlers see (Python's numbering, where absl's runs the other way).
_STANDARD_WARNING = logging.converter.absl_to_standard(logging.WARNING)
_STANDARD_ERROR = logging.converter.absl_to_standard(logging.ERROR)


def _route_logs(workdir):
  """All log lines to WORKDIR/train.INFO on process 0; the terminal gets mixnet's warnings.

  Library warnings (TFDS deprecations, Orbax) stay in the file; errors reach the terminal from
  anywhere. Other processes write no log file (their terminal keeps warnings). With --verbosity
  given, every line at that level also reaches the terminal. Returns the log file's path (or
  None).
  """
  verbose = flags.FLAGS["verbosity"].present
  if not parallel.is_primary():
    return None
  path = cli.log_to_file(workdir, "train")
  if verbose:
    flags.FLAGS.alsologtostderr = True
    return path
  logging.set_verbosity(logging.INFO)
  logging.set_stderrthreshold("error")
  console = logging.PythonHandler(sys.stderr)
  console.addFilter(_MixnetWarnings())
  logging.get_absl_logger().addHandler(console)
  return path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _MULTIHOST.value and _COORDINATOR.value:
    raise app.UsageError("--coordinator_address needs --multihost")
  import tensorflow as tf  # Loaded by train_lib, after `cli`.

  # TensorFlow only feeds data; keep it off the accelerators JAX needs.
  tf.config.set_visible_devices([], "GPU")
  _quiet_start()
  if _MULTIHOST.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  workdir = _WORKDIR.value
  log_path = _route_logs(workdir)
  logging.info("JAX process %d/%d, %d local / %d global devices (%s)", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  if log_path:
    print(f"Training in {workdir}: log {log_path}, TensorBoard: tensorboard --logdir {workdir}",
          flush=True)
  state = train_lib.train_and_evaluate(flags.FLAGS.config, workdir, show_progress=True)
  if parallel.is_primary():
    print(f"Done at step {int(state.step)}. Checkpoints: {workdir}/checkpoints (latest), "
          f"{workdir}/best (lowest val_loss; inference uses it).", flush=True)


if __name__ == "__main__":
  cli.run(main)

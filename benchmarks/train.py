"""Training throughput of the real data-parallel step fed by the real input pipeline.

Run:
  .venv/bin/python benchmarks/train.py
  .venv/bin/python benchmarks/train.py --configs base.py:tiny --steps 100

Per config it prints: jit compile time of the sharded train step, steps/s, seconds of audio
trained per second, and the share of wall time the loop spent waiting for the next input batch
(target: under 10%). Data: synthetic demo pairs at the config's rate, prepared once into a
temporary folder. Uses every device JAX sees (simulate several on a CPU with
XLA_FLAGS=--xla_force_host_platform_device_count=N). Figures depend on what else runs on the
CPU: the header shows the load average.
"""

import argparse
import os
import tempfile
import time

import jax

from mixnet import models, train_lib
from mixnet.data import prepare


def benchmark(config, data_dir, steps):
  """One table row (a dict) for `config`."""
  mesh = train_lib.make_mesh()
  model = models.build(config.model)
  tx, _ = train_lib.create_optimizer(config.opt, config.train.num_steps)
  state = train_lib.replicate(mesh, train_lib.create_train_state(
      config, model, tx, jax.random.key(0)))
  p_train, _ = train_lib.make_parallel_steps(mesh, model, tx, config)
  local_batch = config.train.per_device_batch * jax.local_device_count()
  batches = train_lib.train_iterator(config.data, data_dir, local_batch, seed=0)

  start = time.perf_counter()
  state, m = p_train(state, train_lib.shard_batch(mesh, next(batches)))
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - start

  wait = 0.0
  start = time.perf_counter()
  for _ in range(steps):
    t0 = time.perf_counter()
    batch = next(batches)
    wait += time.perf_counter() - t0
    state, m = p_train(state, train_lib.shard_batch(mesh, batch))
  jax.block_until_ready(m)
  total = time.perf_counter() - start
  global_batch = config.train.per_device_batch * jax.device_count()
  return {
      "config": f"{config.model.name}",
      "batch": f"{global_batch}x{config.data.segment_seconds:g}s",
      "compile_s": compile_s,
      "steps_per_s": steps / total,
      "audio_s_per_s": steps * global_batch * config.data.segment_seconds / total,
      "input_wait": wait / total,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="base.py:tiny,base.py,spectral.py:tiny,spectral.py",
                      help="experiments/ files with optional :preset, comma-separated")
  parser.add_argument("--steps", type=int, default=30, help="timed steps per config")
  args = parser.parse_args()
  print(f"# devices: {jax.device_count()} x {jax.devices()[0].platform}; load average "
        f"{os.getloadavg()[0]:.1f}")
  print(f"{'config':<22}{'model':<15}{'batch':>10}{'compile s':>11}{'steps/s':>9}"
        f"{'audio s/s':>11}{'input wait':>12}")
  with tempfile.TemporaryDirectory() as tmp:
    for spec in args.configs.split(","):
      path = os.path.join(os.path.dirname(__file__), "..", "experiments", spec)
      config = _load(path)
      data_dir = os.path.join(tmp, f"data_{config.data.sample_rate}")
      prepare.prepare_from_config(config.data, data_dir, os.path.join(tmp, "demo"),
                                  show_progress=False)
      row = benchmark(config, data_dir, args.steps)
      print(f"{spec:<22}{row['config']:<15}{row['batch']:>10}{row['compile_s']:>11.1f}"
            f"{row['steps_per_s']:>9.2f}{row['audio_s_per_s']:>11.1f}"
            f"{100 * row['input_wait']:>11.1f}%", flush=True)


def _load(path):
  """get_config(preset) of an experiments file named `file.py[:preset]`."""
  import importlib.util

  file, _, preset = path.partition(":")
  spec = importlib.util.spec_from_file_location("bench_config", file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset) if preset else module.get_config()


if __name__ == "__main__":
  main()

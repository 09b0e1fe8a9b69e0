"""Training throughput of the real data-parallel step fed by the real input pipeline, and the
cost of resuming.

Run:
  .venv/bin/python benchmarks/train.py
  .venv/bin/python benchmarks/train.py --configs base.py:tiny --steps 100
  .venv/bin/python benchmarks/train.py --configs base.py:tiny --resume_steps 100,100000

Throughput, per config: jit compile time of the sharded train step, steps/s, seconds of audio
trained per second, and the share of wall time the loop spent waiting for the next input batch
(target: under 10%).

Resume (`--resume_steps`): for each step S, a train state saved at step S in a fresh workdir
(same data, same config), then `train_lib.train_and_evaluate` run to step S + 1 from it. The
table shows the seconds from the call to the first resumed batch (restore + input pipeline) and
the whole one-step run (also compile, the step, the final validation and save). A step's batch
is a function of (seed, step), so both should be equal within noise whatever S is.

Data: synthetic demo pairs at the config's rate, prepared once into a temporary folder. Uses
every device JAX sees (simulate several on a CPU with
XLA_FLAGS=--xla_force_host_platform_device_count=N). Figures depend on what else runs on the
CPU: the header shows the load average.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import load_config  # noqa: E402

from mixnet import checkpoints, models, optimizer, parallel, train_lib  # noqa: E402
from mixnet.data import prepare  # noqa: E402


def benchmark(config, data_dir, steps):
  """One throughput table row (a dict) for `config`."""
  mesh = parallel.make_mesh()
  model = models.build(config.model)
  tx, _ = optimizer.create_optimizer(config.opt, config.train.num_steps)
  state = parallel.replicate(mesh, train_lib.create_train_state(
      config, model, tx, jax.random.key(0)))
  p_train, _ = train_lib.make_parallel_steps(mesh, model, tx, config)
  local_batch = config.train.per_device_batch * jax.local_device_count()
  batches = train_lib.train_iterator(config.data, data_dir, local_batch, seed=0)

  start = time.perf_counter()
  state, m = p_train(state, parallel.shard_batch(mesh, next(batches)))
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - start

  wait = 0.0
  start = time.perf_counter()
  for _ in range(steps):
    t0 = time.perf_counter()
    batch = next(batches)
    wait += time.perf_counter() - t0
    state, m = p_train(state, parallel.shard_batch(mesh, batch))
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


def resume_cost(config, data_dir, saved_step, workdir):
  """(seconds to the first resumed batch, seconds of the whole run to `saved_step + 1`).

  `config.data` must name the pairs `data_dir` was prepared from, so the run reuses the shards.
  """
  config = config.copy_and_resolve_references()
  config.data.data_dir = data_dir
  config.train.num_steps = saved_step + 1
  model = models.build(config.model)
  tx, _ = optimizer.create_optimizer(config.opt, config.train.num_steps)
  state = train_lib.create_train_state(config, model, tx, jax.random.key(0))
  state = state.replace(step=jnp.asarray(saved_step, jnp.int32))
  ckpts = checkpoints.RunCheckpoints(workdir)
  ckpts.save_latest(saved_step, state, state.export_params(),
                    checkpoints.make_meta(config, saved_step))
  ckpts.wait()
  ckpts.close()
  first_batch = {}
  real = train_lib.train_iterator

  def timed_iterator(*args, **kwargs):
    batches = real(*args, **kwargs)
    batch = next(batches)
    first_batch.setdefault("s", time.perf_counter() - start)
    yield batch
    yield from batches

  train_lib.train_iterator = timed_iterator
  try:
    start = time.perf_counter()
    train_lib.train_and_evaluate(config, workdir)
  finally:
    train_lib.train_iterator = real
  return first_batch["s"], time.perf_counter() - start


def _prepared(config, tmp):
  """Prepares the config's data (the demo pairs unless it names folders) once, in `tmp`.

  Points `config.data` at the prepared pairs, so training runs reuse the shards.
  """
  data_dir = os.path.join(tmp, f"data_{config.data.sample_rate}")
  summary = prepare.prepare_from_config(config.data, data_dir, os.path.join(tmp, "demo"),
                                        show_progress=False)
  config.data.raw_dir = summary["settings"]["raw_dir"]
  config.data.mixed_dir = summary["settings"]["mixed_dir"]
  return data_dir


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="base.py:tiny,base.py,spectral.py:tiny,spectral.py",
                      help="experiments/ files with optional :preset, comma-separated")
  parser.add_argument("--steps", type=int, default=30, help="timed steps per config")
  parser.add_argument("--resume_steps", default="",
                      help="comma-separated saved steps to time a resume from (no throughput)")
  args = parser.parse_args()
  print(f"# devices: {jax.device_count()} x {jax.devices()[0].platform}; load average "
        f"{os.getloadavg()[0]:.1f}")
  with tempfile.TemporaryDirectory() as tmp:
    if args.resume_steps:
      print(f"{'config':<22}{'saved step':>12}{'first batch s':>15}{'1-step run s':>14}")
      for spec in args.configs.split(","):
        config = load_config(spec)
        data_dir = _prepared(config, tmp)
        for i, saved in enumerate(map(int, args.resume_steps.split(","))):
          workdir = os.path.join(tmp, f"run{i}")
          first, whole = resume_cost(config, data_dir, saved, workdir)
          print(f"{spec:<22}{saved:>12}{first:>15.2f}{whole:>14.2f}", flush=True)
      return
    print(f"{'config':<22}{'model':<15}{'batch':>10}{'compile s':>11}{'steps/s':>9}"
          f"{'audio s/s':>11}{'input wait':>12}")
    for spec in args.configs.split(","):
      config = load_config(spec)
      row = benchmark(config, _prepared(config, tmp), args.steps)
      print(f"{spec:<22}{row['config']:<15}{row['batch']:>10}{row['compile_s']:>11.1f}"
            f"{row['steps_per_s']:>9.2f}{row['audio_s_per_s']:>11.1f}"
            f"{100 * row['input_wait']:>11.1f}%", flush=True)


if __name__ == "__main__":
  main()

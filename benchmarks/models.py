"""Speed and size of each model and config preset on this machine's CPU.

Run:
  .venv/bin/python benchmarks/models.py
  .venv/bin/python benchmarks/models.py --models time_unet --presets base --repeats 5

Per model and preset it prints: parameters, forward GFLOPs per second of audio (XLA's count),
compile time of the jitted forward pass, train-step time (jitted value_and_grad of combined_loss
on per_device_batch x segment_seconds from the config) and the inference real-time factor
(seconds of audio per wall-clock second, jitted apply on a [batch, chunk] batch of mono audio).
Figures depend on what else runs on the CPU: the header shows the load average.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import base
from mixnet import losses, models


def _timed(fn, *args, repeats):
  """(first call seconds, best of `repeats` later calls), blocking on the results."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - start
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
  return first, best


def benchmark(name, preset, infer_batch, infer_seconds, repeats):
  """One table row (a dict) for model `name` in config `preset`."""
  config = base.get_config(preset)
  config.model.name = name
  sample_rate = config.sample_rate
  model = models.build(config.model)
  rng = np.random.default_rng(0)

  audio = jnp.asarray(rng.standard_normal(
      (infer_batch, int(infer_seconds * sample_rate), config.model.channels)) * 0.1, jnp.float32)
  params = jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x)["params"])(audio[:1, :4096])
  apply = jax.jit(lambda p, x: model.apply({"params": p}, x))
  compile_s, infer_s = _timed(apply, params, audio, repeats=repeats)

  segment = int(config.data.segment_seconds * sample_rate)
  batch = config.train.per_device_batch
  raw = jnp.asarray(rng.standard_normal((batch, segment, config.model.channels)) * 0.1,
                    jnp.float32)
  mixed = 0.5 * raw

  @jax.jit
  def train_grads(params, raw, mixed):
    loss_fn = lambda p: losses.combined_loss(model.apply({"params": p}, raw), mixed,
                                             config.loss)[0]
    return jax.value_and_grad(loss_fn)(params)

  train_compile_s, train_s = _timed(train_grads, params, raw, mixed, repeats=repeats)
  return {
      "model": name,
      "preset": preset,
      "params": f"{models.param_count(config.model) / 1e6:.2f}M",
      "GFLOP/s_audio": f"{models.flops_per_second(config.model, sample_rate) / 1e9:.2f}",
      "rf_s": f"{models.receptive_field(config.model) / sample_rate:.2f}",
      "compile_s": f"{compile_s:.1f}",
      "train_compile_s": f"{train_compile_s:.1f}",
      "train_step": f"{train_s * 1e3:.0f}ms ({batch}x{config.data.segment_seconds:g}s)",
      "infer_rtf": f"{infer_batch * infer_seconds / infer_s:.0f}x",
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", nargs="+", default=["time_unet", "spectral_unet"])
  parser.add_argument("--presets", nargs="+", default=["base", "tiny"])
  parser.add_argument("--infer_batch", type=int, default=4)
  parser.add_argument("--infer_seconds", type=float, default=4.0)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; inference on "
        f"[{args.infer_batch}, {args.infer_seconds:g} s] mono at the config's sample rate")
  rows = [benchmark(name, preset, args.infer_batch, args.infer_seconds, args.repeats)
          for name in args.models for preset in args.presets]
  columns = list(rows[0])
  widths = [max(len(c), *(len(r[c]) for r in rows)) for c in columns]
  print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
  for row in rows:
    print("  ".join(row[c].ljust(w) for c, w in zip(columns, widths, strict=True)))


if __name__ == "__main__":
  main()

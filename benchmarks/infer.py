"""Real-time factor of `mixnet.infer.process_file` on a 3-minute 44.1 kHz mono vocal, per engine.

Run:
  .venv/bin/python benchmarks/infer.py
  .venv/bin/python benchmarks/infer.py --configs base.py,chain.py --minutes 0.5
  .venv/bin/python benchmarks/infer.py --configs base.py --chunk_seconds 24.4,30.5,48
  .venv/bin/python benchmarks/infer.py --chain_stages
  .venv/bin/python benchmarks/infer.py --cold_start --configs base.py --minutes 0.5

For each model config a real Orbax checkpoint of freshly initialised parameters is written (speed
does not depend on the weights' values) and loaded by `AudioProcessor`; the DSP row runs
`--preset`. All rows are measured in one run, in rounds (every engine once per round, best of
`--repeats` rounds), because this shared machine's speed varies between runs and over minutes:
ratios within one run are what count. The header shows the load average.

Columns of the speed table, per engine:
  compile s     compiling every shape a call can run (`AudioProcessor.compile`);
  model s       the jitted model alone over the take: the take's length over its throughput
                on its full chunk shape (samples per second, context samples counted as
                samples: nothing is computed twice; no glue, no I/O), summed over stages;
  chunks s      the jitted model over the chunks `process_file` runs (context included);
  process s     the whole `process_file` call: read, chunked inference, DC block, silence
                gate, loudness, limiter, summary, atomic write;
  x real time   the take's duration / process s; `vs unet`: that over base time_unet's;
  overhead      process s / model s - 1 (everything that is not the model on new audio);
                `outside`: process s / chunks s - 1 (what is not a model call).
Targets: hybrid >= 0.8x and chain >= 5x base time_unet; overhead <= 15% for every engine.

The profile table splits `process_file` of each engine into its parts, each timed alone on the
same arrays (best of `--repeats`). `--chain_stages` times each stage of the base chain on its
full chunk shape (EQ FIR, compressor, saturation, impulse response, reverb convolution).

`--cold_start`: each config's parameters are written as a model file (`mixnet.model_file`) and a
fresh Python process loads it and mixes the take with `process_vocal`, timing each phase up to
the first output: importing mixnet.infer (JAX included), loading the file and building the
model, the first call (compiles, then mixes), and a second call (the same work, compiled).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import infer_profile as profile  # benchmarks/infer_profile.py, beside this file
import jax
import jax.numpy as jnp
import numpy as np

from mixnet import audio, checkpoints, chunking, infer, model_file, models
from mixnet.data import synthetic


def _load_config(spec):
  file, _, preset = spec.partition(":")
  path = os.path.join(os.path.dirname(__file__), "..", "experiments", file)
  module_spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset) if preset else module.get_config()


def write_checkpoint(config, workdir):
  """Saves freshly initialised parameters as the run's best checkpoint."""
  model = models.build(config.model)
  params = models.init_variables(model, jax.random.key(0),
                                 jnp.zeros((1, 4096, config.model.channels)))["params"]
  ckpts = checkpoints.RunCheckpoints(workdir)
  ckpts.save_best(0, params, checkpoints.make_meta(config, 0, 0.0), 0.0)
  ckpts.wait()
  ckpts.close()


_COLD_START = """
import sys, time
t0 = time.perf_counter()
import numpy as np
from mixnet import AudioProcessor, audio
x_tc, sr = audio.load(sys.argv[2])
t1 = time.perf_counter()
processor = AudioProcessor(use_ml_model=True, model_path=sys.argv[1], strict=True)
t2 = time.perf_counter()
np.asarray(processor.process_vocal(x_tc, sample_rate=sr))
t3 = time.perf_counter()
processor.process_vocal(x_tc, sample_rate=sr)
t4 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f} {t4 - t3:.2f}")
"""


def cold_start(config, folder, in_path):
  """Seconds of each phase of a fresh process that loads a model file and mixes `in_path`."""
  model = models.build(config.model)
  params = models.init_variables(model, jax.random.key(0),
                                 jnp.zeros((1, 4096, config.model.channels)))["params"]
  path = model_file.save(os.path.join(folder, "model.mixnet"), jax.tree.map(np.asarray, params),
                         checkpoints.make_meta(config, 0, 0.0))
  t0 = time.perf_counter()
  done = subprocess.run([sys.executable, "-c", _COLD_START, path, in_path], check=True,
                        capture_output=True, text=True)
  total = time.perf_counter() - t0
  return [float(v) for v in done.stdout.split()] + [total]


def model_seconds(backend, length):
  """(model s, chunks s) of a model engine over a mono take of `length` samples.

  model s: each stage's seconds per full-chunk call (`stage.batch_size` chunks) divided by all
  the samples of that call (its context included), times `length`: what the model costs over
  the take with nothing computed twice; chunks s: the stage's calls over the chunks that
  `engines.run_stages` runs for the take (inputs of the right shapes, at -20 dBFS), so
  chunks s - model s is what the context and the last chunk's padding cost.
  """
  noise = 0.1 * np.random.default_rng(0).standard_normal((1, 1 << 22, 1)).astype(np.float32)
  model, chunks = 0.0, 0.0
  reach = sum(stage.plan.right for stage in backend.stages[1:])
  for stage in backend.stages:
    plan = stage.plan
    inputs = {(b, n): jnp.asarray(np.resize(noise, (b, n, 1))) for b, n in stage.shapes()}
    full_batch = inputs[(stage.batch_size, plan.chunk)]
    full = profile.best_seconds(lambda s=stage, x=full_batch: s.apply(x), 2)
    model += full / (stage.batch_size * plan.chunk) * length
    hops = plan.cover(length + reach)
    for k, count in chunking.batches(hops, stage.batch_size):
      x = inputs[(count, plan.length(hops[k]))]
      chunks += profile.best_seconds(lambda s=stage, x=x: s.apply(x), 1)
  return model, chunks


def _row(name, processor, in_path, out_path, length):
  """One engine of the speed table; its timings are filled in by `measure`."""
  compile_s = processor.compile()
  return {"name": name, "processor": processor, "compile": compile_s,
          "process": float("inf"), "model": float("inf"), "chunks": float("inf"),
          "run": lambda: infer.process_file(in_path, out_path, processor=processor,
                                            overwrite=True),
          "length": length}


def measure(rows, repeats):
  """Times every row once per round, `repeats` rounds; keeps each row's best."""
  for _ in range(repeats):
    for row in rows:
      row["process"] = min(row["process"], profile.best_seconds(row["run"], 1))
      if row["processor"].engine == "model":
        model, chunks = model_seconds(row["processor"].backend, row["length"])
        row["model"], row["chunks"] = min(row["model"], model), min(row["chunks"], chunks)


def print_speed(rows, duration):
  """The speed table (see the module docstring)."""
  unet = next((r for r in rows if r["name"].endswith("(time_unet)")), None)
  print(f"{'engine':<24}{'compile s':>10}{'model s':>9}{'chunks s':>9}{'process s':>10}"
        f"{'x real time':>12}{'vs unet':>8}{'overhead':>9}{'outside':>8}")
  for r in rows:
    speed = duration / r["process"]
    ratio = f"{unet['process'] / r['process']:.2f}" if unet else "-"
    is_model = np.isfinite(r["model"])
    cells = ([f"{r['model']:.2f}", f"{r['chunks']:.2f}"] if is_model else ["-", "-"])
    over = ([f"{100 * (r['process'] / r['model'] - 1):.0f}%",
             f"{100 * (r['process'] / r['chunks'] - 1):.0f}%"] if is_model else ["-", "-"])
    print(f"{r['name']:<24}{r['compile']:>10.1f}{cells[0]:>9}{cells[1]:>9}{r['process']:>10.2f}"
          f"{speed:>12.0f}{ratio:>8}{over[0]:>9}{over[1]:>8}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="base.py,chain.py,hybrid.py")
  parser.add_argument("--preset", default="default", help="DSP preset of the fallback row")
  parser.add_argument("--minutes", type=float, default=3.0)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--chunk_seconds", type=lambda v: [float(h) for h in v.split(",")],
                      default=[], help="also run each config with these hops, one chunk "
                      "per call (comma-separated seconds), to compare chunk plans in one run")
  parser.add_argument("--cold_start", action="store_true",
                      help="time a fresh process loading a model file to its first output")
  parser.add_argument("--chain_stages", action="store_true",
                      help="time each stage of the base chain on its full chunk shape")
  args = parser.parse_args()
  sr = 44100
  print(f"# {args.minutes:g} min mono vocal at {sr} Hz; {jax.device_count()} x "
        f"{jax.devices()[0].platform}; load average {os.getloadavg()[0]:.1f}")
  if args.chain_stages:
    profile.chain_stages(_load_config("chain.py"), args.repeats)
    return
  with tempfile.TemporaryDirectory() as tmp:
    in_path = os.path.join(tmp, "vocal.wav")
    take_tc = synthetic.synth_vocal(60 * args.minutes, sr, seed=5)
    audio.save(in_path, take_tc, sr)
    if args.cold_start:
      print_cold_start(args.configs.split(","), tmp, in_path)
      return
    out_path = os.path.join(tmp, "mixed.wav")
    rows = []
    for spec in args.configs.split(","):
      config = _load_config(spec)
      workdir = os.path.join(tmp, spec.replace(":", "_"))
      write_checkpoint(config, workdir)
      processor = infer.AudioProcessor(use_ml_model=True, model_path=workdir, strict=True)
      rows.append(_row(f"{spec} ({config.model.name})", processor, in_path, out_path,
                       len(take_tc)))
      for hop_s in args.chunk_seconds:
        processor = infer.AudioProcessor(use_ml_model=True, model_path=workdir, strict=True,
                                         chunk_seconds=hop_s, batch_size=1)
        rows.append(_row(f"{spec} hop {hop_s:g} s", processor, in_path, out_path, len(take_tc)))
    rows.append(_row(f"dsp ({args.preset})", infer.AudioProcessor(preset=args.preset), in_path,
                     out_path, len(take_tc)))
    measure(rows, args.repeats)
    print_speed(rows, 60 * args.minutes)
    print(f"# load average {os.getloadavg()[0]:.1f}")
    print()
    profile.print_parts([(r["name"], r["processor"]) for r in rows], in_path, out_path,
                        args.repeats)


def print_cold_start(specs, folder, in_path):
  """The cold-start table: one fresh process per config."""
  print(f"{'model file':<28}{'import+read s':>14}{'load s':>8}{'first call s':>13}"
        f"{'second call s':>14}{'process total s':>16}")
  for spec in specs:
    phases = cold_start(_load_config(spec), folder, in_path)
    widths = (14, 8, 13, 14, 16)
    print(f"{spec:<28}" + "".join(f"{v:>{w}.2f}" for v, w in zip(phases, widths, strict=True)))


if __name__ == "__main__":
  main()

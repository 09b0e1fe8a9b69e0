"""Real-time factor of `mixnet.infer.process_file` on a 3-minute 44.1 kHz mono vocal.

Run:
  .venv/bin/python benchmarks/infer.py
  .venv/bin/python benchmarks/infer.py --configs base.py --minutes 1
  .venv/bin/python benchmarks/infer.py --cold_start --configs base.py --minutes 0.5

For each model config a real Orbax checkpoint of freshly initialised parameters is written (speed
does not depend on the weights' values) and loaded by `AudioProcessor`; the DSP fallback runs
with `--preset`. Printed per engine: compile time (the jitted chunk function, measured
separately), then the wall time and real-time factor (seconds of audio per second) of the whole
`process_file` call: reading, resampling if needed, chunked inference, limiter, atomic write. The
figure is the best of `--repeats` calls. Targets on 2 CPU cores: DSP >= 100x, base time_unet >=
50x. Figures depend on what else runs on the CPU: the header shows the load average.

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

import jax
import jax.numpy as jnp
import numpy as np

from mixnet import audio, checkpoints, infer, model_file, models
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
  params = model.init(jax.random.key(0), jnp.zeros((1, 4096, config.model.channels)))["params"]
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
  params = model.init(jax.random.key(0), jnp.zeros((1, 4096, config.model.channels)))["params"]
  path = model_file.save(os.path.join(folder, "model.mixnet"), jax.tree.map(np.asarray, params),
                         checkpoints.make_meta(config, 0, 0.0))
  t0 = time.perf_counter()
  done = subprocess.run([sys.executable, "-c", _COLD_START, path, in_path], check=True,
                        capture_output=True, text=True)
  total = time.perf_counter() - t0
  return [float(v) for v in done.stdout.split()] + [total]


def time_processing(processor, in_path, out_path, repeats):
  """(best seconds, summary) of `repeats` process_file calls."""
  best, summary = float("inf"), None
  for _ in range(repeats):
    start = time.perf_counter()
    summary = infer.process_file(in_path, out_path, processor=processor, overwrite=True)
    best = min(best, time.perf_counter() - start)
  return best, summary


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="base.py,spectral.py,base.py:tiny")
  parser.add_argument("--preset", default="default", help="DSP preset of the fallback row")
  parser.add_argument("--minutes", type=float, default=3.0)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--cold_start", action="store_true",
                      help="time a fresh process loading a model file to its first output")
  args = parser.parse_args()
  sr = 44100
  print(f"# {args.minutes:g} min mono vocal at {sr} Hz; {jax.device_count()} x "
        f"{jax.devices()[0].platform}; load average {os.getloadavg()[0]:.1f}")
  with tempfile.TemporaryDirectory() as tmp:
    in_path = os.path.join(tmp, "vocal.wav")
    audio.save(in_path, synthetic.synth_vocal(60 * args.minutes, sr, seed=5), sr)
    if args.cold_start:
      print(f"{'model file':<28}{'import+read s':>14}{'load s':>8}{'first call s':>13}"
            f"{'second call s':>14}{'process total s':>16}")
      for spec in args.configs.split(","):
        phases = cold_start(_load_config(spec), tmp, in_path)
        widths = (14, 8, 13, 14, 16)
        print(f"{spec:<28}" + "".join(f"{v:>{w}.2f}" for v, w in zip(phases, widths, strict=True)))
      return
    print(f"{'engine':<28}{'compile s':>10}{'process s':>11}{'x real time':>13}")
    out_path = os.path.join(tmp, "mixed.wav")
    duration = 60 * args.minutes
    for spec in args.configs.split(","):
      config = _load_config(spec)
      workdir = os.path.join(tmp, spec.replace(":", "_"))
      write_checkpoint(config, workdir)
      processor = infer.AudioProcessor(use_ml_model=True, model_path=workdir, strict=True)
      compile_s = processor.compile()
      seconds, _ = time_processing(processor, in_path, out_path, args.repeats)
      print(f"{spec + ' (' + config.model.name + ')':<28}{compile_s:>10.1f}{seconds:>11.2f}"
            f"{duration / seconds:>13.0f}", flush=True)
    processor = infer.AudioProcessor(preset=args.preset)
    seconds, _ = time_processing(processor, in_path, out_path, args.repeats)
    print(f"{'dsp (' + args.preset + ')':<28}{'-':>10}{seconds:>11.2f}{duration / seconds:>13.0f}")


if __name__ == "__main__":
  main()

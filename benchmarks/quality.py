"""Quality within a time budget: does a model trained on this CPU learn an unseen mixing style?

Run:
  .venv/bin/python benchmarks/quality.py                       # 30 minutes, tiny config
  .venv/bin/python benchmarks/quality.py --minutes=30 --config=experiments/base.py

1. Makes synthetic pairs in a style no test uses (`STYLE`: EQ, compression, saturation, reverb,
   loudness) on varied voices (pitch 95-330 Hz, sung and speech-like takes, varied levels): 120
   training pairs and 30 held-out pairs from other seeds.
2. Measures this machine's training speed for the config and sets `train.num_steps` so that
   training fills the budget, then trains with the project's own command
   (`python -m mixnet.train`).
3. Evaluates the held-out pairs with `python -m mixnet.report` (model and identity) and with a
   static EQ + loudness baseline: one fixed linear-phase filter whose magnitude is fitted by least
   squares (in dB, per frequency) to the training pairs' average spectra, then a gain to the
   training mixes' median loudness.
Prints model vs identity vs static EQ + loudness. Target: the model's MR-STFT at most half the
static baseline's, with loudness error under 0.5 LU.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import scipy.signal

from mixnet import audio, dsp, metrics
from mixnet.data import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 44100

STYLE = dsp.Preset(
    name="quality_benchmark",
    eq=(dsp.EqBand("highpass", 100.0),
        dsp.EqBand("low_shelf", 220.0, -2.0),
        dsp.EqBand("peaking", 1200.0, -2.5, 1.4),
        dsp.EqBand("peaking", 3200.0, 3.5, 1.0),
        dsp.EqBand("high_shelf", 9000.0, 4.0)),
    compressor=dsp.CompressorParams(threshold_db=-24.0, ratio=4.0, knee_db=6.0, attack_ms=8.0,
                                    release_ms=120.0),
    saturation=dsp.SaturationParams(drive_db=8.0, mix=0.35),
    reverb=dsp.ReverbParams(rt60_s=1.1, predelay_ms=20.0, damping=0.5, mix=0.18),
    output_lufs=-16.0,
)


def make_pairs(folder, count, seed, seconds):
  if os.path.exists(os.path.join(folder, "done")):
    return
  synthetic.write_pairs(folder, count, sample_rate=SR, seconds=seconds, preset=STYLE, seed=seed)
  open(os.path.join(folder, "done"), "w").close()


def _run(argv, log_path):
  with open(log_path, "w") as log:
    subprocess.run(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)


def _train_args(config, workdir, train_dir, steps, extra=()):
  return [sys.executable, "-m", "mixnet.train", f"--config={config}", f"--workdir={workdir}",
          f"--config.data.raw_dir={train_dir}/raw", f"--config.data.mixed_dir={train_dir}/mixed",
          f"--config.data.data_dir={workdir}/../data", f"--config.train.num_steps={steps}",
          f"--config.train.eval_every={max(1, steps // 5)}",
          f"--config.train.checkpoint_every={max(1, steps // 10)}",
          f"--config.train.log_every={max(1, steps // 50)}", *extra]


def measure_steps_per_second(config, work, train_dir, overrides):
  """Steps/s of a short real training run (after compilation), from its logged perf scalars."""
  calib = os.path.join(work, "calibration")
  shutil.rmtree(calib, ignore_errors=True)  # a leftover run would resume and log no speed
  _run(_train_args(config, calib, train_dir, 300, [*overrides, "--config.train.log_every=100",
                                                    "--config.train.eval_every=100000",
                                                    "--config.train.checkpoint_every=100000"]),
       os.path.join(work, "calibration.log"))
  with open(os.path.join(work, "calibration.log")) as f:
    rates = [float(line.split(" steps/s")[0].rsplit(None, 1)[1])
             for line in f if " steps/s" in line]
  return float(np.mean(rates[1:]))  # compilation is in the first window


def fit_static_eq(train_dir, names, fft_size=4096):
  """Linear-phase FIR whose magnitude is the least-squares (dB) fit raw -> mix over all pairs."""
  raw_power, mix_power, lufs = 0.0, 0.0, []
  for name in names:
    raw, _ = audio.load(os.path.join(train_dir, "raw", name + ".wav"))
    mix, _ = audio.load(os.path.join(train_dir, "mixed", name + ".wav"))
    raw_power = raw_power + scipy.signal.welch(raw[:, 0], SR, nperseg=fft_size)[1]
    mix_power = mix_power + scipy.signal.welch(mix[:, 0], SR, nperseg=fft_size)[1]
    lufs.append(dsp.integrated_loudness(mix, SR))
  # Per frequency, the least-squares gain in dB between the average spectra is their difference.
  gain_db = 10 * np.log10((mix_power + 1e-20) / (raw_power + 1e-20))
  freqs = np.linspace(0, 1, len(gain_db))
  taps = scipy.signal.firwin2(fft_size + 1, freqs, 10 ** (gain_db / 20), window="hann")
  return taps, float(np.median(lufs))


def static_baseline(raw_tc, taps, target_lufs):
  delay = (len(taps) - 1) // 2
  y = scipy.signal.fftconvolve(raw_tc[:, 0], taps)[delay:delay + len(raw_tc)]
  return dsp.normalize_loudness(y[:, None].astype(np.float32), SR, target_lufs)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--minutes", type=float, default=30.0, help="training time budget")
  parser.add_argument("--config", default="experiments/base.py:tiny")
  parser.add_argument("--override", action="append", default=[],
                      help="extra config flag for training, e.g. "
                           "--override=--config.model.time_unet.base_width=16 (repeatable)")
  parser.add_argument("--workdir", default="/tmp/mixnet_quality")
  parser.add_argument("--train_pairs", type=int, default=120)
  parser.add_argument("--test_pairs", type=int, default=30)
  parser.add_argument("--seconds", type=float, default=8.0, help="longest take, s")
  args = parser.parse_args()
  work = os.path.abspath(args.workdir)
  train_dir, test_dir = os.path.join(work, "train_pairs"), os.path.join(work, "test_pairs")
  t0 = time.time()
  make_pairs(train_dir, args.train_pairs, 100, args.seconds)
  make_pairs(test_dir, args.test_pairs, 200, args.seconds)
  print(f"pairs written in {time.time() - t0:.0f} s", flush=True)

  rate = measure_steps_per_second(args.config, work, train_dir, args.override)
  steps = int(rate * args.minutes * 60 * 0.9)  # ~10% for evaluations and checkpoints
  print(f"{args.config}: {rate:.2f} steps/s here -> {steps} steps for {args.minutes:g} min",
        flush=True)
  run = os.path.join(work, "run")
  shutil.rmtree(run, ignore_errors=True)  # train from scratch within the budget
  t0 = time.time()
  _run(_train_args(args.config, run, train_dir, steps, args.override),
       os.path.join(work, "train.log"))
  train_minutes = (time.time() - t0) / 60
  eval_dir = os.path.join(work, "eval")
  _run([sys.executable, "-m", "mixnet.report", f"--checkpoint={run}",
        f"--raw_dir={test_dir}/raw", f"--mixed_dir={test_dir}/mixed", f"--out_dir={eval_dir}",
        "--split=all"], os.path.join(work, "report.log"))
  with open(os.path.join(eval_dir, "metrics.json")) as f:
    results = json.load(f)

  names = sorted(n[:-4] for n in os.listdir(os.path.join(train_dir, "raw")))
  taps, target_lufs = fit_static_eq(train_dir, names)
  static_rows = []
  for row in results["pairs"]:
    raw, _ = audio.load(os.path.join(test_dir, "raw", row["name"] + ".wav"))
    mix, _ = audio.load(os.path.join(test_dir, "mixed", row["name"] + ".wav"))
    static_rows.append(metrics.compute(static_baseline(raw, taps, target_lufs), mix, SR))
  table = {"model": results["average"]["model"], "identity": results["average"]["identity"],
           "static EQ + loudness": metrics.average(static_rows)}

  print(f"\n{args.config} {' '.join(args.override)}, {steps} steps in {train_minutes:.1f} min "
        f"of training, {len(results['pairs'])} held-out pairs")
  print(f"{'metric':<20}" + "".join(f"{k:>22}" for k in table))
  for name in metrics.METRIC_NAMES:
    print(f"{name:<20}" + "".join(f"{table[k][name]:>22.4g}" for k in table))
  ratio = table["model"]["mr_stft"] / table["static EQ + loudness"]["mr_stft"]
  loud = table["model"]["loudness_error_lu"]
  print(f"\nmodel MR-STFT / static baseline = {ratio:.2f} (target <= 0.5): "
        f"{'met' if ratio <= 0.5 else 'NOT met'}; loudness error {loud:.2f} LU (target < 0.5): "
        f"{'met' if loud < 0.5 else 'NOT met'}")
  with open(os.path.join(work, "quality.json"), "w") as f:
    json.dump({"config": args.config, "overrides": args.override, "steps": steps,
               "train_minutes": train_minutes, "steps_per_s": rate, "table": table}, f, indent=2)


if __name__ == "__main__":
  main()

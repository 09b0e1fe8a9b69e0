"""Quality within a time budget: do models trained on this CPU learn an unseen mixing style?

Run:
  .venv/bin/python benchmarks/quality.py        # time_unet 30 min, chain 5 min, hybrid 30 min
  .venv/bin/python benchmarks/quality.py --runs=experiments/hybrid.py:tiny@10 \
      --learning_curve=30,60 --curve_run=experiments/chain.py:tiny@5

1. Makes synthetic pairs in a style no test uses (`STYLE`: EQ, compression, saturation, reverb,
   loudness) on varied voices (pitch 95-330 Hz, sung and speech-like takes, varied levels): 120
   training pairs and 30 held-out pairs from other seeds.
2. For each run `CONFIG@MINUTES`: measures this machine's training speed for the config and sets
   `train.num_steps` so that training fills the budget, then trains with the project's own
   command (`python -m mixnet.train`) and evaluates the held-out pairs with
   `python -m mixnet.report`.
3. Baselines on the same held-out pairs: the identity, and a static EQ + loudness: one fixed
   linear-phase filter whose magnitude is fitted by least squares (in dB, per frequency) to the
   training pairs' average spectra, then a gain to the training mixes' median loudness.
4. Prints one table (MR-STFT and its ratio to the static baseline, loudness error, SI-SDR, steps
   and minutes trained per model), the per-voice breakdown (sung vs spoken, low vs high voices:
   base note below or above 165 Hz), and, with `--learning_curve`, the `--curve_run` model
   trained on the first 30, 60, ... training pairs for the same budget (or, with
   `--curve_steps`, the same number of steps).
The budget is wall time on this machine as it is loaded when the run starts (the header shows
the load average): on a shared machine every model gets fewer steps than on a quiet one.
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
  """`mixnet.train` for `workdir` (in `WORK/tag/`); the shards go to `WORK/data`, shared."""
  data_dir = os.path.join(os.path.dirname(os.path.dirname(workdir)), "data")
  return [sys.executable, "-m", "mixnet.train", f"--config={config}", f"--workdir={workdir}",
          f"--config.data.raw_dir={train_dir}/raw", f"--config.data.mixed_dir={train_dir}/mixed",
          f"--config.data.data_dir={data_dir}", f"--config.train.num_steps={steps}",
          f"--config.train.eval_every={max(1, steps // 5)}",
          f"--config.train.checkpoint_every={max(1, steps // 10)}",
          f"--config.train.log_every={max(1, steps // 50)}", *extra]


def measure_steps_per_second(config, work, train_dir, overrides):
  """Steps/s of a short real training run (after compilation), from its log (`train.INFO`)."""
  calib = os.path.join(work, "calibration")
  shutil.rmtree(calib, ignore_errors=True)  # a leftover run would resume and log no speed
  _run(_train_args(config, calib, train_dir, 120, [*overrides, "--config.train.log_every=30",
                                                    "--config.train.eval_every=100000",
                                                    "--config.train.checkpoint_every=100000"]),
       os.path.join(work, "calibration.log"))
  with open(os.path.join(calib, "train.INFO")) as f:
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


LOW_VOICE_HZ = 165.0


def _parse_run(spec):
  """"CONFIG@MINUTES" -> (config, minutes)."""
  config, _, minutes = spec.rpartition("@")
  if not config:
    raise SystemExit(f"--runs: {spec!r} is not CONFIG@MINUTES")
  return config, float(minutes)


def _subset(train_dir, count, work):
  """A folder of symlinks to the first `count` training pairs."""
  folder = os.path.join(work, f"train_pairs_{count}")
  names = sorted(os.listdir(os.path.join(train_dir, "raw")))[:count]
  for side in ("raw", "mixed"):
    os.makedirs(os.path.join(folder, side), exist_ok=True)
    for name in names:
      link = os.path.join(folder, side, name)
      if not os.path.lexists(link):
        os.symlink(os.path.join(train_dir, side, name), link)
  return folder


def train_and_report(config, minutes, train_dir, test_dir, work, tag, overrides, steps=None):
  """Trains `config` for `minutes` (or `steps`) on `train_dir`; returns the report's results."""
  run_work = os.path.join(work, tag)
  os.makedirs(run_work, exist_ok=True)
  if steps is None:
    rate = measure_steps_per_second(config, run_work, train_dir, overrides)
    steps = max(10, int(rate * minutes * 60 * 0.9))  # ~10% for evaluations and checkpoints
    print(f"{tag}: {config} at {rate:.2f} steps/s -> {steps} steps for {minutes:g} min "
          f"(load {os.getloadavg()[0]:.1f})", flush=True)
  else:
    rate = float("nan")
    print(f"{tag}: {config} for {steps} steps", flush=True)
  run = os.path.join(run_work, "run")
  shutil.rmtree(run, ignore_errors=True)  # train from scratch within the budget
  t0 = time.time()
  _run(_train_args(config, run, train_dir, steps, overrides), os.path.join(run_work, "train.log"))
  train_minutes = (time.time() - t0) / 60
  eval_dir = os.path.join(run_work, "eval")
  _run([sys.executable, "-m", "mixnet.report", f"--checkpoint={run}",
        f"--raw_dir={test_dir}/raw", f"--mixed_dir={test_dir}/mixed", f"--out_dir={eval_dir}",
        "--split=all"], os.path.join(run_work, "report.log"))
  with open(os.path.join(eval_dir, "metrics.json")) as f:
    results = json.load(f)
  results.update(steps=steps, train_minutes=train_minutes, steps_per_s=rate, config=config)
  return results


def static_rows(train_dir, test_dir, names):
  """{pair name: metrics} of the static EQ + loudness baseline on the held-out pairs."""
  taps, target_lufs = fit_static_eq(train_dir, sorted(n[:-4] for n in os.listdir(
      os.path.join(train_dir, "raw"))))
  rows = {}
  for name in names:
    raw, _ = audio.load(os.path.join(test_dir, "raw", name + ".wav"))
    mix, _ = audio.load(os.path.join(test_dir, "mixed", name + ".wav"))
    rows[name] = metrics.compute(static_baseline(raw, taps, target_lufs), mix, SR)
  return rows


def voice_groups(names, seed):
  """{group: [pair names]}: sung / spoken and low / high voices of the held-out takes."""
  groups = {"sung": [], "spoken": [], "low voice": [], "high voice": []}
  for name in names:
    sung, base_hz = synthetic.voice_of((seed, int(name.rsplit("_", 1)[1])))
    groups["sung" if sung else "spoken"].append(name)
    groups["low voice" if base_hz < LOW_VOICE_HZ else "high voice"].append(name)
  return groups


def print_tables(systems, runs, static, groups):
  """The main table, then MR-STFT per voice group (`static`: the baseline's rows per pair)."""
  print("\n| system | MR-STFT | / static | loudness error LU | SI-SDR dB | steps | minutes |\n"
        "|---|---|---|---|---|---|---|")
  baseline = systems["static EQ + loudness"]["mr_stft"]
  for label, table in systems.items():
    run = runs.get(label)
    trained = f"{run['steps']} | {run['train_minutes']:.1f}" if run else "- | -"
    print(f"| {label} | {table['mr_stft']:.3f} | {table['mr_stft'] / baseline:.2f} | "
          f"{table['loudness_error_lu']:.2f} | {table['si_sdr']:.1f} | {trained} |")
  print("\nMR-STFT per voice (held-out pairs in each group):\n")
  print("| system | " + " | ".join(f"{g} ({len(n)})" for g, n in groups.items()) + " |")
  print("|---|" + "---|" * len(groups))
  for label, per_pair in _per_pair(systems, runs, static).items():
    cells = [f"{np.mean([per_pair[n] for n in names]):.3f}" if names else "-"
             for names in groups.values()]
    print(f"| {label} | " + " | ".join(cells) + " |")


def _per_pair(systems, runs, static):
  """{system label: {pair name: MR-STFT}}."""
  any_run = next(iter(runs.values()))
  out = {"identity": {r["name"]: r["identity"]["mr_stft"] for r in any_run["pairs"]},
         "static EQ + loudness": {n: m["mr_stft"] for n, m in static.items()}}
  for label, run in runs.items():
    out[label] = {r["name"]: r["model"]["mr_stft"] for r in run["pairs"]}
  return {label: out[label] for label in systems}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", default="experiments/base.py:tiny@30,experiments/chain.py:tiny@5,"
                      "experiments/hybrid.py:tiny@30", help="comma-separated CONFIG@MINUTES")
  parser.add_argument("--override", action="append", default=[],
                      help="extra config flag for every training, e.g. "
                           "--override=--config.train.per_device_batch=4 (repeatable)")
  parser.add_argument("--learning_curve", default="",
                      help="comma-separated training pair counts for --curve_run, e.g. 30,60")
  parser.add_argument("--curve_run", default="experiments/chain.py:tiny@5")
  parser.add_argument("--curve_steps", type=int, default=None,
                      help="train every learning-curve point this many steps instead of for "
                           "--curve_run's minutes (then only the data differs between points)")
  parser.add_argument("--workdir", default="/tmp/mixnet_quality")
  parser.add_argument("--train_pairs", type=int, default=120)
  parser.add_argument("--test_pairs", type=int, default=30)
  parser.add_argument("--seconds", type=float, default=8.0, help="longest take, s")
  args = parser.parse_args()
  work = os.path.abspath(args.workdir)
  train_dir, test_dir = os.path.join(work, "train_pairs"), os.path.join(work, "test_pairs")
  print(f"# benchmarks/quality.py, load average {os.getloadavg()[0]:.1f}", flush=True)
  make_pairs(train_dir, args.train_pairs, 100, args.seconds)
  make_pairs(test_dir, args.test_pairs, 200, args.seconds)
  runs = {}
  for i, spec in enumerate(args.runs.split(",")):
    config, minutes = _parse_run(spec)
    label = f"{os.path.basename(config)} {minutes:g} min"
    runs[label] = train_and_report(config, minutes, train_dir, test_dir, work, f"run{i}",
                                   args.override)
  names = [r["name"] for r in next(iter(runs.values()))["pairs"]]
  static = static_rows(train_dir, test_dir, names)
  first = next(iter(runs.values()))
  systems = {"identity": first["average"]["identity"],
             "static EQ + loudness": metrics.average(list(static.values())),
             **{label: run["average"]["model"] for label, run in runs.items()}}
  print_tables(systems, runs, static, voice_groups(names, 200))
  curve = {}
  if args.learning_curve:
    config, minutes = _parse_run(args.curve_run)
    for count in [int(c) for c in args.learning_curve.split(",")]:
      subset = _subset(train_dir, count, work) if count < args.train_pairs else train_dir
      results = train_and_report(config, minutes, subset, test_dir, work, f"curve{count}",
                                 args.override, args.curve_steps)
      curve[count] = results["average"]["model"]["mr_stft"]
    print(f"\nlearning curve, {args.curve_run}: held-out MR-STFT by training pairs\n\n"
          "| pairs | MR-STFT | / static |\n|---|---|---|")
    for count, value in curve.items():
      print(f"| {count} | {value:.3f} | {value / systems['static EQ + loudness']['mr_stft']:.2f} |")
  with open(os.path.join(work, "quality.json"), "w") as f:
    json.dump({"runs": {k: {key: v[key] for key in ("config", "steps", "train_minutes",
                                                    "steps_per_s")} for k, v in runs.items()},
               "systems": systems, "learning_curve": curve}, f, indent=2)


if __name__ == "__main__":
  main()

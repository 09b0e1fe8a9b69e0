"""Speed of the numpy DSP chain beside a comparable pedalboard chain, on one 3-minute vocal.

Run:
  .venv/bin/python benchmarks/dsp.py [--seconds=180] [--repeats=3] [--stereo] [--profile]
  (pedalboard is the `bench` extra: pip install -e '.[bench]')

The input is the built-in synthetic vocal (`mixnet.data.synthetic.synth_vocal`: harmonic voice
with formants, vibrato, phrases, consonant bursts, breath and room noise) at 44.1 kHz. Rows:
  - every built-in preset (`mixnet.dsp.PRESETS`);
  - `exported`: the preset `python -m mixnet.export_preset` writes for a freshly initialised
    `chain` model (experiments/chain.py): EQ, compressor, saturation and a convolution reverb
    whose impulse response is a WAV file beside the JSON, read from disk as a user's would be;
  - `pedalboard`: Spotify's pedalboard (JUCE, C++) with the default preset's settings:
    HighpassFilter, PeakFilter x2, HighShelfFilter, Compressor, Distortion, Delay, Reverb
    (Freeverb), Limiter. Our chain does more per sample: it measures the take's loudness
    (BS.1770) before and after, de-esses, oversamples the saturation 2x, and its limiter
    looks ahead at 4x-oversampled true peaks.
Every row runs once untimed on one second (caches), then `--repeats` rounds time every row
once each, in turn, so a change in the machine's load hits all rows alike; the table shows each
row's best. Real-time factor is audio seconds per second of wall-clock time (`x realtime`) and
per second of this process's CPU time (`x cpu`, less sensitive to other processes on a shared
machine). `vs pedalboard` is our wall-clock real-time factor over pedalboard's.
`--profile` adds a table of seconds per stage of our chain (`mixnet.dsp.chain.stages`) for each
preset, on the same take.
"""

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import chain as chain_config
from mixnet import audio, dsp, models
from mixnet.data import synthetic
from mixnet.dsp import chain as dsp_chain
from mixnet.models import chain

SAMPLE_RATE = 44100


def exported_preset(folder):
  """Path of the preset JSON exported from a freshly initialised `chain` model, in `folder`."""
  config = chain_config.get_config()
  config.sample_rate = SAMPLE_RATE
  module = models.build(config.model)
  params = models.init_variables(module, jax.random.key(0), jnp.zeros((1, 256, 1)))["params"]
  preset, ir_tc = chain.to_preset(module, params, "exported", "exported_ir.wav", -16.0)
  audio.save(os.path.join(folder, "exported_ir.wav"), ir_tc, SAMPLE_RATE, subtype="FLOAT")
  path = os.path.join(folder, "exported.json")
  dsp.save_preset(preset, path)
  return path


def pedalboard_chain():
  """`fn(x_tc) -> y_tc` running pedalboard with the default preset's settings, or None."""
  try:
    import pedalboard
  except ImportError:
    return None
  board = pedalboard.Pedalboard([
      pedalboard.HighpassFilter(cutoff_frequency_hz=90.0),
      pedalboard.PeakFilter(cutoff_frequency_hz=300.0, gain_db=-2.0, q=1.0),
      pedalboard.PeakFilter(cutoff_frequency_hz=3000.0, gain_db=2.0, q=1.0),
      pedalboard.HighShelfFilter(cutoff_frequency_hz=10000.0, gain_db=2.5),
      pedalboard.Compressor(threshold_db=-20.0, ratio=3.0, attack_ms=5.0, release_ms=80.0),
      pedalboard.Distortion(drive_db=6.0),
      pedalboard.Delay(delay_seconds=0.25, feedback=0.25, mix=0.08),
      pedalboard.Reverb(room_size=0.5, damping=0.4, wet_level=0.15, dry_level=0.85),
      pedalboard.Limiter(threshold_db=-1.0, release_ms=50.0),
  ])
  return lambda x_tc: board(np.ascontiguousarray(x_tc.T), float(SAMPLE_RATE)).T


def time_rows(rows, audio_tc, repeats):
  """Best (wall, cpu) seconds and the last output of each row, timed round-robin."""
  for run in rows.values():
    run(audio_tc[:SAMPLE_RATE])
  best = {name: (float("inf"), float("inf")) for name in rows}
  outputs = {}
  for _ in range(repeats):
    for name, run in rows.items():
      wall, cpu = time.perf_counter(), time.process_time()
      outputs[name] = run(audio_tc)
      wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
      best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
  return best, outputs


def print_speed(best, outputs, seconds):
  reference = best.get("pedalboard")
  print(f"{'chain':<12} {'seconds':>8} {'x realtime':>11} {'x cpu':>7} {'vs pedalboard':>14} "
        f"{'LUFS':>6} {'peak dBFS':>10}")
  for name, (wall, cpu) in best.items():
    ratio = f"{reference[0] / wall:13.2f}x" if reference else f"{'-':>14}"
    out_tc = np.asarray(outputs[name], np.float32)
    lufs = dsp.integrated_loudness(out_tc, SAMPLE_RATE)
    peak = 20 * np.log10(np.max(np.abs(out_tc)))
    print(f"{name:<12} {wall:8.2f} {seconds / wall:10.0f}x {seconds / cpu:6.0f}x {ratio} "
          f"{lufs:6.1f} {peak:10.2f}")


def print_profile(presets, audio_tc, repeats):
  """Seconds per stage (best of `repeats`) for each preset, stages as rows."""
  table, order = {}, []
  for name, preset in presets.items():
    steps = dsp_chain.stages(preset, SAMPLE_RATE)
    names = [stage for stage, _ in steps]
    for i, stage in enumerate(names):  # rows in chain order: before the next stage listed
      if stage not in order:
        later = [order.index(n) for n in names[i + 1:] if n in order]
        order.insert(min(later) if later else len(order), stage)
    for _ in range(repeats):
      x_tc = audio_tc
      for stage, run in steps:
        start = time.perf_counter()
        x_tc = run(x_tc)
        elapsed = time.perf_counter() - start
        times = table.setdefault(stage, {})
        times[name] = min(times.get(name, float("inf")), elapsed)
  print(f"\nseconds per stage (best of {repeats})")
  print(f"{'stage':<20}" + "".join(f"{name:>10}" for name in presets))
  for stage in order:
    times = table[stage]
    print(f"{stage:<20}" + "".join(f"{times[n]:10.3f}" if n in times else f"{'-':>10}"
                                   for n in presets))
  print(f"{'total':<20}" + "".join(
      f"{sum(times.get(n, 0.0) for times in table.values()):10.3f}" for n in presets))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=180.0)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--stereo", action="store_true")
  parser.add_argument("--profile", action="store_true", help="seconds per stage of our chain")
  args = parser.parse_args()
  audio_tc = synthetic.synth_vocal(args.seconds, SAMPLE_RATE, seed=0)
  if args.stereo:
    audio_tc = np.repeat(audio_tc, 2, axis=1)
  with tempfile.TemporaryDirectory() as folder:
    presets = dict(dsp.PRESETS)
    presets["exported"] = dsp.load_preset(exported_preset(folder))
    rows = {name: (lambda x, p=preset: dsp.process(x, SAMPLE_RATE, p))
            for name, preset in presets.items()}
    rows["exported"] = lambda x: dsp.process(x, SAMPLE_RATE, os.path.join(folder, "exported.json"))
    board = pedalboard_chain()
    if board is None:
      print("pedalboard is not installed (pip install -e '.[bench]'): no comparison row")
    else:
      rows["pedalboard"] = board
    print(f"{args.seconds:.0f} s, {SAMPLE_RATE} Hz, {audio_tc.shape[1]} channel(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    best, outputs = time_rows(rows, audio_tc, args.repeats)
    print_speed(best, outputs, args.seconds)
    if args.profile:
      print_profile(presets, audio_tc, args.repeats)


if __name__ == "__main__":
  main()

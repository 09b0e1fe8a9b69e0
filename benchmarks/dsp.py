"""Real-time factor of the DSP vocal chain, per preset, on a 3-minute 44.1 kHz mono vocal.

Run: .venv/bin/python benchmarks/dsp.py [--seconds=180] [--stereo]

The input is the built-in synthetic vocal (`mixnet.data.synthetic.synth_vocal`: harmonic voice
with formants, vibrato, phrases, consonant bursts, breath and room noise). Each preset runs once
untimed (so the cached reverb impulse response is built), then `--repeats` timed runs; the table
shows the best. Real-time factor is audio
seconds per wall-clock second; the target is >= 100x on 2 CPU cores.
"""

import argparse
import time

import numpy as np

from mixnet import dsp
from mixnet.data import synthetic


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=180.0)
  parser.add_argument("--sample_rate", type=int, default=44100)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--stereo", action="store_true")
  args = parser.parse_args()
  audio_tc = synthetic.synth_vocal(args.seconds, args.sample_rate, seed=0)
  if args.stereo:
    audio_tc = np.repeat(audio_tc, 2, axis=1)
  print(f"{args.seconds:.0f} s, {args.sample_rate} Hz, {audio_tc.shape[1]} channel(s)")
  print(f"{'preset':<10} {'seconds':>8} {'x realtime':>11} {'LUFS':>7} {'peak dBFS':>10}")
  for name in dsp.PRESETS:
    dsp.process(audio_tc[:args.sample_rate], args.sample_rate, name)
    best = float("inf")
    for _ in range(args.repeats):
      start = time.perf_counter()
      out_tc = dsp.process(audio_tc, args.sample_rate, name)
      best = min(best, time.perf_counter() - start)
    lufs = dsp.integrated_loudness(out_tc, args.sample_rate)
    peak = 20 * np.log10(np.max(np.abs(out_tc)))
    print(f"{name:<10} {best:8.2f} {args.seconds / best:10.0f}x {lufs:7.1f} {peak:10.2f}")


if __name__ == "__main__":
  main()

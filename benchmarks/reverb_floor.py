"""How close can a noise reverb get? MR-STFT of the quality style with its reverb replaced.

Run:
  .venv/bin/python benchmarks/reverb_floor.py --takes 6

Takes `benchmarks/quality.py`'s style (EQ, compressor, saturation, a 1.1 s Freeverb reverb,
loudness) and mixes held-out-like takes (seeds of the quality benchmark's held-out set) with
its numpy chain, then again with the reverb stage changed, and prints the mean MR-STFT
(`metrics.mr_stft`) of each variant against the true mix (the chain's stages before the reverb
are exact here, so what remains is the reverb's):
  noise twin      the reverb's response replaced by noise with the same energy envelope in each
                  of the chain's decay bands (its envelope smoothed over 23 ms): the best that a
                  filtered-noise reverb with perfect decay times, levels and pre-delay can do;
  no reverb       the reverb stage left out;
  send +1 dB      the true response, 1 dB louder: what a small level error costs;
  response 1 ms late  the true response delayed by 1 ms.
Compare with the static EQ baseline of `benchmarks/quality.py` (its first table).
"""

import argparse

import numpy as np
import quality  # benchmarks/quality.py, beside this file

from mixnet import dsp, metrics
from mixnet.data import synthetic
from mixnet.diffdsp import reverberation as diff_reverberation
from mixnet.dsp import chain, core, reverberation

SR = quality.SR


def noise_twin(ir_t, sample_rate, seed, smooth=256):
  """Noise with `ir_t`'s energy envelope in each decay band, unit energy, float32 `[taps]`."""
  taps = len(ir_t)
  edges = diff_reverberation.band_edges(sample_rate)
  masks = diff_reverberation.band_masks(taps, sample_rate, edges)
  spectrum = np.fft.rfft(ir_t)
  noise = np.fft.rfft(np.random.default_rng(seed).standard_normal(taps))
  window = np.hanning(2 * smooth + 1)
  window /= window.sum()
  out = np.zeros(taps)
  for mask in masks:
    band, noise_band = np.fft.irfft(spectrum * mask, taps), np.fft.irfft(noise * mask, taps)
    energy = np.convolve(band ** 2, window, "same")
    noise_energy = np.convolve(noise_band ** 2, window, "same")
    out += noise_band * np.sqrt(energy / np.maximum(noise_energy, 1e-30))
  return (out / np.sqrt(np.sum(out ** 2))).astype(np.float32)


def mix_with(raw_tc, reverb_stage):
  """The quality style's numpy chain with its reverb stage replaced by `reverb_stage(x_tc)`."""
  x_tc = raw_tc
  for name, stage in chain.stages(quality.STYLE, SR):
    x_tc = reverb_stage(x_tc) if name == "reverb" else stage(x_tc)
  return x_tc


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--takes", type=int, default=6)
  parser.add_argument("--seconds", type=float, default=8.0)
  args = parser.parse_args()
  params = quality.STYLE.reverb
  ir_tc = reverberation.impulse_response(SR, params.rt60_s, params.damping,
                                         params.predelay_ms)[:, :1]
  twin_tc = noise_twin(ir_tc[:, 0].astype(np.float64), SR, seed=1)[:, None]

  def wet(response_tc, gain=1.0):
    return lambda x: core.mix(x, reverberation.convolve(x, response_tc), params.mix * gain)

  variants = {"noise twin": wet(twin_tc), "no reverb": lambda x: x,
              "send +1 dB": wet(ir_tc, 10 ** (1 / 20)),
              "response 1 ms late": wet(np.roll(ir_tc, int(SR / 1000), axis=0))}
  scores = {name: [] for name in variants}
  for i in range(args.takes):
    raw_tc = synthetic.synth_vocal(args.seconds, SR, seed=(200, i))
    target_tc = dsp.process(raw_tc, SR, quality.STYLE)
    for name, stage in variants.items():
      scores[name].append(metrics.mr_stft(mix_with(raw_tc, stage), target_tc))
  print(f"MR-STFT against the quality style's mix, {args.takes} takes of {args.seconds:g} s\n\n"
        "| reverb | MR-STFT |\n|---|---|")
  for name, values in scores.items():
    print(f"| {name} | {np.mean(values):.3f} |")


if __name__ == "__main__":
  main()

"""Digital silence in, digital silence out: DC blocking and a silence gate for model output.

A network's biases give it a small output even where its input is all zeros: a DC offset (or a
pattern repeating with the model's stride) under the whole take, audible as nothing but
measurable, and fatal to "silence in, silence out". Two steps remove it, both on the model
engine's output only (the DSP chain is silent on silence by construction):

- `dc_block`: a one-pole DC-blocking high-pass, started in its steady state so the first
  sample has no transient. It takes the offset out under the vocal too.
- `silent_mask`: the samples whose whole input window (the model's context on both sides, plus
  what the resamplers on the way in and out can spread) is exact digital zero. The model saw
  nothing there but silence, so its output there carries no information about the input and is
  set to exact zeros. A reverb tail or any output computed from real input is never cut.
"""

import functools
import math

import numpy as np
import scipy.signal

from mixnet import audio

DC_CUTOFF_HZ = 5.0  # -3 dB point; far below a voice's lowest partials


def dc_block(audio_tc, sample_rate, cutoff_hz=DC_CUTOFF_HZ):
  """Removes DC from float32 `[time, channels]` audio at `sample_rate` Hz (one-pole high-pass)."""
  pole = math.exp(-2 * math.pi * cutoff_hz / sample_rate)
  # All in float32: a float64 coefficient or state makes scipy filter in float64, ~3x slower.
  b, a = np.float32([1.0, -1.0]), np.float32([1.0, -pole])
  audio_tc = np.asarray(audio_tc, np.float32)
  zi = scipy.signal.lfilter_zi(b, a).astype(np.float32)[:, None] * audio_tc[:1]  # steady state
  out, _ = scipy.signal.lfilter(b, a, audio_tc, axis=0, zi=zi)
  return out


@functools.cache
def resampler_reach(from_rate, to_rate):
  """Samples (at `to_rate`) that `audio.resample` spreads one input sample by, on either side.

  Measured on an impulse once per rate pair, so it matches the resampler actually in use.
  """
  if from_rate == to_rate:
    return 0
  impulse = np.zeros((2 * from_rate, 1), np.float32)
  impulse[from_rate] = 1.0
  nonzero = np.flatnonzero(audio.resample(impulse, from_rate, to_rate)[:, 0])
  center = to_rate
  return int(max(center - nonzero[0], nonzero[-1] - center)) + 1


def silent_mask(audio_tc, left, right):
  """True where the window `[t - left, t + right]` of `audio_tc` is all exact zeros.

  Args:
    audio_tc: `[time, channels]` input.
    left, right: window reach in samples before / after each sample (beyond the ends of the
      signal counts as silence, as the model's zero padding does).

  Returns:
    bool `[time, channels]`, per channel.
  """
  length = audio_tc.shape[0]
  mask = np.zeros(audio_tc.shape, bool)
  for c in range(audio_tc.shape[1]):
    zero = np.concatenate([[False], audio_tc[:, c] == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]  # runs of zeros, [start, end)
    first = np.where(starts == 0, 0, starts + left)
    last = np.where(ends == length, length, ends - right)  # exclusive
    kept = first < last
    for lo, hi in zip(first[kept], last[kept], strict=True):
      mask[lo:hi, c] = True
  return mask


def gate(out_tc, in_tc, sample_rate, model_rate, context, joint):
  """Sets `out_tc` to exact zeros wherever the model saw only digital silence of `in_tc`.

  Args:
    out_tc: model output, float32 `[time, channels]` at `sample_rate` Hz (the user's rate).
    in_tc: the input it was computed from, same shape and rate.
    sample_rate: Hz of both.
    model_rate: Hz the model ran at (the input was resampled to it and back).
    context: (left, right) model context in samples at `model_rate`.
    joint: the model mixes channels (a stereo model): a sample is gated only where every
      channel is silent. Otherwise (each channel processed alone) channels gate separately.

  Returns:
    float32 `[time, channels]`: a new array, or `out_tc` itself where nothing is gated.
  """
  spread = (resampler_reach(sample_rate, model_rate) * sample_rate / model_rate
            + resampler_reach(model_rate, sample_rate))
  left, right = (math.ceil(c * sample_rate / model_rate + spread) for c in context)
  source = np.max(np.abs(in_tc), axis=1, keepdims=True) if joint else in_tc
  mask = silent_mask(source, left, right)
  if not mask.any():  # the usual case: no silence long enough; no copy of the output
    return np.asarray(out_tc, np.float32)
  return np.where(mask, np.float32(0.0), out_tc).astype(np.float32)

"""Integer-factor oversampling by polyphase filtering, with `scipy.signal.resample_poly`'s filter.

Up by `factor` and back down again is what an oversampled waveshaper needs (`saturation`). Both
use the linear-phase low-pass `resample_poly` designs (`firwin`, 20 factor + 1 taps, cutoff
1/factor of Nyquist, Kaiser window with beta 5) and its alignment and zero padding, so the
results equal `resample_poly(x, factor, 1)` and `resample_poly(v, 1, factor)` to float32
rounding. Two things make them faster:
  - The filter is a Nyquist filter: its taps at multiples of `factor` from the centre are the
    zeros of the sinc (firwin leaves them at ~1e-17). So phase 0 of the upsampled signal is
    the input times the centre tap, and phase 0 of the signal going down contributes only
    through the centre tap; neither is filtered.
  - The oversampled signal is kept as its `factor` phases (phase p holds the samples at
    times j + p / factor, each `[channels, time]` at the base rate) and never interleaved, so
    each of the other phases is one 20-tap FIR at the base rate, run as a sum of shifted
    copies in cache-sized chunks (`fir`); a symmetric phase (factor 2) adds its equal taps'
    inputs before multiplying, which saves a quarter of the passes.

All arrays are float32 `[channels, time]`.
"""

import functools

import numpy as np
import scipy.signal

HALF_LENGTH = 10  # resample_poly's half length, in input samples: 10 * factor taps a side
KAISER_BETA = 5.0
_CHUNK = 1 << 14


@functools.lru_cache(maxsize=8)
def lowpass_taps(factor):
  """`resample_poly`'s filter for `factor`, float32 `[20 factor + 1]`, unity gain at DC."""
  taps = scipy.signal.firwin(2 * HALF_LENGTH * factor + 1, 1.0 / factor,
                             window=("kaiser", KAISER_BETA))
  taps = taps.astype(np.float32)
  taps.setflags(write=False)
  return taps


def _terms(taps):
  """`(tap, offsets)` pairs: a symmetric filter's equal taps share one multiply."""
  length = taps.size
  if not np.array_equal(taps, taps[::-1]):
    return [(taps[m], (m,)) for m in range(length)]
  terms = [(taps[m], (m, length - 1 - m)) for m in range(length // 2)]
  if length % 2:
    terms.append((taps[length // 2], (length // 2,)))
  return terms


def fir(x_ct, taps, start):
  """`y[:, j] = sum_m taps[m] x[:, j + start - m]` with zeros outside `x`; `[channels, time]`.

  Summed tap by tap over chunks of `_CHUNK` samples, which stay in cache; numpy's vectorised
  multiply-adds do the rest.
  """
  channels, num = x_ct.shape
  left = max(0, taps.size - 1 - start)
  padded = np.zeros((channels, left + num + max(0, start)), np.float32)
  padded[:, left:left + num] = x_ct
  out_ct = np.zeros((channels, num), np.float32)
  scratch = np.empty((channels, min(_CHUNK, num)), np.float32)
  terms = _terms(taps)
  for begin in range(0, num, _CHUNK):
    size = min(_CHUNK, num - begin)
    acc, tmp = out_ct[:, begin:begin + size], scratch[:, :size]
    first = left + start + begin
    for tap, offsets in terms:
      views = [padded[:, first - m:first - m + size] for m in offsets]
      if len(views) == 2:
        np.add(views[0], views[1], out=tmp)
        tmp *= tap
      else:
        np.multiply(views[0], tap, out=tmp)
      acc += tmp
  return out_ct


def upsample(x_ct, factor):
  """`x_ct` at `factor` times the rate, as its phases: a list of `factor` `[channels, time]`.

  Phase p, sample j is `resample_poly(x_ct, factor, 1, axis=1)[:, factor * j + p]`.
  """
  taps = lowpass_taps(factor) * np.float32(factor)
  phases = [x_ct * taps[HALF_LENGTH * factor]]
  for p in range(1, factor):
    phases.append(fir(x_ct, taps[p::factor], HALF_LENGTH))
  return phases


def downsample(phases, factor):
  """The inverse layout of `upsample`: `resample_poly(v, 1, factor, axis=1)` of the signal
  whose phases are `phases`, `[channels, time]`.
  """
  taps = lowpass_taps(factor)
  out_ct = phases[0] * taps[HALF_LENGTH * factor]
  for q in range(1, factor):
    out_ct += fir(phases[q], taps[factor - q::factor], HALF_LENGTH - 1)
  return out_ct

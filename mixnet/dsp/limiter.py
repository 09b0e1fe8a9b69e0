"""True-peak limiter with look-ahead: the output never exceeds the ceiling.

The true peak (the peak of the continuous signal between samples) is estimated as in
ITU-R BS.1770-4 Annex 2, by 4x oversampling with a short interpolation filter. From it the
required gain reduction `r[n]` (dB) is known for every sample. The applied reduction is built so
that it is always at least `r[n]`:
  1. hold: `h[n] = max(r[n .. n+L-1])` (look-ahead window of L samples);
  2. release: `q[n] = max(h[n], b q[n-1])`, instant attack and exponential recovery with time
     constant `release_ms`, computed without a loop as
     `log q[n] = n log b + cummax_k(log h[k] - k log b)`;
  3. attack: a moving average of `q` over the same L samples. Every `q[m]` averaged for sample
     n has `m` in `[n-L+1, n]`, so its hold window contains n and `q[m] >= r[n]`: the average is
     too, and the gain ramps down smoothly over L samples before each peak instead of jumping.
A final clip to the ceiling guards against float rounding, so the sample peak is guaranteed.
"""

import numpy as np
import scipy.ndimage
import scipy.signal

from mixnet.dsp import core

TRUE_PEAK_OVERSAMPLE = 4
# Interpolation filter for the true-peak estimate: 12 taps per phase, as in BS.1770-4 Annex 2.
_TRUE_PEAK_FIR = scipy.signal.firwin(12 * TRUE_PEAK_OVERSAMPLE + 1, 1.0 / TRUE_PEAK_OVERSAMPLE)


def true_peak_envelope(audio_tc):
  """Estimated true peak (linear) of each sample over all channels: `[time]`.

  Value n is the largest magnitude of the 4x oversampled signal between samples n and n+1,
  and never less than the sample magnitude itself.
  """
  audio_tc = core.as_audio(audio_tc)
  num = audio_tc.shape[0]
  sample_peak = np.max(np.abs(audio_tc), axis=1)
  if num < 2:
    return sample_peak
  up_tc = scipy.signal.resample_poly(audio_tc, TRUE_PEAK_OVERSAMPLE, 1, axis=0,
                                     window=_TRUE_PEAK_FIR)
  up_peak = np.max(np.abs(up_tc), axis=1).reshape(num, TRUE_PEAK_OVERSAMPLE).max(axis=1)
  return np.maximum(sample_peak, up_peak)


def true_peak_db(audio_tc):
  """Estimated true peak of `[time, channels]` audio in dBTP."""
  audio_tc = core.as_audio(audio_tc)
  if audio_tc.shape[0] == 0:
    return core.SILENCE_DB
  return float(core.gain_to_db(np.max(true_peak_envelope(audio_tc))))


def _release(hold_db, release_pole):
  with np.errstate(divide="ignore"):
    log_hold = np.log(hold_db)
  if release_pole == 0.0:
    return hold_db
  index = np.arange(hold_db.shape[0])
  log_pole = np.log(release_pole)
  return np.exp(index * log_pole + np.maximum.accumulate(log_hold - index * log_pole))


def limiter_gain_db(audio_tc, sample_rate, ceiling_db=-1.0, release_ms=50.0, lookahead_ms=1.5):
  """The limiter's gain in dB (<= 0) for each sample, `[time]`."""
  audio_tc = core.as_audio(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  if lookahead_ms < 0:
    raise ValueError(f"limiter look-ahead must be >= 0 ms, got {lookahead_ms}")
  num = audio_tc.shape[0]
  if num == 0:
    return np.zeros(0)
  required = np.maximum(core.gain_to_db(true_peak_envelope(audio_tc)) - ceiling_db, 0.0)
  window = min(num, max(1, int(round(lookahead_ms * 1e-3 * sample_rate))))
  hold = scipy.ndimage.maximum_filter1d(required, window, origin=-(window // 2), mode="nearest")
  released = _release(hold, core.time_constant_pole(release_ms, sample_rate))
  totals = np.cumsum(np.concatenate([np.full(window, released[0]), released]))
  return -(totals[window:] - totals[:-window]) / window


def true_peak_limit(audio_tc, sample_rate, ceiling_db=-1.0, release_ms=50.0, lookahead_ms=1.5):
  """Limits `[time, channels]` audio so no sample (and no estimated true peak) exceeds the ceiling.

  Channels share one gain (linked), so the stereo image does not shift.

  Args:
    audio_tc: float `[time, channels]`.
    sample_rate: Hz.
    ceiling_db: maximum level in dBFS / dBTP (e.g. -1.0).
    release_ms: time constant of the gain recovery after a peak.
    lookahead_ms: how early the gain starts falling before a peak.

  Returns:
    float32 `[time, channels]` with `max |x| <= 10^(ceiling_db / 20)` exactly.
  """
  audio_tc = core.as_audio(audio_tc)
  gain_db = limiter_gain_db(audio_tc, sample_rate, ceiling_db, release_ms, lookahead_ms)
  limited_tc = (audio_tc * core.db_to_gain(gain_db)[:, None]).astype(np.float32)
  ceiling = np.float32(core.db_to_gain(ceiling_db))
  if ceiling > core.db_to_gain(ceiling_db):
    ceiling = np.nextafter(ceiling, np.float32(0.0))
  return np.clip(limited_tc, -ceiling, ceiling)

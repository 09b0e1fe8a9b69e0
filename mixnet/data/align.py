"""Time offset and polarity between a raw take and its mix.

Method: generalised cross-correlation with phase transform (GCC-PHAT) over the vocal band.
Dividing the cross-spectrum by its magnitude throws away what EQ, compression and level do to
the spectrum's shape and keeps only phase, where a delay lives; so the correlation of a mix
against its raw take is a sharp peak at the delay even after heavy processing. The PHAT weight
is regularised (bins far below the strongest one are damped rather than blown up to unit
weight) and limited to `BAND_HZ`, where a vocal has energy in both files; saturation
harmonics, air boosts and hiss above it would only add noise. The peak is an integer lag at
the full sample rate, so no further refinement is needed; its sign is the polarity.

Confidence: 1 - (second-highest peak / highest peak), the second taken at least
`GUARD_S` away from the first. Unrelated audio gives many peaks of similar height (confidence
near 0); a real pair gives one dominant peak (confidence near 1); an echo, a doubled vocal or a
repeated phrase that could be mistaken for the take lowers it in proportion.
"""

import numpy as np
import scipy.fft

# Band used for the correlation (Hz): where both a raw vocal and its mix carry the voice.
BAND_HZ = (70.0, 9000.0)
# PHAT regularisation: bins weaker than this fraction of the strongest cross-spectrum bin get
# proportionally less than unit weight.
PHAT_FLOOR = 1e-4
# Peaks closer than this to the main one belong to it (main lobe, very early reflections).
GUARD_S = 0.0015
# Only this much audio (from the start) is correlated: minutes are plenty to find a delay, and
# it bounds memory and time on hour-long files.
MAX_ANALYSIS_S = 180.0
# Mean-square level (full scale = 1) below which a signal counts as digital silence.
SILENCE_POWER = 1e-10


def _mono(x):
  x = np.asarray(x, dtype=np.float64)
  if x.ndim == 2:
    return x.mean(axis=1)
  if x.ndim != 1:
    raise ValueError(f"expected audio shaped [time] or [time, channels], got {x.shape}")
  return x


def correlation(raw, mixed, sample_rate, max_shift):
  """Regularised, band-limited GCC-PHAT of `mixed` against `raw` for lags -max_shift..max_shift.

  Args:
    raw, mixed: 1-D float arrays at `sample_rate` Hz.
    sample_rate: Hz.
    max_shift: largest lag searched, in samples.

  Returns:
    (lags, r): integer lags `[2 * max_shift + 1]` and the correlation at each; r peaks at lag
    d (positive or negative) when mixed[t] ~ raw[t - d].
  """
  n = scipy.fft.next_fast_len(len(raw) + len(mixed) + 1, real=True)
  raw_f = scipy.fft.rfft(raw, n)
  mixed_f = scipy.fft.rfft(mixed, n)
  cross = np.conj(raw_f) * mixed_f
  freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
  band = (freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], 0.45 * sample_rate))
  magnitude = np.abs(cross)
  floor = PHAT_FLOOR * magnitude[band].max() if band.any() else 0.0
  if floor <= 0.0:
    return np.arange(-max_shift, max_shift + 1), np.zeros(2 * max_shift + 1)
  weighted = np.where(band, cross / np.maximum(magnitude, floor), 0.0)
  r_full = scipy.fft.irfft(weighted, n)
  lags = np.arange(-max_shift, max_shift + 1)
  return lags, r_full[lags % n]


def estimate_offset(raw, mixed, sample_rate, max_shift_s=0.1):
  """Finds how far (and with which sign) `mixed` is shifted against `raw`.

  Args:
    raw: the dry take, `[time]` or `[time, channels]` at `sample_rate` Hz (channels averaged).
    mixed: its mix, same layout and rate; lengths may differ (e.g. a reverb tail).
    sample_rate: Hz.
    max_shift_s: largest offset searched, in seconds, either direction.

  Returns:
    (offset_samples, confidence, polarity): int offset, positive when the mix lags the raw take
    (mixed[t] ~ polarity * raw[t - offset]); confidence in [0, 1]; polarity +1 or -1.
    A silent side gives (0, 0.0, 1).
  """
  limit = int(round(MAX_ANALYSIS_S * sample_rate))
  max_shift = max(1, int(round(max_shift_s * sample_rate)))
  raw = _mono(raw)[:limit]
  mixed = _mono(mixed)[:limit + max_shift]
  if (raw.size == 0 or mixed.size == 0 or np.mean(raw**2) < SILENCE_POWER
      or np.mean(mixed**2) < SILENCE_POWER):
    return 0, 0.0, 1
  lags, r = correlation(raw, mixed, sample_rate, max_shift)
  strength = np.abs(r)
  best = int(np.argmax(strength))
  peak = strength[best]
  if peak <= 0.0:
    return 0, 0.0, 1
  guard = max(1, int(round(GUARD_S * sample_rate)))
  outside = np.abs(lags - lags[best]) > guard
  second = strength[outside].max() if outside.any() else 0.0
  confidence = float(np.clip(1.0 - second / peak, 0.0, 1.0))
  polarity = 1 if r[best] >= 0 else -1
  return int(lags[best]), confidence, polarity

"""Time offset and polarity between a raw take and its mix.

Method: generalised cross-correlation with phase transform (GCC-PHAT) over the vocal band.
Dividing the cross-spectrum by its magnitude throws away what EQ, compression and level do to
the spectrum's shape and keeps only phase, where a delay lives; so the correlation of a mix
against its raw take is a sharp peak at the delay even after heavy processing. The PHAT weight
is regularised (bins far below the strongest one are damped rather than blown up to unit
weight) and limited to `BAND_HZ`, where a vocal has energy in both files; saturation
harmonics, air boosts and hiss above it would only add noise. The peak is an integer lag at
the full sample rate, so no further refinement is needed; its sign is the polarity.

Confidence: 1 - (rival / highest peak), where the rival is the larger of the second-highest
peak (at least `GUARD_S` away from the first) and `NOISE_Z` times the RMS of the correlation
away from the peak. Unrelated audio gives many peaks of similar height, none far above the RMS
(confidence near 0); a real pair gives one dominant peak (confidence near 1); an echo, a doubled
vocal or a repeated phrase that could be mistaken for the take lowers it in proportion.
"""

import numpy as np
import scipy.fft

# Band used for the correlation (Hz): where both a raw vocal and its mix carry the voice.
BAND_HZ = (70.0, 9000.0)
# PHAT regularisation: bins weaker than this fraction of the strongest cross-spectrum bin get
# proportionally less than unit weight.
PHAT_FLOOR = 1e-8
# Peaks closer than this to the main one belong to it (main lobe, very early reflections).
GUARD_S = 0.0015
# Unrelated audio rarely has a correlation peak above this many RMS of the correlation (search
# ranges up to 0.1 s at 48 kHz); a real pair's peak is typically 30-100 times the RMS.
NOISE_Z = 6.0
# Only the loudest this-many seconds of the take are correlated (with the mix around them): a
# minute of voice is plenty to find a delay, and it bounds memory and time on long files.
MAX_ANALYSIS_S = 60.0
# Mean-square level (full scale = 1) below which a signal counts as digital silence.
SILENCE_POWER = 1e-10


def _mono(x):
  x = np.asarray(x, dtype=np.float32)
  if x.ndim == 2:
    return x.mean(axis=1)
  if x.ndim != 1:
    raise ValueError(f"expected audio shaped [time] or [time, channels], got {x.shape}")
  return x


def correlation(raw, mixed, sample_rate, lags):
  """Regularised, band-limited GCC-PHAT of `mixed` against `raw` at the given lags.

  Args:
    raw, mixed: 1-D float arrays at `sample_rate` Hz.
    sample_rate: Hz.
    lags: integer lags (samples) to evaluate, each shorter than the signals together.

  Returns:
    r: the correlation at each lag, shaped like `lags`; it peaks at lag d when
    mixed[t] ~ raw[t - d], with the sign of the relation. All zero if `raw` or `mixed` has no
    energy in `BAND_HZ`.
  """
  n = scipy.fft.next_fast_len(len(raw) + len(mixed) + 1, real=True)
  cross = np.conj(scipy.fft.rfft(raw, n)) * scipy.fft.rfft(mixed, n)
  freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
  cross[(freqs < BAND_HZ[0]) | (freqs > min(BAND_HZ[1], 0.45 * sample_rate))] = 0.0
  magnitude = np.abs(cross)
  floor = PHAT_FLOOR * magnitude.max()
  if floor <= 0.0:
    return np.zeros(len(lags))
  r_full = scipy.fft.irfft(cross / np.maximum(magnitude, floor), n)
  return r_full[np.asarray(lags) % n].astype(np.float64)


def _loudest_window(x, length):
  """Start of the `length`-sample window of `x` with the most energy."""
  if len(x) <= length:
    return 0
  energy = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
  return int(np.argmax(energy[length:] - energy[:-length]))


def estimate_offset(raw, mixed, sample_rate, max_shift_s=0.1):
  """Finds how far (and with which sign) `mixed` is shifted against `raw`.

  Args:
    raw: the dry take, `[time]` or `[time, channels]` at `sample_rate` Hz (channels averaged).
    mixed: its mix, same layout and rate; lengths may differ (e.g. a reverb tail).
    sample_rate: Hz.
    max_shift_s: largest offset searched, in seconds, either direction (plus a `GUARD_S`
      margin, so a delay at the limit is still seen as a peak rather than a slope).

  Returns:
    (offset_samples, confidence, polarity): int offset, positive when the mix lags the raw take
    (mixed[t] ~ polarity * raw[t - offset]); confidence in [0, 1]; polarity +1 or -1.
    A silent side gives (0, 0.0, 1).
  """
  guard = max(1, int(round(GUARD_S * sample_rate)))
  max_shift = max(1, int(round(max_shift_s * sample_rate))) + guard
  raw, mixed = _mono(raw), _mono(mixed)
  # Long files: correlate the loudest stretch of the take with the mix around it.
  start = _loudest_window(raw, int(round(MAX_ANALYSIS_S * sample_rate)))
  raw = raw[start:start + int(round(MAX_ANALYSIS_S * sample_rate))]
  mixed_start = max(0, start - max_shift)
  mixed = mixed[mixed_start:start + len(raw) + max_shift]
  if (raw.size == 0 or mixed.size == 0 or np.mean(np.square(raw, dtype=np.float64)) < SILENCE_POWER
      or np.mean(np.square(mixed, dtype=np.float64)) < SILENCE_POWER):
    return 0, 0.0, 1
  lags = np.arange(-max_shift, max_shift + 1)
  r = correlation(raw, mixed, sample_rate, lags + (start - mixed_start))
  strength = np.abs(r)
  best = int(np.argmax(strength))
  peak = strength[best]
  if peak <= 0.0:
    return 0, 0.0, 1
  outside = np.abs(lags - lags[best]) > guard
  rival = 0.0
  if outside.any():
    rival = max(strength[outside].max(), NOISE_Z * np.sqrt(np.mean(strength[outside]**2)))
  confidence = float(np.clip(1.0 - rival / peak, 0.0, 1.0))
  polarity = 1 if r[best] >= 0 else -1
  return int(lags[best]), confidence, polarity

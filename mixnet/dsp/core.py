"""Shared checks and unit conversions for the DSP stages.

Every stage takes and returns float32 audio shaped `[time, channels]` at `sample_rate` Hz. Stages
whose precision matters (IIR filters with poles near z = 1, loudness) compute in float64 inside;
the rest stay in float32, which halves memory traffic on long files.
"""

import numpy as np

# Levels below this are treated as silence by the level detectors (dBFS); avoids log10(0).
SILENCE_DB = -200.0


def as_audio(audio_tc):
  """Returns `audio_tc` as float32 `[time, channels]`, or raises ValueError naming the problem."""
  audio_tc = np.asarray(audio_tc)
  if audio_tc.ndim != 2:
    raise ValueError(f"expected a [time, channels] audio array, got shape {audio_tc.shape}")
  if not np.issubdtype(audio_tc.dtype, np.floating):
    raise ValueError(f"expected floating point audio samples, got dtype {audio_tc.dtype}")
  return audio_tc.astype(np.float32, copy=False)


def time_last(audio_tc):
  """`[time, channels]` -> contiguous `[channels, time]`.

  scipy's filters and resamplers run several times faster along a contiguous last axis than
  along axis 0 of a stereo array, so stages transpose around them.
  """
  return np.ascontiguousarray(audio_tc.T)


def time_first(audio_ct):
  """Contiguous float32 `[time, channels]` from `[channels, time]`."""
  return np.ascontiguousarray(audio_ct.T, dtype=np.float32)


def check_rate(sample_rate):
  """Returns `sample_rate` as a positive float, or raises ValueError."""
  if not np.isfinite(sample_rate) or sample_rate <= 0:
    raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
  return float(sample_rate)


def channel_peak(audio_tc):
  """`max |x|` over channels for each sample, `[time]` (column-wise: faster than axis=1)."""
  peak = np.abs(audio_tc[:, 0])
  for channel in range(1, audio_tc.shape[1]):
    np.maximum(peak, np.abs(audio_tc[:, channel]), out=peak)
  return peak


def block_max(values_t, block):
  """Largest of each run of `block` values of the 1-D `values_t` (the last run may be shorter).

  `np.maximum.reduceat` is about twice as fast as a max over a `[blocks, block]` reshape.
  """
  if values_t.size == 0:
    return values_t[:0]
  return np.maximum.reduceat(values_t, np.arange(0, values_t.size, block))


def db_to_gain(db):
  """Decibels to linear amplitude gain."""
  return np.exp(np.asarray(db, dtype=np.float64) * (np.log(10.0) / 20.0))


def gain_to_db(gain):
  """Linear amplitude to decibels, with silence floored at SILENCE_DB."""
  gain = np.maximum(np.abs(np.asarray(gain, dtype=np.float64)), 10.0 ** (SILENCE_DB / 20.0))
  return 20.0 * np.log10(gain)


def time_constant_pole(time_ms, sample_rate, period_samples=1):
  """One-pole coefficient `a` of `y += (1 - a) (x - y)` for time constant `time_ms`.

  After a step, such a smoother covers 1 - 1/e (63.2%) of the change in `time_ms`. The filter
  runs once every `period_samples` samples; `time_ms` of 0 gives an instantaneous response.
  """
  if time_ms < 0:
    raise ValueError(f"time constants must be >= 0 ms, got {time_ms}")
  if time_ms == 0:
    return 0.0
  return float(np.exp(-period_samples / (time_ms * 1e-3 * sample_rate)))


def mix(dry_tc, wet_tc, amount):
  """Blends `(1 - amount) * dry + amount * wet`; `amount` in [0, 1] is the wet fraction."""
  if not 0.0 <= amount <= 1.0:
    raise ValueError(f"mix must be in [0, 1], got {amount}")
  out_tc = np.multiply(wet_tc, np.float32(amount), dtype=np.float32)
  out_tc += np.float32(1.0 - amount) * dry_tc
  return out_tc

"""Compressor and de-esser: a dB gain computer followed by attack/release ballistics.

Design. The level detector takes the peak of |x| (the largest over channels, so stereo is
compressed with one linked gain) over short control frames of `CONTROL_PERIOD_S`; the static
curve turns each frame's level into a target gain reduction in dB (Giannoulis, Massberg & Reiss,
"Digital Dynamic Range Compressor Design", JAES 2012, soft knee eq. 4); a one-pole smoother whose
coefficient switches between attack (reduction growing) and release (reduction shrinking) follows
the target. The branching one-pole is non-linear (its coefficient depends on its own state), so no
linear filter computes it; running it at the control rate instead of the audio rate makes the
Python recursion ~20x shorter than the signal (at most 2000 steps per second of audio, fewer
where nothing is to be reduced: `smooth_reduction`) while each step uses the exact pole for its
period, so the time constants are exact at the control points. The smoothed gain is linearly
interpolated back to the audio rate, which also keeps the gain curve free of steps.

Ballistics (what the tests check): after a step in level, the gain reduction covers
1 - 1/e = 63.2% of its change in `attack_ms` (rising reduction) or `release_ms` (falling).
"""

import numpy as np

from mixnet.dsp import core, filters

CONTROL_PERIOD_S = 0.0005


def control_period(sample_rate):
  """Samples per control frame (at least 1)."""
  return max(1, int(round(sample_rate * CONTROL_PERIOD_S)))


def static_curve_db(level_db, threshold_db, ratio, knee_db):
  """Output level (dB) of the compressor's static curve for input level `level_db` (dB).

  Below the knee the curve is the identity, above it the slope is 1/ratio, and inside a knee of
  width `knee_db` centred on the threshold it is the quadratic joining the two.
  """
  if ratio < 1:
    raise ValueError(f"compressor ratio must be >= 1, got {ratio}")
  if knee_db < 0:
    raise ValueError(f"knee width must be >= 0 dB, got {knee_db}")
  level_db = np.asarray(level_db, dtype=np.float64)
  over = level_db - threshold_db
  above = threshold_db + over / ratio
  if knee_db == 0:
    return np.where(over > 0, above, level_db)
  in_knee = level_db + (1.0 / ratio - 1.0) * (over + knee_db / 2.0) ** 2 / (2.0 * knee_db)
  return np.where(2 * over < -knee_db, level_db, np.where(2 * over > knee_db, above, in_knee))


def frame_peak_db(audio_tc, period):
  """Peak level in dBFS of each control frame, over all channels: `[frames]`."""
  return core.gain_to_db(core.block_max(core.channel_peak(audio_tc), period))


def smooth_reduction(target_db, attack_pole, release_pole):
  """Attack/release one-pole over a gain-reduction curve (dB, >= 0), one step per frame.

  `state = target + (state - target) * pole`, the pole being `attack_pole` while the target is
  above the state and `release_pole` otherwise, from a state of 0. A frame whose target is 0
  (no reduction wanted: below the threshold, pauses) can only release, `state *= release_pole`,
  so a run of k such frames is one factor `release_pole^k`: the Python recursion visits only
  the frames that ask for reduction, and the states in between are filled in by array
  operations. `float64 [frames]`.
  """
  target_db = np.asarray(target_db, np.float64)
  active = np.flatnonzero(target_db > 0)
  if active.size == 0:
    return np.zeros(target_db.shape)
  decay = np.power(release_pole, np.diff(active, prepend=-1) - 1.0)
  state = 0.0
  states = []
  for target, fall in zip(target_db[active].tolist(), decay.tolist(), strict=True):
    state *= fall
    state = target + (state - target) * (attack_pole if target > state else release_pole)
    states.append(state)
  frames = np.arange(target_db.size)
  last = np.maximum.accumulate(np.where(target_db > 0, frames, -1))
  at_last = np.zeros(target_db.size)
  at_last[active] = states
  since = np.power(release_pole, frames - last.astype(np.float64))
  return np.where(last >= 0, at_last[np.maximum(last, 0)] * since, 0.0)


def frames_to_samples(values_f, period, num_samples):
  """Linearly interpolates per-frame values (each valid at its frame's last sample) to `[time]`.

  Before the first frame's end the first value holds. Computed in float32 at the audio rate
  (the per-frame steps are taken in float64 first).
  """
  previous_f = np.concatenate([values_f[:1], values_f[:-1]])
  step_f = (values_f - previous_f).astype(np.float32)
  fraction_p = (np.arange(period, dtype=np.float32) + 1) / np.float32(period)
  samples_fp = step_f[:, None] * fraction_p[None, :]
  samples_fp += previous_f.astype(np.float32)[:, None]
  return samples_fp.reshape(-1)[:num_samples]


def _reduction_db(detector_tc, sample_rate, threshold_db, ratio, knee_db, attack_ms, release_ms):
  """Smoothed gain reduction (dB, >= 0) per control frame, and the frame period."""
  period = control_period(sample_rate)
  level_db = frame_peak_db(detector_tc, period)
  target_db = level_db - static_curve_db(level_db, threshold_db, ratio, knee_db)
  smoothed = smooth_reduction(
      target_db,
      core.time_constant_pole(attack_ms, sample_rate, period),
      core.time_constant_pole(release_ms, sample_rate, period))
  return smoothed, period


def _check_times(attack_ms, release_ms):
  if attack_ms < 0 or release_ms < 0:
    raise ValueError(f"attack and release must be >= 0 ms, got {attack_ms}, {release_ms}")


def compressor_gain(audio_tc, sample_rate, threshold_db, ratio, knee_db=6.0, attack_ms=10.0,
                    release_ms=100.0, makeup_db=0.0):
  """The compressor's linear gain for each sample, float32 `[time]` (make-up included).

  The gain is computed in dB per control frame, converted to linear there and interpolated
  linearly between frames.
  """
  audio_tc = core.as_audio(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  _check_times(attack_ms, release_ms)
  if audio_tc.shape[0] == 0:
    return np.zeros(0, np.float32)
  reduction_f, period = _reduction_db(audio_tc, sample_rate, threshold_db, ratio, knee_db,
                                      attack_ms, release_ms)
  return frames_to_samples(core.db_to_gain(makeup_db - reduction_f), period, audio_tc.shape[0])


def compress(audio_tc, sample_rate, threshold_db, ratio, knee_db=6.0, attack_ms=10.0,
             release_ms=100.0, makeup_db=0.0):
  """Feed-forward peak compressor with linked channels.

  Args:
    audio_tc: float `[time, channels]`.
    sample_rate: Hz.
    threshold_db: level (dBFS peak) where compression starts.
    ratio: input dB change per output dB change above the threshold (>= 1).
    knee_db: width of the soft knee around the threshold.
    attack_ms: time for 63% of an increase in gain reduction.
    release_ms: time for 63% of a decrease in gain reduction.
    makeup_db: gain added after compression.

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  gain_t = compressor_gain(audio_tc, sample_rate, threshold_db, ratio, knee_db, attack_ms,
                           release_ms, makeup_db)
  return audio_tc * gain_t[:, None]


def de_esser(audio_tc, sample_rate, freq_hz=6500.0, threshold_db=-30.0, ratio=4.0,
             attack_ms=1.0, release_ms=60.0):
  """Split-band de-esser: compresses only the band above `freq_hz` when it is too loud.

  The high band is a zero-phase high-pass at `freq_hz` (a 12 dB/octave biquad run forward and
  backward: 24 dB/octave, -6 dB at `freq_hz`). Being in phase with the input, it can be turned
  down by subtraction, `out = x - (1 - g) * high`, which is `x` exactly when there is nothing to
  reduce and cuts the high band by exactly `g` otherwise (a causal high-pass would leave a phase
  shift that spoils the cancellation). Its peak level is compressed (hard knee at
  `threshold_db`, `ratio`, attack/release ballistics as in `compress`).

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  _check_times(attack_ms, release_ms)
  if audio_tc.shape[0] == 0:
    return audio_tc
  high_tc = filters.zero_phase_highpass(audio_tc, sample_rate, freq_hz)
  reduction_f, period = _reduction_db(high_tc, sample_rate, threshold_db, ratio, 0.0, attack_ms,
                                      release_ms)
  cut_t = frames_to_samples(1.0 - core.db_to_gain(-reduction_f), period, audio_tc.shape[0])
  return audio_tc - cut_t[:, None] * high_tc

"""Loudness (ITU-R BS.1770-4 via pyloudnorm) and loudness normalisation."""

import numpy as np
import pyloudnorm

from mixnet.dsp import core

# BS.1770's absolute gate. Integrated loudness is undefined when every block is below it
# (silence, near silence); such signals read as this floor instead of -inf, so differences of
# loudness stay finite numbers.
LOUDNESS_FLOOR_LUFS = -70.0
BLOCK_S = 0.4


def integrated_loudness(audio_tc, sample_rate):
  """Integrated loudness of `[time, channels]` audio in LUFS (>= LOUDNESS_FLOOR_LUFS).

  Clips of at least 400 ms use the full gated BS.1770 measurement. Shorter clips cannot fill one
  400 ms gating block, and padding them with silence would under-read them; they are measured as
  a single block as long as the clip (K-weighted mean square of the whole clip, absolute gate
  only), which is what the gated measurement gives for a steady signal.
  """
  audio_tc = core.as_audio(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  num, channels = audio_tc.shape
  if channels > 2:
    raise ValueError(f"loudness: expected mono or stereo, got {channels} channels")
  if num < 2 or not np.any(audio_tc):
    return LOUDNESS_FLOOR_LUFS
  block_s = BLOCK_S if num >= BLOCK_S * sample_rate else num / sample_rate * (1.0 - 1e-9)
  meter = pyloudnorm.Meter(int(round(sample_rate)), block_size=block_s)
  lufs = meter.integrated_loudness(np.ascontiguousarray(audio_tc))
  if not np.isfinite(lufs):
    return LOUDNESS_FLOOR_LUFS
  return max(float(lufs), LOUDNESS_FLOOR_LUFS)


def normalize_loudness(audio_tc, sample_rate, target_lufs):
  """Scales `[time, channels]` audio to `target_lufs` integrated loudness.

  Audio at or below LOUDNESS_FLOOR_LUFS (silence) has no measurable loudness and is returned
  unchanged. No limiting is applied: follow with `true_peak_limit` if peaks may exceed full
  scale.

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  lufs = integrated_loudness(audio_tc, sample_rate)
  if lufs <= LOUDNESS_FLOOR_LUFS:
    return audio_tc.astype(np.float32)
  return (audio_tc * core.db_to_gain(target_lufs - lufs)).astype(np.float32)

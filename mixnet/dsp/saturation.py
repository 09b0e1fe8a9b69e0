"""Soft saturation: oversampled tanh waveshaper with optional asymmetry."""

import numpy as np

from mixnet.dsp import core, filters, polyphase

# The asymmetric curve creates a DC offset; this high-pass removes it (Hz, well below voice).
DC_BLOCK_HZ = 10.0


def saturate(audio_tc, sample_rate, drive_db, mix=1.0, bias=0.0, oversample=2):
  """Drives the signal into `tanh` and blends it with the dry signal.

  The shaper is `(tanh(g x + bias) - tanh(bias)) / (g (1 - tanh(bias)^2))` with `g` the drive:
  unity gain and no offset for small signals, so `drive_db` sets how hard peaks are rounded
  (more odd harmonics) rather than the level. A non-zero `bias` makes the curve asymmetric,
  adding even harmonics ("warmth"); the DC it creates is removed by a 10 Hz high-pass. The
  shaper runs at `oversample` times the sample rate (`polyphase`: `resample_poly`'s filter, up
  and back down) so the harmonics it creates above Nyquist are filtered instead of aliasing
  back into the band.

  Args:
    audio_tc: float `[time, channels]`.
    sample_rate: Hz.
    drive_db: gain into the shaper in dB.
    mix: wet fraction in [0, 1] (parallel saturation below 1).
    bias: asymmetry in [-1, 1].
    oversample: integer oversampling factor (1 disables oversampling).

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  if not -1.0 <= bias <= 1.0:
    raise ValueError(f"saturation bias must be in [-1, 1], got {bias}")
  if int(oversample) != oversample or oversample < 1:
    raise ValueError(f"oversample must be a positive integer, got {oversample}")
  if audio_tc.shape[0] == 0:
    return audio_tc
  drive = np.float32(core.db_to_gain(drive_db))
  offset = np.float32(np.tanh(bias))
  slope = drive * (1 - offset ** 2)
  x_ct = core.time_last(audio_tc)
  phases = polyphase.upsample(x_ct, oversample) if oversample > 1 else [x_ct.copy()]
  for up_ct in phases:  # in place; adding a bias or offset of 0 is skipped
    up_ct *= drive
    if bias != 0.0:
      up_ct += np.float32(bias)
    np.tanh(up_ct, out=up_ct)
    if bias != 0.0:
      up_ct -= offset
    up_ct /= slope
  wet_ct = polyphase.downsample(phases, oversample) if oversample > 1 else phases[0]
  wet_tc = core.time_first(wet_ct)
  if bias != 0.0:
    wet_tc = filters.highpass(wet_tc, sample_rate, DC_BLOCK_HZ)
  return core.mix(audio_tc, wet_tc, mix)

"""The vocal chain: gain staging, EQ, de-esser, compressor, saturation, delay, reverb,
loudness normalisation and a true-peak limiter, with parameters from a `Preset`.

It is the fallback engine when no trained model exists, and it makes the "mixed" side of the
built-in synthetic demo pairs, so it must be deterministic: it is (no randomness, no
data-dependent threading).
"""

import numpy as np

from mixnet.dsp import core, dynamics, echo, filters, limiter, loudness, reverberation, saturation
from mixnet.dsp.presets import get_preset

# Stages tuned at or above this fraction of the sample rate (e.g. a 10 kHz air shelf on 16 kHz
# audio) would act outside the representable band or are undefined there: they are skipped.
MAX_FREQ_FRACTION = 0.45
LOUDNESS_TOLERANCE_LU = 0.5
LIMITER_PASSES = 4


def _in_band(freq_hz, sample_rate):
  return freq_hz < MAX_FREQ_FRACTION * sample_rate


def _check_input(audio_tc):
  audio_tc = np.asarray(audio_tc)
  if audio_tc.ndim != 2 or audio_tc.shape[1] not in (1, 2):
    raise ValueError(
        f"process: expected mono or stereo audio shaped [time, channels], got {audio_tc.shape}")
  if not np.all(np.isfinite(audio_tc)):
    raise ValueError(f"process: input has {int(np.sum(~np.isfinite(audio_tc)))} NaN or "
                     "infinite samples")
  return core.as_audio(audio_tc)


def process(audio_tc, sample_rate, preset="default"):
  """Mixes a dry vocal with the DSP chain.

  Args:
    audio_tc: float `[time, channels]` with 1 or 2 channels, finite samples.
    sample_rate: Hz.
    preset: a name in `PRESETS`, a `Preset`, or the path of a preset JSON file.

  The take is first brought to `preset.input_lufs`, so thresholds mean the same for quiet and
  hot recordings; silence passes through unchanged. Stages tuned at or above 0.45 x the sample
  rate (e.g. a 12 kHz shelf at 16 kHz) are skipped.

  Returns:
    float32 `[time, channels]`, same shape as the input. Deterministic; never above the preset's
    limiter ceiling. A mono input stays mono; stereo is compressed with linked gain and gets a
    decorrelated reverb on each side.

  Raises:
    ValueError: not `[time, 1 or 2]`, NaN/inf samples, bad sample rate or unknown preset.
  """
  preset = get_preset(preset)
  x_tc = _check_input(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  if x_tc.shape[0] == 0:
    return x_tc
  x_tc = loudness.normalize_loudness(x_tc, sample_rate, preset.input_lufs)
  bands = [b for b in preset.eq if _in_band(b.freq_hz, sample_rate)]
  x_tc = filters.equalize(x_tc, sample_rate, bands)
  if preset.de_esser is not None and _in_band(preset.de_esser.freq_hz, sample_rate):
    p = preset.de_esser
    x_tc = dynamics.de_esser(x_tc, sample_rate, freq_hz=p.freq_hz, threshold_db=p.threshold_db,
                             ratio=p.ratio, attack_ms=p.attack_ms, release_ms=p.release_ms)
  if preset.compressor is not None:
    p = preset.compressor
    x_tc = dynamics.compress(x_tc, sample_rate, threshold_db=p.threshold_db, ratio=p.ratio,
                             knee_db=p.knee_db, attack_ms=p.attack_ms, release_ms=p.release_ms,
                             makeup_db=p.makeup_db)
  if preset.saturation is not None:
    p = preset.saturation
    x_tc = saturation.saturate(x_tc, sample_rate, drive_db=p.drive_db, mix=p.mix, bias=p.bias)
  if preset.delay is not None:
    p = preset.delay
    x_tc = echo.delay(x_tc, sample_rate, time_ms=p.time_ms, feedback=p.feedback, mix=p.mix)
  if preset.reverb is not None:
    p = preset.reverb
    x_tc = reverberation.reverb(x_tc, sample_rate, rt60_s=p.rt60_s, predelay_ms=p.predelay_ms,
                                damping=p.damping, mix=p.mix)
  if preset.convolution_reverb is not None:
    p = preset.convolution_reverb
    x_tc = reverberation.convolution_reverb(x_tc, sample_rate, ir_file=p.ir_file,
                                            send_db=p.send_db)
  return _finish(x_tc, sample_rate, preset)


def _finish(x_tc, sample_rate, preset):
  """Normalises to the output loudness and limits.

  Limiting lowers the loudness of material with a high crest factor; while it lands more than
  `LOUDNESS_TOLERANCE_LU` short of the target, the missing gain is added before the limiter
  (like pushing a mastering limiter), at most `LIMITER_PASSES` times in all.
  """
  x_tc = loudness.normalize_loudness(x_tc, sample_rate, preset.output_lufs)
  out_tc = limiter.true_peak_limit(x_tc, sample_rate, preset.ceiling_db,
                                   preset.limiter_release_ms)
  for _ in range(LIMITER_PASSES - 1):
    shortfall = preset.output_lufs - loudness.integrated_loudness(out_tc, sample_rate)
    if shortfall <= LOUDNESS_TOLERANCE_LU or not np.any(out_tc):
      break
    x_tc = x_tc * np.float32(core.db_to_gain(shortfall))
    out_tc = limiter.true_peak_limit(x_tc, sample_rate, preset.ceiling_db,
                                     preset.limiter_release_ms)
  return out_tc

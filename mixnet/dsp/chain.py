"""The vocal chain: gain staging, EQ, de-esser, compressor, saturation, delay, reverb,
loudness normalisation and a true-peak limiter, with parameters from a `Preset`.

It is the fallback engine when no trained model exists, and it makes the "mixed" side of the
built-in synthetic demo pairs, so it must be deterministic: it is (no randomness, no
data-dependent threading).
"""

import dataclasses

import numpy as np

from mixnet.dsp import core, dynamics, echo, filters, limiter, loudness, reverberation, saturation
from mixnet.dsp.presets import get_preset

# Stages tuned at or above this fraction of the sample rate (e.g. a 10 kHz air shelf on 16 kHz
# audio) would act outside the representable band or are undefined there: they are skipped (a
# low-pass is kept up to Nyquist: `_eq_in_band`).
MAX_FREQ_FRACTION = 0.45
LOUDNESS_TOLERANCE_LU = 0.5
LIMITER_PASSES = 4


def _in_band(freq_hz, sample_rate):
  return freq_hz < MAX_FREQ_FRACTION * sample_rate


def _eq_in_band(band, sample_rate):
  """A low-pass is defined up to Nyquist (where it passes everything); other bands as above."""
  if band.kind == "lowpass":
    return band.freq_hz < 0.5 * sample_rate
  return _in_band(band.freq_hz, sample_rate)


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
  for _, stage in stages(preset, sample_rate):
    x_tc = stage(x_tc)
  return x_tc


def stages(preset, sample_rate):
  """The chain for `preset` at `sample_rate` as `(name, fn)` steps, `fn(x_tc) -> x_tc`, in order.

  `process` runs them one after the other on float32 `[time, channels]` audio; listing them
  lets a caller time each one. Stages the preset leaves out, or tuned out of band, are absent.
  """
  preset = get_preset(preset)
  steps = [("input_level", lambda x: loudness.normalize_loudness(x, sample_rate,
                                                                  preset.input_lufs))]
  bands = [b for b in preset.eq if _eq_in_band(b, sample_rate)]
  if bands:
    steps.append(("eq", lambda x: filters.equalize(x, sample_rate, bands)))
  if preset.de_esser is not None and _in_band(preset.de_esser.freq_hz, sample_rate):
    steps.append(("de_esser", _stage(dynamics.de_esser, sample_rate, preset.de_esser)))
  if preset.compressor is not None:
    steps.append(("compressor", _stage(dynamics.compress, sample_rate, preset.compressor)))
  if preset.saturation is not None:
    steps.append(("saturation", _stage(saturation.saturate, sample_rate, preset.saturation)))
  if preset.delay is not None:
    steps.append(("delay", _stage(echo.delay, sample_rate, preset.delay)))
  if preset.reverb is not None:
    steps.append(("reverb", _stage(reverberation.reverb, sample_rate, preset.reverb)))
  if preset.convolution_reverb is not None:
    steps.append(("convolution_reverb", _stage(reverberation.convolution_reverb, sample_rate,
                                               preset.convolution_reverb)))
  steps.append(("output_level", lambda x: loudness.normalize_loudness(x, sample_rate,
                                                                   preset.output_lufs)))
  steps.append(("limiter", lambda x: _limit(x, sample_rate, preset)))
  return steps


def _stage(function, sample_rate, params):
  """`function(x_tc, sample_rate, **params)`: a stage with its settings from a preset."""
  settings = dataclasses.asdict(params)
  return lambda x_tc: function(x_tc, sample_rate, **settings)


def _limit(x_tc, sample_rate, preset):
  """Limits `x_tc`, already at the output loudness, to the ceiling.

  Limiting lowers the loudness of material with a high crest factor; while it lands more than
  `LOUDNESS_TOLERANCE_LU` short of the target, the missing gain is added before the limiter
  (like pushing a mastering limiter), at most `LIMITER_PASSES` times in all.
  """
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

"""Feedback echo."""

import numpy as np

from mixnet.dsp import core

# The echo recursion runs block by block; blocks shorter than this (short delays) are first
# lengthened by doubling, so the Python loop stays short.
MIN_SPAN = 4096


def delay(audio_tc, sample_rate, time_ms, feedback, mix):
  """Feedback delay: echoes every `time_ms`, each `feedback` times the previous one.

  The wet signal is `w[n] = x[n - D] + feedback * w[n - D]`. Cut into blocks of D samples this is
  one vectorised multiply-add per block, computed in order. For short delays the distance is
  doubled first: with `v` the sum of the first `2^j` echoes,
  `w[n] = v[n] + feedback^(2^j) w[n - 2^j D]`, and the sum of the first `2^(j+1)` echoes is
  `v[n] + feedback^(2^j) v[n - 2^j D]`; this repeats until the blocks are at least `MIN_SPAN`
  samples long. Every echo is computed (float32); the output keeps the input's
  length (echoes past the end are dropped).

  Args:
    audio_tc: float `[time, channels]`.
    sample_rate: Hz.
    time_ms: echo spacing in ms (> 0).
    feedback: level of each repeat relative to the previous, in [0, 1).
    mix: wet fraction in [0, 1].

  Returns:
    float32 `[time, channels]`.
  """
  audio_tc = core.as_audio(audio_tc)
  sample_rate = core.check_rate(sample_rate)
  if time_ms <= 0:
    raise ValueError(f"delay time must be > 0 ms, got {time_ms}")
  if not 0.0 <= feedback < 1.0:
    raise ValueError(f"delay feedback must be in [0, 1), got {feedback}")
  num = audio_tc.shape[0]
  span = max(1, int(round(time_ms * 1e-3 * sample_rate)))
  wet_tc = np.zeros_like(audio_tc)
  if span < num:  # A take shorter than the delay has no echo inside it.
    wet_tc[span:] = audio_tc[:num - span]
  gain = float(feedback)
  while span < min(MIN_SPAN, num):
    wet_tc[span:] += np.float32(gain) * wet_tc[:num - span]
    span, gain = 2 * span, gain * gain
  for start in range(span, num, span):
    stop = min(start + span, num)
    wet_tc[start:stop] += np.float32(gain) * wet_tc[start - span:stop - span]
  return core.mix(audio_tc, wet_tc, mix)

"""Feedback echo."""

import numpy as np
import scipy.signal

from mixnet.dsp import core


def delay(audio_tc, sample_rate, time_ms, feedback, mix):
  """Feedback delay: echoes every `time_ms`, each `feedback` times the previous one.

  The wet signal is `w[n] = x[n - D] + feedback * w[n - D]`. Cut into blocks of D samples this is
  `W_k = X_{k-1} + feedback * W_{k-1}`, a first-order recursion across blocks, so one
  `scipy.signal.lfilter` call along the block axis computes every echo exactly and fast. The
  output keeps the input's length (echoes past the end are dropped).

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
  num, channels = audio_tc.shape
  period = max(1, int(round(time_ms * 1e-3 * sample_rate)))
  blocks = -(-num // period)
  padded = np.pad(audio_tc, ((0, blocks * period - num), (0, 0)))
  blocks_btc = padded.reshape(blocks, period, channels)
  wet_btc = scipy.signal.lfilter([0.0, 1.0], [1.0, -feedback], blocks_btc, axis=0)
  wet_tc = wet_btc.reshape(blocks * period, channels)[:num]
  return core.mix(audio_tc, wet_tc, mix)

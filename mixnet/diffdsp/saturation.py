"""Parallel tanh saturation in jnp: the shaper of `mixnet.dsp.saturation` with no asymmetry.

The wet path is `tanh(g x) / g` with drive `g`: unity gain for small signals, so `drive_db` sets
how hard peaks are rounded, not the level; `mix` blends it with the dry signal. It runs at the
audio rate (the numpy twin oversamples 2x to keep the harmonics from aliasing; at the drives a
vocal chain uses, the aliased part is far below the harmonics themselves).
"""

import jax.numpy as jnp

from mixnet.diffdsp import core


def saturate(x_btc, drive_db, mix):
  """`(1 - mix) x + mix tanh(g x) / g`, `g = 10^(drive_db / 20)`; float32 `[batch, time, c]`.

  Args:
    x_btc: float32 `[batch, time, channels]`.
    drive_db: gain into the shaper, dB.
    mix: wet fraction in [0, 1].
  """
  drive = core.db_to_gain(drive_db)
  wet = jnp.tanh(drive * x_btc) / drive
  return (1.0 - mix) * x_btc + mix * wet

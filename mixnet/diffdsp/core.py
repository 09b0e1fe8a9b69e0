"""Shared pieces of the differentiable chain: smooth parameter maps, units, FFT convolution.

Parameters are learned as unconstrained real numbers ("raw") and mapped into their physical range
by a smooth, monotone map, so every value the optimiser can reach is a valid setting and the
gradient never vanishes at a hard clip: `bounded` (linear quantities: dB levels, mix fractions)
and `log_bounded` (scale quantities: frequencies in Hz, times in ms or s, Q, ratio), which is
uniform in the logarithm, the way such settings are perceived. The `*_inverse` twins (numpy)
give the raw value of a physical one, for initialisation.

Audio arrays are float32 `[batch, time, channels]` (`x_btc`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft

LN10_OVER_20 = float(np.log(10.0) / 20.0)


def bounded(raw, low, high):
  """`low + (high - low) * sigmoid(raw)`: the open interval (low, high)."""
  return low + (high - low) * jax.nn.sigmoid(raw)


def bounded_inverse(value, low, high):
  """The raw value that `bounded` maps to `value` (numpy; `value` strictly inside the range)."""
  fraction = (np.asarray(value, np.float64) - low) / (high - low)
  if np.any(fraction <= 0) or np.any(fraction >= 1):
    raise ValueError(f"initial value {value} is not strictly inside ({low}, {high})")
  return np.log(fraction / (1.0 - fraction)).astype(np.float32)


def log_bounded(raw, low, high):
  """`exp(bounded(raw, log low, log high))`: (low, high), uniform in the logarithm."""
  return jnp.exp(bounded(raw, np.log(low), np.log(high)))


def log_bounded_inverse(value, low, high):
  """The raw value that `log_bounded` maps to `value` (numpy)."""
  return bounded_inverse(np.log(np.asarray(value, np.float64)), np.log(low), np.log(high))


def db_to_gain(db):
  """Decibels to linear amplitude."""
  return jnp.exp(db * LN10_OVER_20)


def gain_to_db(gain, floor=1e-10):
  """Linear amplitude to decibels; amplitudes below `floor` read as `floor` (avoids log 0)."""
  return 20.0 * jnp.log10(jnp.maximum(jnp.abs(gain), floor))


def fft_convolve(x_btc, h_tc):
  """Causal linear convolution along time of each channel with the same channel of `h_tc`.

  Args:
    x_btc: float32 `[batch, time, channels]`.
    h_tc: float32 `[taps, channels]` (or `[taps, 1]`: the same response for every channel).

  Returns:
    float32 `[batch, time, channels]`: the first `time` samples of the full convolution, so the
    output at sample n depends only on input samples n - taps + 1 .. n.
  """
  length = x_btc.shape[1]
  # Taps past the signal's length cannot reach a kept output sample.
  h_tc = h_tc[:length]
  size = scipy.fft.next_fast_len(max(length + h_tc.shape[0] - 1, 2), real=True)
  spectrum = jnp.fft.rfft(x_btc, size, axis=1) * jnp.fft.rfft(h_tc, size, axis=0)[None]
  return jnp.fft.irfft(spectrum, size, axis=1)[:, :length].astype(jnp.float32)

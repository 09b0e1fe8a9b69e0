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


# Block length of `fft_convolve`'s partitioned form (FFTs of twice this), samples. In an A/B of
# block lengths 4096-65536 on a 32 s chunk it was the fastest, or within noise of it, for both
# the chain's 8192-tap EQ and its 92610-tap reverb (`benchmarks/infer.py --chain_stages` times
# the stages as they run).
BLOCK = 8192
# Shortest signal (samples) that `fft_convolve` convolves partitioned. Below it one FFT is as
# fast forward and faster with gradients: a chain tiny train step (value and gradient) on
# [4, 88200, 1] took 134 ms with one FFT against 206 ms partitioned, so training crops of a few
# seconds keep one FFT and inference chunks (32 s for the chain) are partitioned.
PARTITIONED_MIN = 32 * BLOCK


def fft_convolve(x_btc, h_tc):
  """Causal linear convolution along time of each channel with the same channel of `h_tc`.

  A signal of at least `PARTITIONED_MIN` samples is convolved by uniformly partitioned FFT
  convolution (`partitioned_convolve`), a shorter one by one FFT of the whole length; both are
  the same convolution to float precision. The partitioned form keeps every FFT at `2 * BLOCK`
  points, which stay in the cache, where one FFT of a long chunk does not.

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
  if length >= PARTITIONED_MIN:
    return partitioned_convolve(x_btc, h_tc, BLOCK)
  size = scipy.fft.next_fast_len(max(length + h_tc.shape[0] - 1, 2), real=True)
  spectrum = jnp.fft.rfft(x_btc, size, axis=1) * jnp.fft.rfft(h_tc, size, axis=0)[None]
  return jnp.fft.irfft(spectrum, size, axis=1)[:, :length].astype(jnp.float32)


def partitioned_convolve(x_btc, h_tc, block):
  """`fft_convolve` by uniformly partitioned convolution in blocks of `block` samples.

  The signal is cut into blocks of `block` samples and the response into partitions of as
  many taps; each is transformed by a `2 * block`-point FFT (which holds one block convolved
  with one partition whole). Output block k is the sum over partitions p of input block k - p
  times partition p, in the frequency domain, and the second halves of consecutive output
  blocks overlap-add. Same arguments and result as `fft_convolve`.
  """
  batch, length, channels = x_btc.shape
  blocks, parts = -(-length // block), -(-h_tc.shape[0] // block)
  x_bcn = jnp.pad(jnp.moveaxis(x_btc, 1, 2), ((0, 0), (0, 0), (0, blocks * block - length)))
  spectra = jnp.fft.rfft(x_bcn.reshape(batch, channels, blocks, block), 2 * block)
  # Partitions-1 silent blocks before the first, so block k - p exists for every k and p.
  spectra = jnp.pad(spectra, ((0, 0), (0, 0), (parts - 1, 0), (0, 0)))
  h_cn = jnp.pad(h_tc.T, ((0, 0), (0, parts * block - h_tc.shape[0])))
  partitions = jnp.fft.rfft(h_cn.reshape(h_cn.shape[0], parts, block), 2 * block)[None]
  total = sum(spectra[:, :, parts - 1 - p:parts - 1 - p + blocks] * partitions[:, :, p:p + 1]
              for p in range(parts))
  y = jnp.fft.irfft(total, 2 * block)  # [batch, channels, blocks, 2 * block]
  out = y[..., :block].at[:, :, 1:].add(y[:, :, :-1, block:])
  out = out.reshape(batch, channels, blocks * block)[:, :, :length]
  return jnp.moveaxis(out, 2, 1).astype(jnp.float32)

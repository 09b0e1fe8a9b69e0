"""Parametric EQ by frequency sampling: the RBJ biquads of `mixnet.dsp.filters`, in jnp.

Each `*_coeffs(sample_rate, ...)` returns the cookbook section `(b, a)` (two `[3]` arrays, same
formulas as `mixnet.dsp.filters.*_sos`), differentiable in frequency (Hz), gain (dB) and Q.
`response` evaluates `b(z) / a(z)` on the `size // 2 + 1` bins of an FFT grid; the product of a
chain's sections, brought back to time by an inverse FFT, is a causal FIR of `size` taps that is
the biquads' impulse response truncated (and time-aliased) at `size` samples. `size` is chosen so
that the slowest section allowed by the parameter ranges has decayed by then (a 20 Hz
Butterworth high-pass has a time constant of about 11 ms), which is what keeps the exported
IIR preset and this FIR equal to within float precision on music.
"""

import jax.numpy as jnp
import numpy as np

from mixnet.diffdsp import core

BUTTERWORTH_Q = float(1.0 / np.sqrt(2.0))


def _omega(sample_rate, freq_hz, q):
  w0 = 2.0 * jnp.pi * freq_hz / sample_rate
  return jnp.cos(w0), jnp.sin(w0) / (2.0 * q)


def highpass_coeffs(sample_rate, freq_hz, q=BUTTERWORTH_Q):
  """12 dB/octave high-pass, -3 dB at `freq_hz` for the Butterworth Q."""
  c, alpha = _omega(sample_rate, freq_hz, q)
  b = jnp.stack([(1 + c) / 2, -(1 + c), (1 + c) / 2])
  return b, jnp.stack([1 + alpha, -2 * c, 1 - alpha])


def lowpass_coeffs(sample_rate, freq_hz, q=BUTTERWORTH_Q):
  """12 dB/octave low-pass, -3 dB at `freq_hz` for the Butterworth Q."""
  c, alpha = _omega(sample_rate, freq_hz, q)
  b = jnp.stack([(1 - c) / 2, 1 - c, (1 - c) / 2])
  return b, jnp.stack([1 + alpha, -2 * c, 1 - alpha])


def peaking_coeffs(sample_rate, freq_hz, gain_db, q):
  """Bell: `gain_db` at `freq_hz`, 0 dB far from it."""
  c, alpha = _omega(sample_rate, freq_hz, q)
  amp = 10.0 ** (gain_db / 40.0)
  b = jnp.stack([1 + alpha * amp, -2 * c, 1 - alpha * amp])
  return b, jnp.stack([1 + alpha / amp, -2 * c, 1 - alpha / amp])


def _shelf_terms(sample_rate, freq_hz, gain_db, q):
  c, alpha = _omega(sample_rate, freq_hz, q)
  amp = 10.0 ** (gain_db / 40.0)
  return c, amp, 2.0 * jnp.sqrt(amp) * alpha


def low_shelf_coeffs(sample_rate, freq_hz, gain_db, q=BUTTERWORTH_Q):
  """Low shelf: `gain_db` below `freq_hz`, `gain_db / 2` at it."""
  c, amp, k = _shelf_terms(sample_rate, freq_hz, gain_db, q)
  b = amp * jnp.stack([(amp + 1) - (amp - 1) * c + k, 2 * ((amp - 1) - (amp + 1) * c),
                       (amp + 1) - (amp - 1) * c - k])
  a = jnp.stack([(amp + 1) + (amp - 1) * c + k, -2 * ((amp - 1) + (amp + 1) * c),
                 (amp + 1) + (amp - 1) * c - k])
  return b, a


def high_shelf_coeffs(sample_rate, freq_hz, gain_db, q=BUTTERWORTH_Q):
  """High shelf: `gain_db` above `freq_hz`, `gain_db / 2` at it."""
  c, amp, k = _shelf_terms(sample_rate, freq_hz, gain_db, q)
  b = amp * jnp.stack([(amp + 1) + (amp - 1) * c + k, -2 * ((amp - 1) + (amp + 1) * c),
                       (amp + 1) + (amp - 1) * c - k])
  a = jnp.stack([(amp + 1) - (amp - 1) * c + k, 2 * ((amp - 1) - (amp + 1) * c),
                 (amp + 1) - (amp - 1) * c - k])
  return b, a


def response(b, a, size):
  """Complex frequency response `b(z) / a(z)` at the `size // 2 + 1` bins of a size-`size` FFT."""
  z1 = jnp.exp(-1j * jnp.pi * jnp.arange(size // 2 + 1) / (size / 2))
  numerator = b[0] + b[1] * z1 + b[2] * z1 * z1
  return numerator / (a[0] + a[1] * z1 + a[2] * z1 * z1)


def eq_sections(eq, sample_rate):
  """The `(b, a)` sections of a parametric EQ, in chain order.

  Args:
    eq: physical parameters: `highpass_hz`, `low_shelf_hz`, `low_shelf_db`, `peak_hz`,
      `peak_db`, `peak_q` (each `[peaks]`), `high_shelf_hz`, `high_shelf_db`, `lowpass_hz`.
    sample_rate: Hz.
  """
  sections = [highpass_coeffs(sample_rate, eq["highpass_hz"]),
              low_shelf_coeffs(sample_rate, eq["low_shelf_hz"], eq["low_shelf_db"])]
  for i in range(eq["peak_hz"].shape[0]):
    sections.append(peaking_coeffs(sample_rate, eq["peak_hz"][i], eq["peak_db"][i],
                                   eq["peak_q"][i]))
  sections.append(high_shelf_coeffs(sample_rate, eq["high_shelf_hz"], eq["high_shelf_db"]))
  sections.append(lowpass_coeffs(sample_rate, eq["lowpass_hz"]))
  return sections


def eq_response(eq, sample_rate, size):
  """Product of the EQ's section responses on a size-`size` FFT grid, complex `[size // 2 + 1]`."""
  total = jnp.ones(size // 2 + 1, jnp.complex64)
  for b, a in eq_sections(eq, sample_rate):
    total = total * response(b, a, size)
  return total


def fir_size(sample_rate, seconds):
  """FIR length (a power of two, samples) covering at least `seconds`."""
  return 1 << int(np.ceil(np.log2(max(seconds * sample_rate, 2))))


def eq_fir(eq, sample_rate, size):
  """The EQ as a causal FIR of `size` taps (frequency-sampled biquads), float32 `[size, 1]`."""
  return jnp.fft.irfft(eq_response(eq, sample_rate, size), size)[:, None].astype(jnp.float32)


def equalize(x_btc, eq, sample_rate, size):
  """Applies the EQ as a causal `size`-tap FIR (`eq_fir`), float32 `[batch, time, channels]`."""
  return core.fft_convolve(x_btc, eq_fir(eq, sample_rate, size))

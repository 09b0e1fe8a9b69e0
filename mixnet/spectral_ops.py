"""Short-time Fourier transforms in jnp, with numpy twins for testing.

The STFT matches `torch.stft(x, fft_size, hop_size, win_length, torch.hann_window(win_length),
center=True, pad_mode="reflect", return_complex=True)`, which is what auraloss (and so most of the
audio literature) uses: a periodic Hann window of `win_length` samples, zero-padded on both sides
to `fft_size`, frames every `hop_size` samples, and with `center=True` the signal reflect-padded by
`fft_size // 2` on both sides so that frame `n` is centred on sample `n * hop_size`. Signals
shorter than the padding are reflected repeatedly (numpy's rule; torch would refuse them).

Shapes: signals `x_bt` are float32 `[batch, time]` (any leading batch dims are flattened by the
caller); spectra `spec_bnf` are complex64 `[batch, frames, fft_size // 2 + 1]` with
`frames = 1 + time // hop_size` when centred.

jnp functions: `stft`, `istft`, `magnitude`. numpy twins (same arguments, same results up to
float32 rounding): `np_stft`, `np_istft`.
"""

import math

import jax.numpy as jnp
import numpy as np


def hann_window(win_length, fft_size):
  """Periodic Hann window of `win_length`, zero-padded centrally to `fft_size` (torch.stft's rule).

  Returns:
    float64 numpy array `[fft_size]`.
  """
  if win_length > fft_size:
    raise ValueError(f"win_length {win_length} is longer than fft_size {fft_size}")
  n = np.arange(win_length)
  window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
  left = (fft_size - win_length) // 2
  return np.pad(window, (left, fft_size - win_length - left))


def num_frames(length, fft_size, hop_size, center=True):
  """Number of STFT frames for a signal of `length` samples."""
  padded = length + 2 * (fft_size // 2) if center else length
  if padded < fft_size:
    raise ValueError(f"signal of {length} samples is shorter than one frame of {fft_size}")
  return 1 + (padded - fft_size) // hop_size


def _frames(x_bt, fft_size, hop_size, n_frames):
  """Cuts `[batch, time]` into `[batch, n_frames, fft_size]` frames without a gather.

  The signal is viewed as blocks of `hop_size` samples; frame n is the concatenation of blocks
  n .. n + ceil(fft_size / hop_size) - 1, cut to `fft_size`. Slices and a concatenation run much
  faster than an index gather on XLA:CPU and have a cheap gradient.
  """
  blocks_per_frame = math.ceil(fft_size / hop_size)
  n_blocks = n_frames + blocks_per_frame - 1
  needed = n_blocks * hop_size
  x_bt = x_bt[:, :needed]
  x_bt = jnp.pad(x_bt, ((0, 0), (0, needed - x_bt.shape[1])))
  blocks = x_bt.reshape(x_bt.shape[0], n_blocks, hop_size)
  frames = jnp.concatenate(
      [blocks[:, r:r + n_frames] for r in range(blocks_per_frame)], axis=-1)
  return frames[..., :fft_size]


def stft(x_bt, fft_size, hop_size, win_length, center=True):
  """Complex STFT of real signals.

  Args:
    x_bt: float32 `[batch, time]`.
    fft_size: FFT length in samples.
    hop_size: frame advance in samples.
    win_length: Hann window length in samples (<= fft_size).
    center: reflect-pad by `fft_size // 2` so frames are centred on `n * hop_size`.

  Returns:
    complex64 `[batch, frames, fft_size // 2 + 1]`.
  """
  x_bt = jnp.asarray(x_bt, jnp.float32)
  n_frames = num_frames(x_bt.shape[-1], fft_size, hop_size, center)
  if center:
    x_bt = jnp.pad(x_bt, ((0, 0), (fft_size // 2, fft_size // 2)), mode="reflect")
  window = jnp.asarray(hann_window(win_length, fft_size), jnp.float32)
  frames = _frames(x_bt, fft_size, hop_size, n_frames) * window
  return jnp.fft.rfft(frames, axis=-1)


def magnitude(spec, eps=1e-8):
  """`sqrt(max(|spec|^2, eps))`: auraloss's magnitude, with a finite gradient at zero."""
  power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
  return jnp.sqrt(jnp.maximum(power, eps))


def _overlap_add(frames_bnf, hop_size):
  """Sums `[batch, frames, size]` frames placed every `hop_size` samples; `[batch, time]` out."""
  batch, n_frames, size = frames_bnf.shape
  blocks_per_frame = math.ceil(size / hop_size)
  frames_bnf = jnp.pad(frames_bnf, ((0, 0), (0, 0), (0, blocks_per_frame * hop_size - size)))
  chunks = frames_bnf.reshape(batch, n_frames, blocks_per_frame, hop_size)
  out = 0.0
  for r in range(blocks_per_frame):
    out = out + jnp.pad(chunks[:, :, r], ((0, 0), (r, blocks_per_frame - 1 - r), (0, 0)))
  return out.reshape(batch, (n_frames + blocks_per_frame - 1) * hop_size)


def istft(spec_bnf, fft_size, hop_size, win_length, length, center=True):
  """Inverse of `stft` by windowed overlap-add (least squares, like torch.istft).

  Exact (to float32 rounding) when the squared window overlap-adds to a non-zero sum at every
  output sample (the NOLA condition, e.g. Hann with hop <= win_length / 2).

  Args:
    spec_bnf: complex `[batch, frames, fft_size // 2 + 1]`.
    fft_size, hop_size, win_length, center: as given to `stft`.
    length: number of output samples (the original signal length).

  Returns:
    float32 `[batch, length]`.
  """
  window_np = hann_window(win_length, fft_size)
  window = jnp.asarray(window_np, jnp.float32)
  frames = jnp.fft.irfft(spec_bnf, n=fft_size, axis=-1) * window
  n_frames = spec_bnf.shape[1]
  signal = _overlap_add(frames, hop_size)
  norm = _np_overlap_add(np.broadcast_to(window_np**2, (1, n_frames, fft_size)), hop_size)[0]
  start = fft_size // 2 if center else 0
  signal = signal[:, start:start + length]
  norm = norm[start:start + length]
  if signal.shape[1] < length:
    raise ValueError(f"{n_frames} frames cannot make {length} samples")
  norm = np.where(norm > 1e-11, norm, 1.0).astype(np.float32)
  return signal / norm


def _np_overlap_add(frames_bnf, hop_size):
  batch, n_frames, size = frames_bnf.shape
  out = np.zeros((batch, (n_frames - 1) * hop_size + size), frames_bnf.dtype)
  for n in range(n_frames):
    out[:, n * hop_size:n * hop_size + size] += frames_bnf[:, n]
  return out


def np_stft(x_bt, fft_size, hop_size, win_length, center=True):
  """numpy twin of `stft` (float64 inside); complex128 `[batch, frames, fft_size // 2 + 1]`."""
  x_bt = np.asarray(x_bt, np.float64)
  n_frames = num_frames(x_bt.shape[-1], fft_size, hop_size, center)
  if center:
    x_bt = np.pad(x_bt, ((0, 0), (fft_size // 2, fft_size // 2)), mode="reflect")
  idx = np.arange(n_frames)[:, None] * hop_size + np.arange(fft_size)[None, :]
  frames = x_bt[:, idx] * hann_window(win_length, fft_size)
  return np.fft.rfft(frames, axis=-1)


def np_istft(spec_bnf, fft_size, hop_size, win_length, length, center=True):
  """numpy twin of `istft`; float64 `[batch, length]`."""
  window = hann_window(win_length, fft_size)
  frames = np.fft.irfft(spec_bnf, n=fft_size, axis=-1) * window
  signal = _np_overlap_add(frames, hop_size)
  norm = _np_overlap_add(np.broadcast_to(window**2, (1,) + frames.shape[1:]), hop_size)[0]
  start = fft_size // 2 if center else 0
  signal, norm = signal[:, start:start + length], norm[start:start + length]
  return signal / np.where(norm > 1e-11, norm, 1.0)

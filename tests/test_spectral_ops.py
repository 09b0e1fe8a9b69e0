"""jnp STFT/iSTFT against their numpy twins, and perfect reconstruction."""

import jax
import numpy as np
import pytest

from mixnet import spectral_ops

# (fft_size, hop_size, win_length): the loss's resolutions, the spectral model's, and one whose
# hop does not divide the FFT size.
RESOLUTIONS = [(1024, 120, 600), (2048, 240, 1200), (512, 50, 240), (1024, 256, 1024),
               (64, 24, 48)]


def _signal(batch, length, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(length) / 44100.0
  tone = 0.5 * np.sin(2 * np.pi * 220.0 * t * (1 + t))
  return (tone + 0.1 * rng.standard_normal((batch, length))).astype(np.float32)


@pytest.mark.parametrize("fft_size,hop_size,win_length", RESOLUTIONS)
def test_jnp_and_np_stft_agree(fft_size, hop_size, win_length):
  length = 4801
  x = _signal(2, length)
  spec = np.asarray(spectral_ops.stft(x, fft_size, hop_size, win_length))
  np_spec = spectral_ops.np_stft(x, fft_size, hop_size, win_length)
  assert spec.shape == np_spec.shape == (2, 1 + length // hop_size, fft_size // 2 + 1)
  np.testing.assert_allclose(spec, np_spec, atol=2e-5 * np.abs(np_spec).max())


def test_stft_of_a_sine_peaks_at_its_bin():
  fft_size, hop = 256, 64
  x = np.sin(2 * np.pi * 16 * np.arange(2048) / fft_size)[None].astype(np.float32)
  mag = np.abs(np.asarray(spectral_ops.stft(x, fft_size, hop, fft_size)))
  assert np.all(np.argmax(mag[:, 4:-4], axis=-1) == 16)
  # A unit sine under a Hann window of N samples peaks at N / 4.
  np.testing.assert_allclose(mag[:, 4:-4, 16], fft_size / 4, rtol=1e-3)


def test_short_signals_are_reflected_repeatedly():
  x = _signal(1, 100)
  spec = np.asarray(spectral_ops.stft(x, 1024, 256, 1024))
  np.testing.assert_allclose(spec, spectral_ops.np_stft(x, 1024, 256, 1024), atol=1e-3)
  assert spec.shape == (1, 1, 513)


@pytest.mark.parametrize("fft_size,hop_size,win_length", [(1024, 256, 1024), (64, 24, 48),
                                                          (1024, 120, 600)])
@pytest.mark.parametrize("length", [1, 4999])
def test_istft_inverts_stft(fft_size, hop_size, win_length, length):
  x = _signal(2, length, seed=1)
  spec = spectral_ops.stft(x, fft_size, hop_size, win_length)
  y = np.asarray(spectral_ops.istft(spec, fft_size, hop_size, win_length, length))
  assert y.shape == x.shape
  np.testing.assert_allclose(y, x, atol=1e-5)
  np_y = spectral_ops.np_istft(spectral_ops.np_stft(x, fft_size, hop_size, win_length), fft_size,
                               hop_size, win_length, length)
  np.testing.assert_allclose(np_y, x, atol=1e-10)


def test_istft_jnp_and_np_agree_on_arbitrary_spectra():
  rng = np.random.default_rng(2)
  spec = rng.standard_normal((2, 30, 257)) + 1j * rng.standard_normal((2, 30, 257))
  y = np.asarray(spectral_ops.istft(spec.astype(np.complex64), 512, 128, 512, 3000))
  np.testing.assert_allclose(y, spectral_ops.np_istft(spec, 512, 128, 512, 3000), atol=1e-4)


def test_stft_gradient_is_finite_for_silence():
  grad = jax.grad(lambda x: spectral_ops.magnitude(spectral_ops.stft(x, 256, 64, 128)).sum())(
      np.zeros((1, 1000), np.float32))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_bad_parameters_raise():
  with pytest.raises(ValueError, match="win_length 2048 is longer than fft_size 1024"):
    spectral_ops.stft(_signal(1, 4000), 1024, 256, 2048)
  with pytest.raises(ValueError, match="shorter than one frame"):
    spectral_ops.stft(_signal(1, 100), 1024, 256, 1024, center=False)

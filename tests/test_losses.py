"""L1, multi-resolution STFT (against an independent numpy implementation) and combined loss."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.signal

from experiments import base
from mixnet import losses

SR = 44100
# One compiled loss gradient shared by the silence cases (same shapes, so it compiles once).
_loss_and_grad = jax.jit(jax.value_and_grad(
    lambda pred, target: losses.combined_loss(pred, target, base.get_config("tiny").loss)[0]))


def _vocalish(batch, length, channels=1, seed=0):
  """A gliding harmonic tone with a syllable envelope, plus a noise floor: `[b, t, c]`."""
  rng = np.random.default_rng(seed)
  t = np.arange(length) / SR
  f0 = 180.0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
  phase = 2 * np.pi * np.cumsum(f0) / SR
  tone = sum(np.sin(k * phase) / k for k in range(1, 8))
  envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
  x = 0.3 * tone * envelope
  x = x[None, :, None] + 1e-3 * rng.standard_normal((batch, length, channels))
  return x.astype(np.float32)


def _reference_mr_stft(pred_btc, target_btc, fft_sizes, hop_sizes, win_lengths):
  """The auraloss definition per clip, written independently with scipy's window and explicit
  framing; spectral convergence averaged over clips (batch items and channels)."""
  def mag(x_bt, fft, hop, win):
    window = scipy.signal.get_window("hann", win, fftbins=True)
    window = np.pad(window, ((fft - win) // 2, fft - win - (fft - win) // 2))
    padded = np.pad(x_bt, ((0, 0), (fft // 2, fft // 2)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, fft, axis=-1)[:, ::hop]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    return np.sqrt(np.maximum(power, 1e-8))

  pred = np.transpose(pred_btc, (0, 2, 1)).reshape(-1, pred_btc.shape[1]).astype(np.float64)
  target = np.transpose(target_btc, (0, 2, 1)).reshape(-1, target_btc.shape[1]).astype(np.float64)
  total = 0.0
  for fft, hop, win in zip(fft_sizes, hop_sizes, win_lengths, strict=True):
    x_mag, y_mag = mag(pred, fft, hop, win), mag(target, fft, hop, win)
    sc = np.mean([np.linalg.norm(y - x) / np.linalg.norm(y) for x, y in zip(x_mag, y_mag,
                                                                                strict=True)])
    total += sc + np.mean(np.abs(np.log(y_mag) - np.log(x_mag)))
  return total / len(fft_sizes)


def _eq(x_btc, gain_db=6.0, cutoff_hz=2000.0):
  """A high shelf-ish EQ: x + (g - 1) * highpass(x)."""
  b, a = scipy.signal.butter(2, cutoff_hz, "highpass", fs=SR)
  high = scipy.signal.lfilter(b, a, x_btc, axis=1)
  return (x_btc + (10 ** (gain_db / 20) - 1) * high).astype(np.float32)


def test_l1():
  pred = np.array([[[1.0], [2.0]], [[0.0], [-1.0]]], np.float32)
  assert float(losses.l1(pred, np.zeros_like(pred))) == pytest.approx(1.0)
  assert float(losses.l1(pred, pred)) == 0.0


@pytest.mark.parametrize("kind", ["noise", "vocal_eq", "vocal_gain", "stereo_reverb"])
def test_mr_stft_matches_independent_numpy(kind):
  rng = np.random.default_rng(3)
  if kind == "noise":
    target = rng.standard_normal((2, 8000, 1)).astype(np.float32)
    pred = (0.7 * target + 0.3 * rng.standard_normal(target.shape)).astype(np.float32)
  elif kind == "vocal_eq":
    target = _vocalish(2, 9001)
    pred = _eq(target)
  elif kind == "vocal_gain":
    target = _vocalish(1, 6000)
    pred = 0.5 * target
  else:
    target = _vocalish(2, 7000, channels=2)
    impulse = np.exp(-np.arange(2000) / 400.0) * rng.standard_normal(2000) * 0.05
    pred = scipy.signal.fftconvolve(target, impulse[None, :, None], axes=1)[:, :7000]
    pred = (target + pred).astype(np.float32)
  got = float(losses.multi_resolution_stft_loss(pred, target))
  want = _reference_mr_stft(pred, target, (1024, 2048, 512), (120, 240, 50), (600, 1200, 240))
  assert abs(got - want) / want < 1e-4, (got, want)


def test_mr_stft_is_zero_for_identical_and_grows_with_change():
  target = _vocalish(2, 8000)
  assert float(losses.multi_resolution_stft_loss(target, target)) < 1e-6
  by_gain = [float(losses.multi_resolution_stft_loss(g * target, target))
             for g in (1.0, 1.25, 2.0, 4.0)]
  assert by_gain == sorted(by_gain) and by_gain[1] > 0.1
  by_eq = [float(losses.multi_resolution_stft_loss(_eq(target, db), target))
           for db in (0.0, 3.0, 6.0, 12.0)]
  assert by_eq == sorted(by_eq) and by_eq[1] > 0.01


def test_batch_loss_is_the_mean_of_item_losses():
  # What makes data-parallel training exact: the mean of per-device losses is the global loss.
  target = _vocalish(4, 6000)
  pred = _eq(target) * np.array([1.0, 0.5, 2.0, 0.1], np.float32)[:, None, None]
  items = [losses.multi_resolution_stft_loss(pred[i:i + 1], target[i:i + 1]) for i in range(4)]
  np.testing.assert_allclose(losses.multi_resolution_stft_loss(pred, target), np.mean(items),
                             rtol=1e-5)


def test_channels_are_averaged_like_batch_items():
  mono = _vocalish(1, 6000)
  pred = _eq(mono)
  stereo_loss = losses.multi_resolution_stft_loss(np.repeat(pred, 2, -1), np.repeat(mono, 2, -1))
  np.testing.assert_allclose(stereo_loss, losses.multi_resolution_stft_loss(pred, mono),
                             rtol=1e-5)


@pytest.mark.parametrize("pred_silent,target_silent", [(True, True), (True, False),
                                                      (False, True)])
def test_gradients_are_finite_for_silence(pred_silent, target_silent):
  signal = _vocalish(1, 4000)
  pred = np.zeros_like(signal) if pred_silent else signal
  target = np.zeros_like(signal) if target_silent else signal
  value, grad = _loss_and_grad(jnp.asarray(pred), jnp.asarray(target))
  assert np.isfinite(float(value))
  assert np.all(np.isfinite(np.asarray(grad)))
  if pred_silent != target_silent:
    assert np.any(np.asarray(grad) != 0)


def test_combined_loss_weights_and_terms():
  target = _vocalish(1, 5000)
  pred = _eq(target, 6.0)
  config = ml_collections.ConfigDict(dict(
      l1_weight=2.0, stft_weight=0.5, fft_sizes=(512, 256), hop_sizes=(128, 64),
      win_lengths=(512, 256)))
  loss, terms = losses.combined_loss(pred, target, config)
  l1 = float(losses.l1(pred, target))
  mr = float(losses.multi_resolution_stft_loss(pred, target, (512, 256), (128, 64), (512, 256)))
  assert float(terms["l1"]) == pytest.approx(l1)
  assert float(terms["mr_stft"]) == pytest.approx(mr)
  assert float(loss) == pytest.approx(2.0 * l1 + 0.5 * mr)


def test_mismatched_resolutions_raise():
  x = _vocalish(1, 3000)
  with pytest.raises(ValueError, match="same length"):
    losses.multi_resolution_stft_loss(x, x, (512, 256), (128,), (512, 256))


def test_octave_bands_cover_every_bin_once_counted_down_from_nyquist():
  bands = np.asarray(losses.octave_bands(2048))
  assert bands.shape == (1025, losses.ENVELOPE_BANDS)
  np.testing.assert_array_equal(bands.sum(axis=1), 1.0)
  assert bands[1024, 0] == bands[600, 0] == 1 and bands[511, 1] == 1  # 0.5-1, 0.25-0.5 Nyquist
  assert bands[0, -1] == bands[1, -1] == 1


def test_envelope_loss_reads_level_in_db_and_ignores_fine_structure():
  """A gain of g dB costs |g| / 10; another noise with the same envelope costs almost nothing."""
  rng = np.random.default_rng(0)
  envelope = np.exp(-np.linspace(0, 6, 16000))[None, :, None]
  noise_a = (rng.standard_normal((2, 16000, 1)) * envelope).astype(np.float32)
  noise_b = (rng.standard_normal((2, 16000, 1)) * envelope).astype(np.float32)
  assert float(losses.band_envelope_loss(noise_a, noise_a)) == 0.0
  assert float(losses.band_envelope_loss(noise_a * 10 ** (-6 / 20), noise_a)) == pytest.approx(
      0.6, abs=1e-3)
  assert float(losses.band_envelope_loss(noise_b, noise_a)) < 0.15  # under 1.5 dB
  assert float(losses.multi_resolution_stft_loss(noise_b, noise_a)) > 1.0
  quiet_tail = noise_a * np.exp(-np.linspace(0, 3, 16000))[None, :, None]
  assert float(losses.band_envelope_loss(quiet_tail, noise_a)) > 0.5


def test_envelope_term_is_added_only_with_a_weight():
  target = _vocalish(1, 5000)
  pred = _eq(target, 6.0)
  config = base.get_config("tiny").loss
  loss, terms = losses.combined_loss(pred, target, config)
  assert "envelope" not in terms
  config.envelope_weight = 0.5
  weighted, terms = losses.combined_loss(pred, target, config)
  assert float(weighted) == pytest.approx(float(loss) + 0.5 * float(terms["envelope"]), rel=1e-6)
  _, grad = jax.value_and_grad(lambda p: losses.band_envelope_loss(p, jnp.zeros_like(p)))(pred)
  assert np.all(np.isfinite(np.asarray(grad)))

"""mixnet.diffdsp: each jnp stage against its numpy twin in mixnet.dsp and its definition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from mixnet import dsp
from mixnet.diffdsp import core, dynamics, filters, gain, reverberation, saturation

SR = 16000


def _noise(seconds=0.5, channels=1, seed=0, level=0.1):
  rng = np.random.default_rng(seed)
  return (level * rng.standard_normal((int(seconds * SR), channels))).astype(np.float32)


def _eq():
  return dict(highpass_hz=60.0, low_shelf_hz=200.0, low_shelf_db=3.0,
              peak_hz=np.array([400.0, 2000.0]), peak_db=np.array([-4.0, 5.0]),
              peak_q=np.array([1.5, 0.8]), high_shelf_hz=5000.0, high_shelf_db=-3.0,
              lowpass_hz=7000.0)


def _eq_bands():
  return [dsp.EqBand("highpass", 60.0), dsp.EqBand("low_shelf", 200.0, 3.0),
          dsp.EqBand("peaking", 400.0, -4.0, 1.5), dsp.EqBand("peaking", 2000.0, 5.0, 0.8),
          dsp.EqBand("high_shelf", 5000.0, -3.0), dsp.EqBand("lowpass", 7000.0)]


def _error_db(got, want):
  return 10 * np.log10(np.sum((np.asarray(got) - want) ** 2) / np.sum(np.asarray(want) ** 2))


@pytest.mark.parametrize("log", [False, True])
def test_smooth_maps_stay_in_range_and_invert(log):
  forward = core.log_bounded if log else core.bounded
  inverse = core.log_bounded_inverse if log else core.bounded_inverse
  values = np.array([1.5, 30.0, 990.0])
  np.testing.assert_allclose(forward(inverse(values, 1.0, 1000.0), 1.0, 1000.0), values,
                             rtol=1e-5)
  extreme = np.asarray(forward(jnp.array([-80.0, 80.0]), 1.0, 1000.0))
  # In range up to float32 rounding of exp(log(high)).
  assert np.all((extreme >= 1.0 - 1e-6) & (extreme <= 1000.0 * (1 + 1e-6)))
  with pytest.raises(ValueError, match="not strictly inside"):
    inverse(1000.0, 1.0, 1000.0)


def test_fft_convolve_is_causal_linear_convolution():
  x_btc = _noise(0.05, channels=2)[None]
  h_tc = _noise(0.01, channels=2, seed=1)
  got = np.asarray(core.fft_convolve(jnp.asarray(x_btc), jnp.asarray(h_tc)))[0]
  for c in range(2):
    want = np.convolve(x_btc[0, :, c], h_tc[:, c])[:x_btc.shape[1]]
    np.testing.assert_allclose(got[:, c], want, atol=1e-5)


@pytest.mark.parametrize("taps,block", [(40, 64), (64, 64), (300, 64), (900, 128)])
def test_partitioned_convolution_is_the_same_convolution(taps, block):
  """Blocks and partitions with remainders, a response longer than the signal, a shared one."""
  rng = np.random.default_rng(taps)
  x_btc = rng.standard_normal((2, 700, 2)).astype(np.float32)
  for h_tc in (rng.standard_normal((taps, 2)), rng.standard_normal((taps, 1))):
    h_tc = h_tc.astype(np.float32)
    got = np.asarray(core.partitioned_convolve(jnp.asarray(x_btc), jnp.asarray(h_tc[:700]),
                                               block))
    for b, c in np.ndindex(2, 2):
      want = np.convolve(x_btc[b, :, c], h_tc[:, min(c, h_tc.shape[1] - 1)])[:700]
      np.testing.assert_allclose(got[b, :, c], want, atol=1e-4)
  # 700 samples take fft_convolve's one-FFT path: the gradients of the two forms agree too.
  assert 700 < core.PARTITIONED_MIN
  grads = [jax.grad(lambda h, f=f: jnp.sum(jnp.sin(f(jnp.asarray(x_btc), h))))(
      jnp.asarray(h_tc[:700])) for f in (core.fft_convolve,
                                         lambda x, h: core.partitioned_convolve(x, h, block))]
  np.testing.assert_allclose(np.asarray(grads[1]), np.asarray(grads[0]), rtol=1e-3, atol=1e-3)


def test_long_signals_take_the_partitioned_path(monkeypatch):
  x_btc = jnp.asarray(_noise(core.PARTITIONED_MIN / SR)[None])
  h_tc = jnp.asarray(_noise(0.01, seed=1))
  lengths = []
  partitioned = core.partitioned_convolve
  monkeypatch.setattr(core, "partitioned_convolve",
                      lambda x, h, block: lengths.append(x.shape[1]) or partitioned(x, h, block))
  core.fft_convolve(x_btc[:, :-1], h_tc)  # one sample short of the threshold: one FFT
  core.fft_convolve(x_btc, h_tc)
  assert lengths == [core.PARTITIONED_MIN]
  monkeypatch.undo()
  np.testing.assert_allclose(np.asarray(core.fft_convolve(x_btc, h_tc)),
                             np.asarray(core.partitioned_convolve(x_btc, h_tc, core.BLOCK)),
                             atol=1e-6)
  want = scipy.signal.fftconvolve(np.asarray(x_btc)[0, :, 0], np.asarray(h_tc)[:, 0])
  np.testing.assert_allclose(np.asarray(core.fft_convolve(x_btc, h_tc))[0, :, 0],
                             want[:x_btc.shape[1]], atol=1e-4)


def test_eq_response_is_the_rbj_formula():
  size = 4096
  for (b, a), band in zip(filters.eq_sections(_eq(), SR), _eq_bands(), strict=True):
    sos = dsp.filters.band_sos(SR, band)[0]
    w = np.pi * np.arange(size // 2 + 1) / (size / 2)
    _, want = scipy.signal.freqz(sos[:3], sos[3:], worN=w)
    got = np.asarray(filters.response(b, a, size))
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_eq_band_gains_at_their_frequencies():
  size = SR  # bin k is k Hz
  peak = np.asarray(filters.response(*filters.peaking_coeffs(SR, 400.0, -4.0, 1.5), size))
  shelf = np.asarray(filters.response(*filters.low_shelf_coeffs(SR, 200.0, 6.0), size))
  highpass = np.asarray(filters.response(*filters.highpass_coeffs(SR, 60.0), size))
  assert 20 * np.log10(abs(peak[400])) == pytest.approx(-4.0, abs=0.01)
  assert 20 * np.log10(abs(shelf[200])) == pytest.approx(3.0, abs=0.02)
  assert 20 * np.log10(abs(highpass[60])) == pytest.approx(-3.01, abs=0.03)


def test_equalize_matches_numpy_iir_chain():
  x_tc = _noise()
  eq = {k: jnp.asarray(v, jnp.float32) for k, v in _eq().items()}
  size = filters.fir_size(SR, 0.18)
  got = filters.equalize(jnp.asarray(x_tc[None]), eq, SR, size)[0]
  assert _error_db(got, dsp.equalize(x_tc, SR, _eq_bands())) < -80


def _comp():
  return dict(threshold_db=-25.0, ratio=4.0, knee_db=6.0, attack_ms=5.0, release_ms=80.0,
              makeup_db=2.0)


def _steps(level=0.1):
  """Noise that jumps up 12 dB half-way (stereo, so the linked detector is exercised)."""
  x_tc = _noise(0.5, channels=2, level=level)
  return x_tc * np.where(np.arange(x_tc.shape[0]) < SR // 2, 1.0, 4.0)[:, None].astype(np.float32)


def test_static_curve_matches_numpy():
  level = np.linspace(-60, 0, 241)
  got = dynamics.static_curve_db(jnp.asarray(level), -25.0, 4.0, 6.0)
  np.testing.assert_allclose(got, dsp.static_curve_db(level, -25.0, 4.0, 6.0), atol=1e-4)
  above = dynamics.static_curve_db(jnp.asarray([-5.0]), -25.0, 4.0, 6.0)
  assert float(above[0]) == pytest.approx(-25.0 + 20.0 / 4.0)


@pytest.mark.parametrize("method", dynamics.METHODS)
def test_compressor_matches_numpy(method):
  x_tc = _steps()
  comp = {k: jnp.float32(v) for k, v in _comp().items()}
  run = jax.jit(lambda x, c: dynamics.compress(x, SR, c, method))
  got = np.asarray(run(jnp.asarray(x_tc[None]), comp))[0]
  np.testing.assert_allclose(got, dsp.compress(x_tc, SR, **_comp()), atol=2e-6)


def test_compressor_time_constants():
  """After a level step, 63.2% of the change in gain reduction is covered in attack/release."""
  period = dsp.dynamics.control_period(SR)
  target = np.where(np.arange(2000) < 1000, 0.0, 10.0)
  target = np.concatenate([target, np.zeros(2000)])[None]
  poles = [dynamics.frame_pole(t, SR, period) for t in (5.0, 80.0)]
  state = np.asarray(jax.jit(dynamics.smooth_reduction)(jnp.asarray(target), *poles))[0]
  attack_frames = 5.0e-3 * SR / period
  release_frames = 80.0e-3 * SR / period
  assert state[1000 + int(round(attack_frames)) - 1] == pytest.approx(6.32, abs=0.1)
  assert state[2000 + int(round(release_frames)) - 1] == pytest.approx(10 - 6.32, abs=0.1)


def test_compressor_methods_have_the_same_gradient():
  # Quiet enough that some control frames fall inside the knee (knee_db has a gradient there).
  x_btc = jnp.asarray(_steps(level=0.02)[None])
  comp = {k: jnp.float32(v) for k, v in _comp().items()}
  grads = [jax.jit(jax.grad(lambda c, m=m: jnp.sum(dynamics.compress(x_btc, SR, c, m) ** 2)))(
      comp) for m in dynamics.METHODS]
  for key in comp:
    assert np.isfinite(grads[0][key]) and grads[0][key] != 0.0, key
    assert float(grads[1][key]) == pytest.approx(float(grads[0][key]), rel=1e-3, abs=1e-6), key
  with pytest.raises(ValueError, match="compressor method"):
    dynamics.smooth_reduction(jnp.zeros((1, 4)), 0.5, 0.5, "fir")


def test_saturation_matches_numpy():
  x_tc = _noise(level=0.5)
  got = np.asarray(saturation.saturate(jnp.asarray(x_tc[None]), 12.0, 0.4))[0]
  np.testing.assert_allclose(got, dsp.saturate(x_tc, SR, 12.0, 0.4, oversample=1), atol=1e-6)
  # The numpy chain oversamples 2x; on a vocal-band signal the two stay close.
  band_tc = dsp.lowpass(x_tc, SR, 3000.0)
  got = np.asarray(saturation.saturate(jnp.asarray(band_tc[None]), 12.0, 0.4))[0]
  assert _error_db(got, dsp.saturate(band_tc, SR, 12.0, 0.4)) < -30


def _band(ir_t, lo, hi):
  sos = scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=SR, output="sos")
  return scipy.signal.sosfilt(sos, ir_t)


def test_reverb_decay_per_band_by_schroeder_integration():
  edges = (500.0, 2000.0)
  noise = reverberation.band_noise(int(1.2 * SR), 1, SR, edges, 0)
  rt60 = jnp.array([0.8, 0.5, 0.25])
  ir_tc = np.asarray(reverberation.impulse_response(noise, SR, rt60, jnp.zeros(3), 0.0, 50.0))
  assert np.sum(ir_tc ** 2) == pytest.approx(1.0, rel=1e-4)
  for (lo, hi), want in zip([(150, 350), (800, 1400), (3000, 6000)], [0.8, 0.5, 0.25],
                            strict=True):
    assert reverberation.schroeder_rt60(_band(ir_tc[:, 0], lo, hi), SR) == pytest.approx(
        want, rel=0.1)


def test_reverb_predelay_and_send():
  noise = reverberation.band_noise(SR // 4, 1, SR, (1000.0,), 0)
  ir_tc = np.asarray(reverberation.impulse_response(noise, SR, jnp.array([0.1, 0.1]),
                                                    jnp.zeros(2), 20.0, 50.0))
  assert ir_tc.shape == (SR // 4 + int(0.05 * SR), 1)
  onset = int(0.02 * SR)
  assert np.max(np.abs(ir_tc[:onset - 8])) < 1e-2 * np.max(np.abs(ir_tc[onset:onset + 64]))
  x_btc = jnp.asarray(_noise(0.3)[None])
  wet = reverberation.reverb(x_btc, jnp.asarray(ir_tc), -6.0) - x_btc
  want = 10 ** (-6 / 20) * core.fft_convolve(x_btc, jnp.asarray(ir_tc))
  np.testing.assert_allclose(wet, want, atol=1e-5)


def test_reverb_buildup_shapes_the_onset_by_its_definition():
  """With `buildup_ms`, the response is the plain one times 1 - exp(-t / buildup), rescaled."""
  noise = reverberation.band_noise(SR // 2, 1, SR, (1000.0,), 0)
  rt60 = jnp.array([0.3, 0.2])
  plain = np.asarray(reverberation.impulse_response(noise, SR, rt60, jnp.zeros(2), 0.0, 0.0))
  built = np.asarray(reverberation.impulse_response(noise, SR, rt60, jnp.zeros(2), 0.0, 0.0,
                                                    buildup_ms=40.0))
  t = np.arange(len(plain)) / SR
  shaped = plain[:, 0] * (1 - np.exp(-t / 0.04))
  np.testing.assert_allclose(built[:, 0], shaped / np.sqrt(np.sum(shaped ** 2)), atol=2e-5)
  assert np.sum(built[:int(0.02 * SR)] ** 2) < 0.5 * np.sum(plain[:int(0.02 * SR)] ** 2)


def test_band_noise_is_fixed_and_bands_sum_to_white_noise():
  a = reverberation.band_noise(4000, 2, SR, (500.0, 2000.0), 3)
  assert a is reverberation.band_noise(4000, 2, SR, (500.0, 2000.0), 3)
  np.testing.assert_allclose(a.sum(axis=1), np.random.default_rng(3).standard_normal((2, 4000)),
                             atol=1e-5)
  assert reverberation.band_edges(SR) == (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)


def test_split_bands_of_a_learned_noise_is_the_fixed_split_and_linear():
  """The jnp split (a learned noise) is the numpy constant's split, and its gradient reaches it."""
  edges = (500.0, 2000.0)
  white = reverberation.white_noise(4000, 2, 3)
  split = np.asarray(reverberation.split_bands(jnp.asarray(white), SR, edges))
  np.testing.assert_allclose(split, reverberation.band_noise(4000, 2, SR, edges, 3), atol=1e-5)
  # Only the first band's content of a probe reaches the first band.
  probe = np.zeros(4000, np.float32)
  probe[0] = 1.0
  grad = jax.grad(lambda n: reverberation.split_bands(n, SR, edges)[0, 0] @ probe)(
      jnp.asarray(white))
  spectrum = np.abs(np.fft.rfft(np.asarray(grad[0])))
  freqs = np.fft.rfftfreq(4000, 1 / SR)
  assert spectrum[freqs < 400].min() > 0.99 and spectrum[freqs > 600].max() < 1e-5
  assert np.all(np.asarray(grad[1]) == 0)


def test_staging_gain_brings_the_whole_take_to_the_reference():
  x_tc = _noise(1.0)
  gain_db = gain.staging_gain_db(x_tc, SR, -20.0)
  staged = x_tc * np.float32(10 ** (gain_db / 20))
  assert dsp.integrated_loudness(staged, SR) == pytest.approx(-20.0, abs=0.01)
  assert gain.staging_gain_db(np.zeros((SR, 1), np.float32), SR, -20.0) == 0.0

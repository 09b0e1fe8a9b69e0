"""Tests of the DSP vocal chain: each stage against its definition, then the whole chain."""

import dataclasses

import numpy as np
import pyloudnorm
import pytest
import scipy.signal

from mixnet import dsp
from mixnet.dsp import chain, dynamics, filters, limiter, polyphase, reverberation

SR = 44100


def sine(freq_hz, seconds, amplitude=1.0, sample_rate=SR, channels=1):
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  tone = amplitude * np.sin(2 * np.pi * freq_hz * t)
  return np.repeat(tone[:, None], channels, axis=1).astype(np.float32)


def vocal(seconds, sample_rate=SR, seed=0):
  """A voice-like signal: harmonics with vibrato, syllable envelope, breath and sibilance."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  f0 = 200.0 * (1.0 + 0.02 * np.sin(2 * np.pi * 5.0 * t))
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate
  voice = sum(np.sin(k * phase) / k for k in range(1, 15))
  envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0.0, None)
  noise = rng.standard_normal(t.size)
  hiss = scipy.signal.sosfilt(
      scipy.signal.butter(4, 0.3 * sample_rate, "high", fs=sample_rate, output="sos"), noise)
  audio = 0.2 * voice * envelope + 0.005 * noise + 0.1 * hiss * (np.sin(2 * np.pi * 0.7 * t) > 0.8)
  return audio[:, None].astype(np.float32)


def rms_db(x):
  return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def response_db(sos, freq_hz):
  _, h = scipy.signal.sosfreqz(sos, worN=[freq_hz], fs=SR)
  return 20 * np.log10(np.abs(h[0]))


# EQ -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq_hz,gain_db,q", [(300.0, -4.0, 1.0), (3000.0, 6.0, 2.0),
                                               (12000.0, 3.0, 0.7)])
def test_peaking_design_and_measured_gain_at_centre(freq_hz, gain_db, q):
  sos = filters.peaking_sos(SR, freq_hz, gain_db, q)
  assert abs(response_db(sos, freq_hz) - gain_db) < 1e-6
  assert abs(response_db(sos, freq_hz / 16)) < 0.1
  tone = sine(freq_hz, 0.5, 0.1)
  out = dsp.peaking_eq(tone, SR, freq_hz, gain_db, q)
  steady = slice(SR // 10, None)
  assert abs(rms_db(out[steady]) - rms_db(tone[steady]) - gain_db) < 0.1


def test_shelves_reach_their_gain_and_half_gain_at_corner():
  low = filters.low_shelf_sos(SR, 200.0, 6.0)
  assert abs(response_db(low, 5.0) - 6.0) < 0.05
  assert abs(response_db(low, 200.0) - 3.0) < 1e-6
  assert abs(response_db(low, 10000.0)) < 0.05
  high = filters.high_shelf_sos(SR, 8000.0, -4.0)
  assert abs(response_db(high, 21000.0) + 4.0) < 0.1
  assert abs(response_db(high, 8000.0) + 2.0) < 1e-6
  assert abs(response_db(high, 100.0)) < 0.05
  tone = sine(50.0, 1.0, 0.1)
  measured = rms_db(dsp.low_shelf(tone, SR, 200.0, 6.0)[SR // 2:]) - rms_db(tone[SR // 2:])
  assert abs(measured - response_db(low, 50.0)) < 0.1


def test_highpass_attenuation_and_lowpass():
  sos = filters.highpass_sos(SR, 100.0)
  assert abs(response_db(sos, 100.0) + 3.0103) < 1e-3
  assert abs(response_db(sos, 25.0) + 24.0) < 0.3  # 12 dB per octave, two octaves down
  assert abs(response_db(sos, 2000.0)) < 0.01
  tone = sine(25.0, 2.0, 0.5)
  out = dsp.highpass(tone, SR, 100.0)
  assert abs(rms_db(out[SR:]) - rms_db(tone[SR:]) - response_db(sos, 25.0)) < 0.1
  lowpass = filters.lowpass_sos(SR, 4000.0)
  assert abs(response_db(lowpass, 4000.0) + 3.0103) < 1e-3 and response_db(lowpass, 16000.0) < -24


def test_zero_phase_highpass_is_the_float64_forward_backward_filter():
  take = vocal(3.0, seed=3)
  out = filters.zero_phase_highpass(take, SR, 6500.0)
  assert out.dtype == np.float32 and out.shape == take.shape
  sos = filters.highpass_sos(SR, 6500.0)  # float64
  forward = scipy.signal.sosfilt(sos, take.astype(np.float64), axis=0)
  reference = scipy.signal.sosfilt(sos, forward[::-1], axis=0)[::-1]
  np.testing.assert_allclose(out, reference, atol=1e-6)
  # No phase shift: a tone at the corner comes out in phase at |H|^2 = 1/2 of its amplitude.
  tone = sine(6500.0, 1.0, 0.5)
  np.testing.assert_allclose(filters.zero_phase_highpass(tone, SR, 6500.0)[SR // 4:-SR // 4],
                             0.5 * tone[SR // 4:-SR // 4], atol=1e-3)


def test_equalize_is_the_product_of_its_bands_and_rejects_bad_input():
  bands = (dsp.EqBand("highpass", 80.0), dsp.EqBand("peaking", 1000.0, 5.0, 1.5),
           dsp.EqBand("high_shelf", 9000.0, 2.0))
  sos = np.concatenate([filters.band_sos(SR, b) for b in bands])
  expected = sum(response_db(filters.band_sos(SR, b), 1000.0) for b in bands)
  assert abs(response_db(sos, 1000.0) - expected) < 1e-9
  noise = np.random.default_rng(0).standard_normal((2000, 2)).astype(np.float32)
  np.testing.assert_allclose(dsp.equalize(noise, SR, bands),
                             scipy.signal.sosfilt(sos, noise, axis=0), atol=1e-5)
  with pytest.raises(ValueError, match="Nyquist"):
    dsp.peaking_eq(noise, SR, 30000.0, 3.0)
  with pytest.raises(ValueError, match="kind"):
    dsp.equalize(noise, SR, [dsp.EqBand("notch", 1000.0)])
  with pytest.raises(ValueError, match=r"\[time, channels\]"):
    dsp.highpass(noise[:, 0], SR, 100.0)


# Dynamics -------------------------------------------------------------------------------------


def test_static_curve_formula():
  t, r, w = -20.0, 4.0, 6.0
  levels = np.array([-40.0, -23.0, -20.0, -17.0, -10.0])
  expected = [-40.0, -23.0, t + (1 / r - 1) * (w / 2) ** 2 / (2 * w), -17.0 + (1 / r - 1) * w / 2,
              t + 10.0 / r]
  np.testing.assert_allclose(dsp.static_curve_db(levels, t, r, w), expected, atol=1e-12)
  np.testing.assert_allclose(dsp.static_curve_db(levels, t, r, 0.0), [-40, -23, -20, -19.25, -17.5])


@pytest.mark.parametrize("level_db", [-40.0, -24.0, -20.0, -17.0, -10.0, -3.0])
def test_compressor_steady_tone_follows_static_curve(level_db):
  threshold, ratio, knee, makeup = -20.0, 4.0, 6.0, 2.0
  tone = sine(1000.0, 0.6, 10 ** (level_db / 20))
  out = dsp.compress(tone, SR, threshold, ratio, knee, attack_ms=5.0, release_ms=50.0,
                     makeup_db=makeup)
  steady = slice(int(0.4 * SR), None)
  measured = 20 * np.log10(np.max(np.abs(out[steady])))
  expected = dsp.static_curve_db(level_db, threshold, ratio, knee) + makeup
  assert abs(measured - expected) < 0.2


def _crossing_ms(gain_db, start, begin_db, end_db):
  """Time (ms after `start`) when `gain_db` first covers 1 - 1/e of the way from begin to end."""
  moved = (gain_db[start:] - begin_db) / (end_db - begin_db)
  return np.argmax(moved >= 1 - np.exp(-1)) / SR * 1000


@pytest.mark.parametrize("attack_ms,release_ms", [(5.0, 80.0), (20.0, 300.0)])
def test_compressor_attack_and_release_time_constants(attack_ms, release_ms):
  threshold, ratio = -20.0, 4.0
  low_db, high_db = -30.0, -6.0
  reduction = (high_db - threshold) * (1 - 1 / ratio)
  step = int(0.5 * SR)
  up = np.full((step + int(8 * attack_ms / 1000 * SR), 1), 10 ** (low_db / 20), np.float32)
  up[step:] = 10 ** (high_db / 20)
  gain_up = 20 * np.log10(dsp.compressor_gain(up, SR, threshold, ratio, 0.0, attack_ms,
                                              release_ms))
  # The detector works on frames, so the response can start up to one frame early or late.
  tolerance_ms = 1000 * dynamics.control_period(SR) / SR + 0.02 * attack_ms
  assert abs(_crossing_ms(gain_up, step, 0.0, -reduction) - attack_ms) < tolerance_ms
  assert abs(gain_up[-1] + reduction) < 0.01
  down = np.full((step + int(8 * release_ms / 1000 * SR), 1), 10 ** (low_db / 20), np.float32)
  down[:step] = 10 ** (high_db / 20)
  gain_down = 20 * np.log10(dsp.compressor_gain(down, SR, threshold, ratio, 0.0, attack_ms,
                                                release_ms))
  assert abs(gain_down[step - 100] + reduction) < 0.01
  tolerance_ms = 1000 * dynamics.control_period(SR) / SR + 0.02 * release_ms
  assert abs(_crossing_ms(gain_down, step, -reduction, 0.0) - release_ms) < tolerance_ms
  assert abs(gain_down[-1]) < 0.01


def test_smoother_equals_the_frame_by_frame_recursion():
  rng = np.random.default_rng(6)
  target = np.maximum(rng.standard_normal(3000) * 6.0, 0.0)
  target[1000:1800] = 0.0  # a pause: a long run with nothing to reduce
  for attack, release in [(0.6, 0.97), (0.0, 0.9), (0.8, 0.0), (0.0, 0.0)]:
    state, expected = 0.0, []
    for t in target:
      state = t + (state - t) * (attack if t > state else release)
      expected.append(state)
    np.testing.assert_allclose(dynamics.smooth_reduction(target, attack, release), expected,
                               rtol=1e-12, atol=1e-300)
  np.testing.assert_array_equal(dynamics.smooth_reduction(np.zeros(5), 0.5, 0.9), np.zeros(5))


def test_compressor_links_stereo_channels_and_validates():
  rng = np.random.default_rng(1)
  stereo = (rng.standard_normal((SR // 2, 2)) * [0.5, 0.01]).astype(np.float32)
  out = dsp.compress(stereo, SR, -20.0, 4.0)
  np.testing.assert_allclose(out[:, 1] / stereo[:, 1], out[:, 0] / stereo[:, 0], rtol=1e-4)
  assert np.max(np.abs(out[SR // 4:, 0] / stereo[SR // 4:, 0])) < 0.5  # loud side drives both
  with pytest.raises(ValueError, match="ratio"):
    dsp.compress(stereo, SR, -20.0, 0.5)
  with pytest.raises(ValueError, match="attack"):
    dsp.compress(stereo, SR, -20.0, 2.0, attack_ms=-1.0)


@pytest.mark.parametrize("freq_hz", [9000.0, 15000.0])
def test_de_esser_reduces_sibilant_band_only(freq_hz):
  threshold, ratio = -30.0, 4.0
  voice = sine(200.0, 1.0, 0.5)
  np.testing.assert_allclose(dsp.de_esser(voice, SR, 6500.0, threshold, ratio), voice, atol=1e-6)
  hiss = sine(freq_hz, 1.0, 10 ** (-6 / 20))
  out = dsp.de_esser(voice + hiss, SR, 6500.0, threshold, ratio)
  # Definition: the high band (zero-phase high-pass, power response |H|^2) is compressed.
  band = 10 ** (response_db(filters.highpass_sos(SR, 6500.0), freq_hz) / 10)
  reduction_db = (-6 + 20 * np.log10(band) - threshold) * (1 - 1 / ratio)
  expected_db = 20 * np.log10(1 - (1 - 10 ** (-reduction_db / 20)) * band)
  steady = slice(SR // 2, None)
  high = dsp.highpass(out, SR, 3000.0)
  low = dsp.lowpass(out, SR, 1000.0)
  assert abs(rms_db(high[steady]) - rms_db(dsp.highpass(hiss, SR, 3000.0)[steady])
             - expected_db) < 0.3
  assert abs(rms_db(low[steady]) - rms_db(dsp.lowpass(voice, SR, 1000.0)[steady])) < 0.1


# Saturation -----------------------------------------------------------------------------------


def harmonic_db(x, freq_hz, sample_rate=SR):
  window = np.hanning(x.shape[0])
  spectrum = np.abs(np.fft.rfft(x[:, 0] * window))
  freqs = np.fft.rfftfreq(x.shape[0], 1 / sample_rate)
  bin_ = np.argmin(np.abs(freqs - freq_hz))
  return 20 * np.log10(spectrum[bin_ - 2:bin_ + 3].max() / spectrum.max())


def test_saturation_adds_odd_harmonics_and_bias_adds_even_without_dc():
  tone = sine(1000.0, 0.5, 0.5)
  clean = harmonic_db(tone, 3000.0)
  driven = dsp.saturate(tone, SR, drive_db=12.0)
  assert harmonic_db(driven, 3000.0) > -30 > clean + 40
  assert harmonic_db(driven, 2000.0) < -80
  warm = dsp.saturate(tone, SR, drive_db=12.0, bias=0.3)
  assert harmonic_db(warm, 2000.0) > -40
  assert abs(np.mean(warm[SR // 4:])) < 1e-3
  quiet = sine(1000.0, 0.2, 1e-4)
  np.testing.assert_allclose(dsp.saturate(quiet, SR, 6.0, bias=0.3)[SR // 20:],
                             quiet[SR // 20:], atol=2e-6)
  np.testing.assert_array_equal(dsp.saturate(tone, SR, 12.0, mix=0.0), tone)


@pytest.mark.parametrize("factor", [2, 3])
def test_polyphase_oversampling_equals_resample_poly(factor):
  rng = np.random.default_rng(7)
  for num in (1, 7, 5000):
    x_ct = rng.standard_normal((2, num)).astype(np.float32)
    phases = polyphase.upsample(x_ct, factor)
    up_ct = np.stack(phases, axis=-1).reshape(2, -1)
    np.testing.assert_allclose(up_ct, scipy.signal.resample_poly(x_ct, factor, 1, axis=1),
                               atol=2e-6)
    shaped = [np.tanh(p) for p in phases]
    np.testing.assert_allclose(
        polyphase.downsample(shaped, factor),
        scipy.signal.resample_poly(np.tanh(up_ct), 1, factor, axis=1), atol=2e-6)


def test_saturation_oversampling_reduces_aliasing():
  tone = sine(15000.0, 0.5, 0.9)
  # The 3rd harmonic (45 kHz) folds to 900 Hz without oversampling.
  plain = harmonic_db(dsp.saturate(tone, SR, 20.0, oversample=1), 900.0)
  oversampled = harmonic_db(dsp.saturate(tone, SR, 20.0, oversample=2), 900.0)
  assert plain > -40 and oversampled < plain - 20


# Delay and reverb -----------------------------------------------------------------------------


def test_delay_echoes_of_an_impulse():
  impulse = np.zeros((2000, 2), np.float32)
  impulse[0] = 1.0
  out = dsp.delay(impulse, 1000, time_ms=100.0, feedback=0.5, mix=0.4)
  expected = np.zeros(2000)
  expected[0] = 0.6
  expected[100::100] = 0.4 * 0.5 ** np.arange(19)
  np.testing.assert_allclose(out[:, 0], expected, atol=1e-6)
  np.testing.assert_array_equal(out[:, 0], out[:, 1])
  with pytest.raises(ValueError, match="feedback"):
    dsp.delay(impulse, 1000, 100.0, 1.0, 0.5)


@pytest.mark.parametrize("length", [100, 2400, 2401])
def test_a_take_shorter_than_the_delay_has_no_echo(length):
  """200 ms at 12 kHz is 2400 samples: nothing echoes inside a take of at most that length."""
  x = np.random.default_rng(9).standard_normal((length, 1)).astype(np.float32)
  out = dsp.delay(x, 12000, time_ms=200.0, feedback=0.5, mix=0.4)
  expected = 0.6 * x
  expected[2400:] += 0.4 * x[:length - 2400]
  np.testing.assert_allclose(out, expected, atol=1e-6)
  assert dsp.process(x, 12000, "default").shape == x.shape


@pytest.mark.parametrize("time_ms", [1.0, 7.0, 300.0])
def test_delay_equals_the_echo_recursion(time_ms):
  x = np.random.default_rng(8).standard_normal((6000, 1)).astype(np.float32)
  period = int(round(time_ms * 1e-3 * 8000))
  wet = np.zeros(6000)
  for n in range(period, 6000):
    wet[n] = x[n - period, 0] + 0.7 * wet[n - period]
  np.testing.assert_allclose(dsp.delay(x, 8000, time_ms, 0.7, 1.0)[:, 0], wet, atol=1e-5)


def estimated_rt60(ir):
  """RT60 from the Schroeder backward integral, fitted between -5 and -35 dB (T30 x 2)."""
  energy = np.cumsum(ir[::-1].astype(np.float64) ** 2)[::-1]
  energy = energy[energy > 0]
  decay_db = 10 * np.log10(energy / energy[0])
  span = (decay_db <= -5) & (decay_db >= -35)
  slope = np.polyfit(np.flatnonzero(span) / SR, decay_db[span], 1)[0]
  return -60.0 / slope


@pytest.mark.parametrize("rt60_s", [0.5, 1.5])
def test_reverb_tail_decays_at_rt60(rt60_s):
  ir_tc = reverberation.impulse_response(SR, rt60_s, damping=0.0, predelay_ms=0.0)
  for side in range(2):
    assert abs(estimated_rt60(ir_tc[:, side]) / rt60_s - 1) < 0.1
  np.testing.assert_allclose(np.sum(ir_tc.astype(np.float64) ** 2, axis=0), 1.0, rtol=1e-3)


def test_reverb_damping_predelay_and_channels():
  bright = reverberation.impulse_response(SR, 1.0, damping=0.0, predelay_ms=0.0)[:, 0]
  dark = reverberation.impulse_response(SR, 1.0, damping=0.7, predelay_ms=0.0)[:, 0]
  late = slice(SR // 2, SR)
  high = scipy.signal.butter(4, 5000, "high", fs=SR, output="sos")
  share = [rms_db(scipy.signal.sosfilt(high, ir)[late]) - rms_db(ir[late]) for ir in (bright, dark)]
  assert share[1] < share[0] - 10
  delayed = reverberation.impulse_response(SR, 1.0, 0.5, predelay_ms=50.0)
  gap = int(0.05 * SR)
  assert not np.any(delayed[:gap]) and np.any(delayed[gap:gap + 2000])
  voice = vocal(1.0)
  np.testing.assert_array_equal(dsp.reverb(voice, SR, 1.0, mix=0.0), voice)
  mono = dsp.reverb(voice, SR, 1.0, mix=0.3)
  assert mono.shape == voice.shape
  stereo = dsp.reverb(np.repeat(voice, 2, axis=1), SR, 1.0, mix=1.0)
  assert np.corrcoef(stereo[:, 0], stereo[:, 1])[0, 1] < 0.5
  np.testing.assert_allclose(stereo[:, 0], dsp.reverb(voice, SR, 1.0, mix=1.0)[:, 0], atol=1e-5)


def test_reverb_convolution_matches_direct_convolution():
  rng = np.random.default_rng(2)
  for num, taps in [(1, 5), (300, 7000), (50000, 3000)]:
    x = rng.standard_normal((num, 2)).astype(np.float32)
    h = rng.standard_normal((taps, 2)).astype(np.float32)
    expected = scipy.signal.fftconvolve(x.astype(np.float64), h.astype(np.float64), axes=0)[:num]
    np.testing.assert_allclose(reverberation.convolve(x, h), expected,
                               atol=1e-5 * np.abs(expected).max())


# Loudness -------------------------------------------------------------------------------------


def test_loudness_matches_bs1770_reference_and_pyloudnorm():
  # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS; pyloudnorm's K-weighting
  # (re-derived from shelf/high-pass parameters, not the standard's table) reads 0.04 LU lower.
  assert abs(dsp.integrated_loudness(sine(997.0, 2.0, sample_rate=48000), 48000) + 3.01) < 0.05
  rng = np.random.default_rng(3)
  for channels, seconds, sample_rate in [(1, 5.0, SR), (2, 3.3, 48000), (2, 0.4, 16000)]:
    x = rng.standard_normal((int(seconds * sample_rate), channels)) * 0.1
    x[: x.shape[0] // 3] *= 0.001  # quiet start exercises both gates
    expected = pyloudnorm.Meter(sample_rate).integrated_loudness(x)
    assert abs(dsp.integrated_loudness(x.astype(np.float32), sample_rate) - expected) < 1e-4


def test_loudness_of_short_clips_and_silence():
  long = dsp.integrated_loudness(sine(1000.0, 2.0, 0.3), SR)
  short = dsp.integrated_loudness(sine(1000.0, 0.1, 0.3), SR)
  assert abs(short - long) < 0.1
  assert dsp.integrated_loudness(np.zeros((SR, 2), np.float32), SR) == dsp.LOUDNESS_FLOOR_LUFS
  assert dsp.integrated_loudness(np.zeros((0, 1), np.float32), SR) == dsp.LOUDNESS_FLOOR_LUFS
  assert np.isfinite(dsp.integrated_loudness(np.full((1, 1), 0.5, np.float32), SR))


@pytest.mark.parametrize("target", [-30.0, -16.0, -9.0])
def test_normalize_loudness_within_a_tenth_of_lu(target):
  for audio in (vocal(2.0), np.repeat(vocal(2.0, seed=1), 2, axis=1) * 0.1, sine(440.0, 0.2)):
    out = dsp.normalize_loudness(audio, SR, target)
    assert abs(dsp.integrated_loudness(out, SR) - target) < 0.1
  silence = np.zeros((SR, 1), np.float32)
  np.testing.assert_array_equal(dsp.normalize_loudness(silence, SR, -16.0), silence)


# Limiter --------------------------------------------------------------------------------------


def hot_material():
  rng = np.random.default_rng(4)
  noise = rng.standard_normal((SR, 2)) * 2.0
  square = np.sign(sine(110.0, 1.0, 1.0, channels=2)) * 3.0
  near_nyquist = sine(11025.0, 1.0, 4.0, channels=2) * np.cos(np.pi / 4)
  clicks = np.zeros((SR, 2))
  clicks[::4410] = 8.0
  return [a.astype(np.float32) for a in (noise, square, near_nyquist, clicks, vocal(1.0) * 20)]


@pytest.mark.parametrize("ceiling_db", [-1.0, -0.1, -6.0])
def test_limiter_never_exceeds_ceiling_on_hot_material(ceiling_db):
  ceiling = 10 ** (ceiling_db / 20)
  for audio in hot_material():
    out = dsp.true_peak_limit(audio, SR, ceiling_db)
    assert out.dtype == np.float32 and out.shape == audio.shape
    assert np.max(np.abs(out)) <= ceiling
    assert dsp.true_peak_db(out) < ceiling_db + 0.3


def test_limiter_true_peak_estimate_and_ballistics():
  # A sine at a quarter of the rate sampled 45 degrees off its crests: samples at 0.707, true
  # peak 1.0 (0 dBTP), which a sample-peak limiter would miss.
  tone = np.sin(np.pi / 2 * np.arange(SR // 2) + np.pi / 4)[:, None].astype(np.float32)
  assert np.max(np.abs(tone)) < 0.71
  assert abs(dsp.true_peak_db(tone) - 0.0) < 0.2
  assert np.max(np.abs(dsp.true_peak_limit(tone, SR, -1.0))) < 0.71 * 10 ** (-0.9 / 20)
  quiet = vocal(0.5) * 0.5
  np.testing.assert_array_equal(dsp.true_peak_limit(quiet, SR, -1.0), quiet)
  click = np.full((SR, 1), 0.1, np.float32)
  peak = SR // 2
  click[peak] = 1.0
  gain = limiter.limiter_gain(click, SR, ceiling_db=-6.0, release_ms=50.0, lookahead_ms=2.0)
  assert gain[peak] <= 10 ** (-6 / 20) / 1.0 + 1e-6
  assert gain[peak - int(0.001 * SR)] < 0.9  # the look-ahead lowers the gain before the click
  assert gain[peak - int(0.004 * SR)] == 1.0
  recovered = 20 * np.log10(gain[peak + int(0.05 * SR)]) / 20 / np.log10(gain[peak])
  assert abs(recovered - np.exp(-1)) < 0.08


def test_limiter_links_channels():
  audio = hot_material()[0] * [1.0, 0.1]
  out = dsp.true_peak_limit(audio.astype(np.float32), SR)
  np.testing.assert_allclose(out[:, 1] / audio[:, 1], out[:, 0] / audio[:, 0], rtol=1e-4)


# Presets and the chain ------------------------------------------------------------------------


def test_presets_are_data_and_names_are_checked():
  assert {"default", "warm", "bright", "intimate", "radio"} <= set(dsp.PRESETS)
  assert dsp.get_preset("warm") is dsp.PRESETS["warm"]
  with pytest.raises(ValueError, match="valid presets: default, warm"):
    dsp.get_preset("nope")
  with pytest.raises(dataclasses.FrozenInstanceError):
    dsp.PRESETS["default"].output_lufs = 0.0
  custom = dataclasses.replace(dsp.PRESETS["default"], name="mine", reverb=None, ceiling_db=-3.0)
  out = dsp.process(vocal(0.5), SR, custom)
  assert np.max(np.abs(out)) <= 10 ** (-3 / 20)


@pytest.mark.parametrize("name", sorted(dsp.PRESETS))
def test_every_preset_on_mono_and_stereo(name):
  preset = dsp.PRESETS[name]
  ceiling = 10 ** (preset.ceiling_db / 20)
  voice = vocal(1.5)
  for audio in (voice, np.concatenate([voice, vocal(1.5, seed=5)], axis=1)):
    out = dsp.process(audio, SR, name)
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= ceiling
    assert abs(dsp.integrated_loudness(out, SR) - preset.output_lufs) < 1.0
    assert not np.allclose(out / np.max(np.abs(out)), audio / np.max(np.abs(audio)), atol=0.05)


def test_stages_run_in_order_and_make_the_chain():
  preset = dsp.PRESETS["default"]
  names = [name for name, _ in chain.stages(preset, SR)]
  assert names == ["input_level", "eq", "de_esser", "compressor", "saturation", "delay", "reverb",
                   "output_level", "limiter"]
  assert [n for n, _ in chain.stages("radio", 8000)] == [
      "input_level", "eq", "compressor", "saturation", "output_level", "limiter"]
  x_tc = vocal(0.5)
  for _, run in chain.stages(preset, SR):
    x_tc = run(x_tc)
  np.testing.assert_array_equal(x_tc, dsp.process(vocal(0.5), SR, preset))


def test_process_is_deterministic_and_level_independent():
  voice = vocal(1.0)
  first = dsp.process(voice, SR)
  dsp.process(vocal(0.5, seed=9), SR, "warm")
  np.testing.assert_array_equal(dsp.process(voice, SR), first)
  quiet = dsp.process(voice * 0.05, SR)
  np.testing.assert_allclose(quiet, first, atol=2e-3)


def test_process_short_inputs_and_other_rates():
  for num in (0, 1, 2, 10, 1000):
    audio = np.random.default_rng(num).standard_normal((num, 2)).astype(np.float32)
    out = dsp.process(audio, SR)
    assert out.shape == (num, 2) and np.all(np.isfinite(out))
    assert np.all(np.abs(out) <= 10 ** (-1 / 20))
  silence = dsp.process(np.zeros((SR // 2, 1), np.float32), SR)
  assert not np.any(silence)
  for sample_rate in (8000, 16000, 48000):
    out = dsp.process(vocal(0.5, sample_rate), sample_rate, "bright")
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 10 ** (-1 / 20)


def test_process_rejects_bad_input():
  with pytest.raises(ValueError, match="NaN"):
    dsp.process(np.full((100, 1), np.nan, np.float32), SR)
  with pytest.raises(ValueError, match="mono or stereo"):
    dsp.process(np.zeros((100, 3), np.float32), SR)
  with pytest.raises(ValueError, match="mono or stereo"):
    dsp.process(np.zeros(100, np.float32), SR)
  with pytest.raises(ValueError, match="sample_rate"):
    dsp.process(np.zeros((100, 1), np.float32), 0)
  with pytest.raises(ValueError, match="valid presets"):
    dsp.process(np.zeros((100, 1), np.float32), SR, "loud")

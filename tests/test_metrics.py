"""mixnet.metrics against their definitions on signals with known answers."""

import numpy as np
import pytest

from mixnet import metrics

SR = 16000


def _sine(freq, seconds=1.0, amp=0.5):
  t = np.arange(int(SR * seconds)) / SR
  return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None]


def test_identical_signals_score_perfectly():
  x = _sine(440) + 0.01 * np.random.default_rng(0).standard_normal((SR, 1)).astype(np.float32)
  m = metrics.compute(x, x, SR)
  assert set(m) == set(metrics.METRIC_NAMES)
  for name in ("mr_stft", "l1", "loudness_error_lu", "centroid_error_hz", "crest_error_db"):
    assert m[name] == pytest.approx(0.0, abs=1e-5), name
  assert m["si_sdr"] > 60


def test_si_sdr_is_scale_invariant_and_matches_snr():
  rng = np.random.default_rng(1)
  s = rng.standard_normal((SR, 1))
  noise = rng.standard_normal((SR, 1))
  noise *= np.linalg.norm(s) / np.linalg.norm(noise) / 10 ** (20 / 20)  # 20 dB below
  noise -= s * np.dot(noise[:, 0], s[:, 0]) / np.dot(s[:, 0], s[:, 0])  # orthogonal to s
  assert metrics.si_sdr(3.0 * (s + noise), s) == pytest.approx(20.0, abs=0.05)


def test_centroid_crest_and_loudness_of_known_signals():
  assert metrics.spectral_centroid(_sine(1000), SR) == pytest.approx(1000, abs=15)
  assert metrics.crest_factor_db(_sine(300)) == pytest.approx(20 * np.log10(np.sqrt(2)),
                                                              abs=0.01)
  quiet = metrics.compute(_sine(1000, amp=0.05), _sine(1000, amp=0.5), SR)
  assert quiet["loudness_error_lu"] == pytest.approx(20.0, abs=0.05)
  assert quiet["centroid_error_hz"] == pytest.approx(0.0, abs=1.0)


def test_shape_mismatch_is_an_error():
  with pytest.raises(ValueError, match="differ in shape"):
    metrics.compute(np.zeros((10, 1)), np.zeros((11, 1)), SR)


def test_average():
  rows = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
  assert metrics.average(rows) == {"a": 2.0, "b": 3.0}
  assert metrics.average([]) == {}


def test_magnitude_frames_and_spectrogram_of_a_sine():
  from mixnet import plots

  stereo = np.repeat(_sine(1000, amp=1.0), 2, axis=1)
  mag_ft = metrics.magnitude_frames(stereo, 1024, 256)
  assert mag_ft.shape == (1 + (SR - 1024) // 256, 513)
  assert np.all(np.argmax(mag_ft, axis=1) == 64)  # 1000 Hz at 16000 / 1024 Hz per bin
  spec_ft, freqs, times = plots.log_spectrogram(stereo, SR)
  assert spec_ft.shape == (513, mag_ft.shape[0]) and freqs[64] == 1000.0
  assert times[1] == pytest.approx(256 / SR)
  assert np.max(spec_ft) == pytest.approx(0.0, abs=0.1)  # a full-scale sine peaks at 0 dB
  short = metrics.magnitude_frames(_sine(1000)[:100], 1024, 256)
  assert short.shape == (1, 513) and np.all(np.isfinite(short))

"""Alignment: offsets and polarity of processed vocals against their raw takes."""

import numpy as np
import pytest
import scipy.signal
from helpers import shift

from mixnet import dsp
from mixnet.data import align, synthetic

SR = 16000
# Offsets in ms (0 to 100, both directions); each pair is also tested inverted.
OFFSETS_MS = (0.0, 0.0625, 3.0, 27.5, 64.0, 99.9375, 100.0, -0.0625, -12.0, -58.0, -100.0)


def _numpy_chain(x, sr, seed):
  """An independent vocal chain: EQ, compressor, tanh saturation, noise-tail reverb, level."""
  rng = np.random.default_rng(seed)
  y = scipy.signal.sosfilt(scipy.signal.butter(2, 100, "highpass", fs=sr, output="sos"), x)
  y = y + 0.5 * scipy.signal.sosfilt(
      scipy.signal.butter(2, [2500, 4500], "bandpass", fs=sr, output="sos"), y)
  env = np.sqrt(scipy.signal.lfilter([0.003], [1, -0.997], y**2) + 1e-12)
  level_db = 20 * np.log10(env)
  y = y * 10 ** (np.minimum(0.0, (-24.0 - level_db) * 0.75) / 20) * 3.0
  y = np.tanh(3.0 * y) / 3.0
  ir_len = int(1.2 * sr)
  ir = rng.standard_normal(ir_len) * np.exp(-np.arange(ir_len) / (0.25 * sr))
  ir[:int(0.015 * sr)] = 0.0
  ir /= np.sqrt(np.sum(ir**2))
  wet = scipy.signal.fftconvolve(y, ir)
  return (0.7 * np.pad(y, (0, ir_len - 1)) + 0.4 * wet).astype(np.float32)[:, None]


def _check_all_offsets(raw_tc, mixed_tc, sr):
  for i, offset_ms in enumerate(OFFSETS_MS):
    polarity = 1 if i % 2 else -1
    offset = int(round(offset_ms * sr / 1000))
    got_offset, confidence, got_polarity = align.estimate_offset(
        raw_tc, polarity * shift(mixed_tc, offset), sr, max_shift_s=0.1)
    assert abs(got_offset - offset) <= 1, (offset_ms, got_offset, offset)
    assert got_polarity == polarity, offset_ms
    assert 0.5 < confidence <= 1.0, (offset_ms, confidence)


@pytest.mark.parametrize("preset", sorted(dsp.PRESETS))
def test_exact_on_dsp_presets(preset):
  raw_tc = synthetic.synth_vocal(2.0, SR, seed=(11, len(preset)))
  _check_all_offsets(raw_tc, dsp.process(raw_tc, SR, preset), SR)


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_on_independent_numpy_chain(seed):
  raw_tc = synthetic.synth_vocal(2.0, SR, seed=(12, seed))
  _check_all_offsets(raw_tc, _numpy_chain(raw_tc[:, 0], SR, seed), SR)


def test_exact_at_44k_with_stereo_mix():
  sr = 44100
  raw_tc = synthetic.synth_vocal(1.5, sr, seed=13)
  mixed_tc = dsp.process(np.repeat(raw_tc, 2, axis=1), sr, "default")
  assert mixed_tc.shape[1] == 2
  for offset in (-4410, -1, 0, 1, 2345, 4410):
    for polarity in (1, -1):
      got, confidence, got_polarity = align.estimate_offset(
          raw_tc[:, 0], polarity * shift(mixed_tc, offset), sr)
      assert abs(got - offset) <= 1 and got_polarity == polarity, (offset, polarity, got)
      assert confidence > 0.5


def test_unrelated_takes_get_low_confidence():
  for i in range(4):
    raw_tc = synthetic.synth_vocal(2.0, SR, seed=(14, i))
    other_tc = dsp.process(synthetic.synth_vocal(2.0, SR, seed=(15, i)), SR, "default")
    _, confidence, _ = align.estimate_offset(raw_tc, other_tc, SR)
    assert 0.0 <= confidence < 0.3, (i, confidence)


def test_noise_against_noise_has_no_confidence():
  rng = np.random.default_rng(0)
  _, confidence, _ = align.estimate_offset(rng.standard_normal(SR), rng.standard_normal(SR), SR)
  assert confidence < 0.1


def test_silent_side_returns_zero_confidence():
  raw_tc = synthetic.synth_vocal(1.0, SR, seed=16)
  assert align.estimate_offset(raw_tc, np.zeros_like(raw_tc), SR) == (0, 0.0, 1)
  assert align.estimate_offset(np.zeros_like(raw_tc), raw_tc, SR) == (0, 0.0, 1)


def test_offset_beyond_max_shift_is_not_found_but_a_wider_search_finds_it():
  raw_tc = synthetic.synth_vocal(2.0, SR, seed=17)
  mixed_tc = shift(dsp.process(raw_tc, SR, "warm"), int(0.3 * SR))
  _, confidence, _ = align.estimate_offset(raw_tc, mixed_tc, SR, max_shift_s=0.1)
  assert confidence < 0.3
  offset, confidence, _ = align.estimate_offset(raw_tc, mixed_tc, SR, max_shift_s=0.5)
  assert offset == int(0.3 * SR) and confidence > 0.5


def test_long_file_uses_its_loudest_minute():
  voice = synthetic.synth_vocal(20.0, 8000, seed=18)
  raw_tc = np.concatenate([np.zeros((65 * 8000, 1), np.float32), voice])
  mixed_tc = shift(-dsp.process(raw_tc, 8000, "intimate"), 123)
  assert align.estimate_offset(raw_tc, mixed_tc, 8000)[::2] == (123, -1)


def test_rejects_bad_layout():
  with pytest.raises(ValueError, match="time"):
    align.estimate_offset(np.zeros((2, 3, 4)), np.zeros(10), SR)

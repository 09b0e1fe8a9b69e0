"""mixnet.audio: round trips, resampling accuracy, and every bad input named in the message."""

import os

import numpy as np
import pytest
import soundfile as sf

from mixnet import audio


def _sine(freq, sr, seconds, channels=1, amp=0.5):
  t = np.arange(int(sr * seconds)) / sr
  x = amp * np.sin(2 * np.pi * freq * t)
  return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("subtype,tol", [("PCM_24", 2e-7), ("PCM_16", 5e-5), ("FLOAT", 0.0)])
def test_round_trip(tmp_path, channels, subtype, tol):
  x = _sine(440, 22050, 0.25, channels)
  path = tmp_path / "x.wav"
  audio.save(path, x, 22050, subtype=subtype)
  y, sr = audio.load(path)
  assert sr == 22050
  assert y.dtype == np.float32 and y.shape == x.shape
  np.testing.assert_allclose(y, x, atol=tol)


@pytest.mark.parametrize("ext", [".wav", ".aiff"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_save_writes_the_samples_libsndfile_would(tmp_path, ext, subtype):
  # save converts float32 to integers itself for these formats; the file must be the one
  # libsndfile writes from the floats, to the bit, also for rounding ties and clipped samples.
  x = np.random.default_rng(0).uniform(-1.2, 1.2, (20000, 2)).astype(np.float32)
  x[:12, 0] = [1.0, -1.0, 0.5 / 2 ** 23, 1.5 / 2 ** 23, 2.5 / 2 ** 23, -0.5 / 2 ** 23,
               0.99999994, -0.99999994, 0.0, 1e-9, -1e-9, 0.5 / 2 ** 15]
  ours, theirs = tmp_path / f"ours{ext}", tmp_path / f"theirs{ext}"
  audio.save(ours, x, 44100, subtype=subtype)
  sf.write(theirs, x, 44100, subtype=subtype)
  np.testing.assert_array_equal(sf.read(ours, dtype="int32")[0],
                                sf.read(theirs, dtype="int32")[0])


def test_save_accepts_1d_and_leaves_no_temp_files(tmp_path):
  audio.save(tmp_path / "mono.wav", np.zeros(100, np.float32) + 0.1, 8000)
  y, _ = audio.load(tmp_path / "mono.wav")
  assert y.shape == (100, 1)
  assert sorted(os.listdir(tmp_path)) == ["mono.wav"]


def test_save_is_atomic_when_writing_fails(tmp_path):
  path = tmp_path / "keep.wav"
  audio.save(path, _sine(100, 8000, 0.1), 8000)
  before = path.read_bytes()
  with pytest.raises(audio.AudioError, match="NaN"):
    audio.save(path, np.full((10, 1), np.nan, np.float32), 8000)
  with pytest.raises(audio.AudioError, match="no such subtype|cannot hold subtype"):
    audio.save(path, _sine(100, 8000, 0.1), 8000, subtype="NOT_A_SUBTYPE")
  assert path.read_bytes() == before
  assert sorted(os.listdir(tmp_path)) == ["keep.wav"]


def test_failed_encode_leaves_no_temp_file(tmp_path):
  if ".mp3" not in audio.writable_extensions():
    pytest.skip("this libsndfile cannot write MP3")
  # MP3 has no 96 kHz: libsndfile fails after the temporary file exists.
  with pytest.raises(audio.AudioError, match=r"x\.mp3: libsndfile cannot write MP3.*96000 Hz"):
    audio.save(tmp_path / "x.mp3", _sine(100, 96000, 0.1), 96000)
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext", sorted(audio.OUTPUT_FORMATS))
def test_format_follows_extension(tmp_path, ext):
  fmt, _ = audio.OUTPUT_FORMATS[ext]
  if ext not in audio.writable_extensions():
    with pytest.raises(audio.AudioError, match=f"cannot write {fmt}"):
      audio.save(tmp_path / f"x{ext}", _sine(440, 16000, 0.2), 16000)
    return
  audio.save(tmp_path / f"X{ext.upper()}", _sine(440, 16000, 0.2), 16000)  # case-insensitive
  assert sf.info(tmp_path / f"X{ext.upper()}").format == fmt


def test_unknown_extension_is_refused(tmp_path):
  with pytest.raises(audio.AudioError, match=r"x\.txt: cannot write '\.txt' files"):
    audio.save(tmp_path / "x.txt", _sine(440, 8000, 0.1), 8000)
  with pytest.raises(audio.AudioError, match="no extension"):
    audio.output_format(tmp_path / "x")


def test_save_without_overwrite_keeps_an_existing_file(tmp_path):
  path = tmp_path / "x.wav"
  path.write_bytes(b"mine")
  with pytest.raises(audio.AudioError, match=r"x\.wav: already exists"):
    audio.save(path, _sine(440, 8000, 0.1), 8000, overwrite=False)
  assert path.read_bytes() == b"mine" and os.listdir(tmp_path) == ["x.wav"]
  audio.save(tmp_path / "new.wav", _sine(440, 8000, 0.1), 8000, overwrite=False)
  assert audio.load(tmp_path / "new.wav")[0].shape == (800, 1)


def test_resample_sine_accuracy(tmp_path):
  sr_in, sr_out, f = 48000, 44100, 1000.0
  x = _sine(f, sr_in, 1.0)
  path = tmp_path / "48k.wav"
  audio.save(path, x, sr_in, subtype="FLOAT")
  y, sr = audio.load(path, sample_rate=sr_out)
  assert sr == sr_out
  assert abs(y.shape[0] - sr_out) <= 1
  t = np.arange(y.shape[0]) / sr_out
  ref = 0.5 * np.sin(2 * np.pi * f * t)
  core = slice(1000, -1000)  # away from the filter's edge transients
  err = np.max(np.abs(y[core, 0] - ref[core]))
  assert err < 1e-4, err


def test_resample_keeps_channels_and_is_identity_at_same_rate():
  x = _sine(300, 16000, 0.1, channels=2)
  assert audio.resample(x, 16000, 16000) is not None
  np.testing.assert_array_equal(audio.resample(x, 16000, 16000), x)
  y = audio.resample(x, 16000, 8000)
  assert y.shape == (800, 2) and y.dtype == np.float32


def test_channel_conversion():
  st = np.stack([np.ones(5), -np.ones(5) * 0.5], axis=1).astype(np.float32)
  np.testing.assert_allclose(audio.to_channels(st, 1)[:, 0], 0.25)
  mono = st[:, :1]
  np.testing.assert_array_equal(audio.to_channels(mono, 2), np.concatenate([mono, mono], 1))
  assert audio.to_channels(st, 2) is st


def test_missing_file(tmp_path):
  with pytest.raises(audio.AudioError, match=r"nope\.wav: file not found"):
    audio.load(tmp_path / "nope.wav")


def test_directory(tmp_path):
  with pytest.raises(audio.AudioError, match="is a directory"):
    audio.load(tmp_path)


def test_not_audio(tmp_path):
  path = tmp_path / "notes.wav"
  path.write_text("these are not samples")
  with pytest.raises(audio.AudioError, match=r"notes\.wav: not a readable audio file"):
    audio.load(path)


def test_truncated(tmp_path):
  path = tmp_path / "cut.wav"
  audio.save(path, _sine(440, 8000, 1.0), 8000, subtype="PCM_16")
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(audio.AudioError, match=r"cut\.wav: truncated"):
    audio.load(path)


def test_zero_length(tmp_path):
  path = tmp_path / "empty.wav"
  sf.write(path, np.zeros((0, 1), np.float32), 8000)
  with pytest.raises(audio.AudioError, match=r"empty\.wav: contains no samples"):
    audio.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples(tmp_path, bad):
  path = tmp_path / "nan.wav"
  x = _sine(440, 8000, 0.1)
  x[10] = bad
  sf.write(path, x, 8000, subtype="FLOAT")
  with pytest.raises(audio.AudioError, match=r"nan\.wav: contains 1 NaN or infinite"):
    audio.load(path)


def test_too_many_channels(tmp_path):
  path = tmp_path / "surround.wav"
  sf.write(path, np.zeros((100, 3), np.float32), 8000)
  with pytest.raises(audio.AudioError, match=r"surround\.wav: has 3 channels"):
    audio.load(path)


def test_save_refuses_bad_arrays_and_missing_folder(tmp_path):
  with pytest.raises(audio.AudioError, match="shape"):
    audio.save(tmp_path / "a.wav", np.zeros((0, 1)), 8000)
  with pytest.raises(audio.AudioError, match="3 channels"):
    audio.save(tmp_path / "a.wav", np.zeros((4, 3)), 8000)
  with pytest.raises(audio.AudioError, match="does not exist"):
    audio.save(tmp_path / "no" / "a.wav", np.zeros((4, 1)), 8000)


def test_never_overwrite_input(tmp_path):
  src = tmp_path / "in.wav"
  audio.save(src, _sine(440, 8000, 0.1), 8000)
  link = tmp_path / "link.wav"
  os.symlink(src, link)
  os.link(src, tmp_path / "hard.wav")
  for alias in (link, tmp_path / "hard.wav", tmp_path / "." / "in.wav"):
    with pytest.raises(audio.AudioError, match="is the input file"):
      audio.ensure_not_input(alias, src)
  audio.ensure_not_input(tmp_path / "out.wav", src)
  assert audio.same_file(link, src) and not audio.same_file(tmp_path / "out.wav", src)

"""The Python API: the original design's snippet, audio layouts, preset_config forms, strength,
model files giving the workdir's exact output, and bad model files."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mixnet import dsp, errors, infer, model_file
from mixnet.infer import settings

SR = 44100


def _take(seconds=1.0, sample_rate=SR):
  from mixnet.data import synthetic

  return synthetic.synth_vocal(seconds, sample_rate, seed=3)[:, 0]  # 1-D mono float32


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.fixture(scope="module")
def model_path(trained_workdir, tmp_path_factory):
  params, meta, _ = model_file.load_model(trained_workdir)
  return model_file.save(str(tmp_path_factory.mktemp("api") / "style.mixnet"), params, meta)


@pytest.fixture(scope="module")
def model(model_path):
  return infer.AudioProcessor(use_ml_model=True, model_path=model_path, strict=True)


def test_the_design_snippet_verbatim(model_path, tmp_path, monkeypatch, caplog):
  from mixnet import AudioProcessor

  monkeypatch.chdir(tmp_path)
  os.makedirs("models")
  os.symlink(model_path, "models/best_model.pt")  # the design's name for the trained model
  audio, preset_config = _take(), "warm"

  processor = AudioProcessor()
  processed = processor.process_vocal(audio, preset_config)
  assert processor.engine == "dsp" and processed.shape == audio.shape
  np.testing.assert_array_equal(processed, dsp.process(audio[:, None], SR, "warm")[:, 0])

  processor = AudioProcessor(
      use_ml_model=True,
      model_path='./models/best_model.pt'
  )
  processed = processor.process_vocal(audio, preset_config)
  assert processor.engine == "model" and not _warnings(caplog)
  assert processed.shape == audio.shape and processed.dtype == np.float32
  assert abs(dsp.integrated_loudness(processed[:, None], SR) - dsp.PRESETS["warm"].output_lufs) < 1


def test_import_mixnet_stays_cheap():
  code = ("import sys, mixnet; assert 'jax' not in sys.modules; "
          "from mixnet import AudioProcessor; assert 'jax' in sys.modules; "
          "assert AudioProcessor.__module__ == 'mixnet.infer'")
  subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("channels", [1, 2])
def test_every_layout_keeps_its_shape(channels):
  processor = infer.AudioProcessor()
  x = _take(0.5)
  x_tc = np.stack([x, 0.5 * x][:channels], axis=1)
  y_tc = processor.process_vocal(x_tc)
  np.testing.assert_array_equal(processor.process_vocal(x_tc.T), y_tc.T)
  assert y_tc.shape == x_tc.shape and np.max(np.abs(y_tc - x_tc)) > 1e-3
  if channels == 1:
    np.testing.assert_array_equal(processor.process_vocal(x), y_tc[:, 0])
  # The documented default rate: 44.1 kHz, never guessed from the shape.
  np.testing.assert_array_equal(processor.process_vocal(x_tc, sample_rate=SR), y_tc)
  assert not np.array_equal(processor.process_vocal(x_tc, sample_rate=16000), y_tc)


@pytest.mark.parametrize("shape", [(2, 2), (3, 100), (100, 3), (0,), (2, 3, 100)])
def test_unreadable_layouts_are_refused(shape):
  with pytest.raises(ValueError, match=r"got shape|empty"):
    infer.AudioProcessor().process_vocal(np.zeros(shape, np.float32))


def test_every_preset_config_form(tmp_path):
  processor = infer.AudioProcessor(preset="warm")
  x = _take(0.5)
  warm = dsp.process(x[:, None], SR, "warm")[:, 0]
  path = str(tmp_path / "learned.json")
  dsp.save_preset(dsp.PRESETS["warm"], path)
  for form in (None, "warm", dsp.PRESETS["warm"], path, {}, {"strength": 1}):
    np.testing.assert_array_equal(processor.process_vocal(x, form), warm)
  quiet = processor.process_vocal(x, {"output_lufs": -26.0, "ceiling_db": -3.0})
  assert abs(dsp.integrated_loudness(quiet[:, None], SR) + 26.0) < 0.5
  assert dsp.true_peak_db(quiet[:, None]) <= -3.0 + 0.1
  assert not np.array_equal(processor.process_vocal(x, "default"), warm)


@pytest.mark.parametrize("config, message", [
    ({"loudness": -14}, "unknown key(s) 'loudness'; known keys: ceiling_db"),
    ({"strength": 1.5}, "strength must be a number from 0 to 1"),
    ("no_such_preset", "unknown DSP preset 'no_such_preset'"),
    (16000, "keyword sample_rate="),
])
def test_bad_preset_configs_say_what_is_wrong(config, message):
  with pytest.raises(settings.SettingsError) as e:
    infer.AudioProcessor().process_vocal(_take(0.1), config)
  assert message in str(e.value)
  if isinstance(config, dict) and "loudness" in config:
    assert all(k in str(e.value) for k in ("output_lufs", "strength", "compressor"))


def test_model_preset_config_sets_loudness_ceiling_and_strength(model):
  x = 0.2 * _take(1.0)
  full = model.process_vocal(x)
  np.testing.assert_array_equal(model.process_vocal(x, {"strength": 1.0}), full)
  staged = dsp.true_peak_limit(dsp.normalize_loudness(
      x[:, None], SR, dsp.integrated_loudness(full[:, None], SR)), SR, ceiling_db=-1.0)[:, 0]
  np.testing.assert_allclose(model.process_vocal(x, {"strength": 0.0}), staged, atol=1e-6)
  half = model.process_vocal(x, {"strength": 0.5})
  assert 0 < np.max(np.abs(half - full)) and 0 < np.max(np.abs(half - staged))
  loud = model.process_vocal(x, {"output_lufs": -12.0, "ceiling_db": -2.0})
  assert abs(dsp.integrated_loudness(loud[:, None], SR) + 12.0) < 1.0
  assert dsp.true_peak_db(loud[:, None]) <= -2.0 + 0.1


def test_model_file_gives_the_workdirs_exact_output(model, trained_workdir):
  from_workdir = infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir, strict=True)
  x = _take(1.5)
  np.testing.assert_array_equal(model.process_vocal(x), from_workdir.process_vocal(x))
  assert model.meta == from_workdir.meta and model.model_path.endswith("style.mixnet")


def _bad_model_paths(model_path, folder):
  data = open(model_path, "rb").read()
  cases = {"empty": b"", "truncated": data[:len(data) // 2],
           "random": np.random.default_rng(0).bytes(4096), "wrong_magic": b"PK\x03\x04" + data[4:]}
  for name, content in cases.items():
    path = os.path.join(folder, f"{name}.mixnet")
    with open(path, "wb") as f:
      f.write(content)
  return {name: os.path.join(folder, f"{name}.mixnet") for name in cases}


def test_bad_model_files_give_one_line(model_path, tmp_path, caplog):
  paths = _bad_model_paths(model_path, str(tmp_path))
  paths["folder"] = str(tmp_path / "empty_folder")
  paths["missing"] = str(tmp_path / "missing.mixnet")
  os.makedirs(paths["folder"])
  for name, path in paths.items():
    with pytest.raises(errors.MixnetError) as e:
      infer.AudioProcessor(use_ml_model=True, model_path=path, strict=True)
    message = str(e.value)
    assert path in message and "\n" not in message and len(message) < 300, (name, message)
    caplog.clear()
    fallback = infer.AudioProcessor(use_ml_model=True, model_path=path)
    assert fallback.engine == "dsp" and fallback.fallback_reason == message
    assert len(_warnings(caplog)) == 1 and message in _warnings(caplog)[0]


def test_what_the_model_keywords_mean(tmp_path, monkeypatch, caplog):
  monkeypatch.chdir(tmp_path)
  default = infer.AudioProcessor(use_ml_model=True)  # ./models/best_model.mixnet, absent here
  assert default.engine == "dsp" and infer.DEFAULT_MODEL_PATH in default.fallback_reason
  assert len(_warnings(caplog)) == 1
  with pytest.raises(model_file.ModelFileError, match="does not exist"):
    infer.AudioProcessor(use_ml_model=True, strict=True)
  with pytest.raises(ValueError, match="use_ml_model=False"):
    infer.AudioProcessor(model_path="m.mixnet")
  with pytest.raises(TypeError, match="model_path="):
    infer.AudioProcessor("runs/base")

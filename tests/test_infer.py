"""Inference: chunked == one pass, every length, engines and fallbacks, outputs, silence."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from experiments import base
from mixnet import audio, checkpoints, chunking, dsp, infer, models, silence

SR = 16000


def _vocal(seconds, channels=1, seed=0):
  from mixnet.data import synthetic

  x = synthetic.synth_vocal(seconds, SR, seed=seed)
  if channels == 2:
    x = np.concatenate([x, 0.5 * np.roll(x, 7, axis=0)], axis=1)
  return x


def _model(name):
  config = base.get_config("tiny").model
  config.name = name
  config.time_unet.base_width = 4
  config.time_unet.max_width = 16
  config.spectral_unet.fft_size = 256
  config.spectral_unet.hop_size = 64
  config.spectral_unet.base_width = 4
  config.spectral_unet.max_width = 16
  model = models.build(config)
  params = models.init_variables(model, jax.random.key(1), jnp.zeros((1, 4096, 1)))["params"]
  # Random init is near identity; perturb so every layer matters for the comparison (numpy
  # noise: one jax.random call per parameter shape would compile once per shape).
  rng = np.random.default_rng(1)
  params = jax.tree.map(
      lambda p: p + np.float32(0.05) * rng.standard_normal(p.shape).astype(np.float32), params)
  return config, model, params


@pytest.mark.parametrize("name", ["time_unet", "spectral_unet"])
def test_chunked_equals_one_pass(name):
  config, model, params = _model(name)
  plan = chunking.ChunkPlan.create(config, chunk_seconds=0.0, sample_rate=SR)  # smallest chunk
  x = _vocal(plan.hops[0] * 5.5 / SR)  # several chunks and a partial last one
  apply = jax.jit(lambda b: model.apply({"params": params}, b))
  chunked = chunking.process_chunked(apply, x, plan, batch_size=2)
  padded = np.pad(x, [(plan.left, plan.right), (0, 0)])
  one_pass = np.asarray(apply(padded[None]))[0, plan.left:plan.left + len(x)]
  assert chunked.shape == x.shape
  assert np.max(np.abs(one_pass)) > 1e-2
  np.testing.assert_array_less(np.max(np.abs(chunked - one_pass)), 1e-4)


def test_dsp_without_checkpoint(tmp_path, caplog):
  src = tmp_path / "take.wav"
  audio.save(src, _vocal(1.0, channels=2), SR)
  summary = infer.process_file(src, tmp_path / "out.wav", preset="warm")
  assert summary["engine"] == "dsp" and summary["preset"] == "warm"
  assert summary["fallback_reason"] == "no checkpoint given"
  assert not [r for r in caplog.records if r.levelname == "WARNING"]  # DSP was asked for
  y, sr = audio.load(tmp_path / "out.wav")
  assert sr == SR and y.shape == (SR, 2)
  assert summary["peak_dbfs"] <= -1.0 + 1e-3


@pytest.fixture(scope="module")
def processor(trained_workdir):
  return infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir, strict=True,
                              chunk_seconds=0.5)


@pytest.mark.parametrize("length", ["one", "short", "chunk", "many"])
@pytest.mark.parametrize("channels", [1, 2])
def test_model_any_length_and_channels(processor, length, channels):
  plan = processor.backend.stages[0].plan
  n = {"one": 1, "short": 300, "chunk": plan.chunk, "many": 4 * plan.chunk + 123}[length]
  x = _vocal(1.0 + n / SR, channels)[:n]
  y = processor.process_vocal(x, sample_rate=SR)
  assert y.shape == x.shape and y.dtype == np.float32
  assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 10 ** (-1.0 / 20) + 1e-6


def test_trained_model_end_to_end_with_resampling(processor, trained_workdir, tmp_path):
  src = tmp_path / "take44k.wav"
  audio.save(src, audio.resample(_vocal(2.0), SR, 44100), 44100)
  summary = infer.process_file(src, tmp_path / "mixed.wav", processor=processor)
  assert summary["engine"] == "model" and summary["model_path"].startswith(trained_workdir)
  y, sr = audio.load(tmp_path / "mixed.wav")
  assert sr == 44100 and abs(y.shape[0] - 2 * 44100) <= 1
  assert summary["realtime_factor"] > 0
  # The summary's loudness is the written file's (up to 24-bit rounding).
  assert summary["loudness_lufs"] == pytest.approx(dsp.integrated_loudness(y, sr), abs=1e-3)
  assert summary["loudness_lufs"] > dsp.LOUDNESS_FLOOR_LUFS
  # Loading by workdir picks the best checkpoint.
  assert summary["model_path"] == os.path.join(trained_workdir, checkpoints.BEST, "3")


def test_output_sample_rate_and_channels_on_request(tmp_path):
  src = tmp_path / "in.wav"
  audio.save(src, _vocal(0.5), SR)
  infer.process_file(src, tmp_path / "out.wav", sample_rate=22050, channels=2)
  info = sf.info(tmp_path / "out.wav")
  assert info.samplerate == 22050 and info.channels == 2


@pytest.mark.parametrize("problem", ["missing", "corrupt", "empty", "nan", "channels"])
def test_bad_input_files(tmp_path, problem):
  src = tmp_path / "bad.wav"
  if problem == "corrupt":
    src.write_bytes(b"RIFF0000WAVEjunk")
  elif problem == "empty":
    sf.write(src, np.zeros((0, 1)), SR)
  elif problem == "nan":
    sf.write(src, np.full((100, 1), np.nan), SR, subtype="FLOAT")
  elif problem == "channels":
    sf.write(src, np.zeros((100, 3)), SR)
  with pytest.raises(audio.AudioError, match=r"bad\.wav"):
    infer.process_file(src, tmp_path / "out.wav")
  assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("alias", ["same", "relative", "symlink", "hardlink"])
def test_output_equal_to_input_is_refused(tmp_path, monkeypatch, alias):
  src = tmp_path / "take.wav"
  audio.save(src, _vocal(0.2), SR)
  out = {"same": lambda: src, "relative": lambda: "sub/../take.wav",
         "symlink": lambda: tmp_path / "link.wav", "hardlink": lambda: tmp_path / "hard.wav"}
  (tmp_path / "sub").mkdir()
  os.symlink(src, tmp_path / "link.wav")
  os.link(src, tmp_path / "hard.wav")
  monkeypatch.chdir(tmp_path)
  before = src.read_bytes()
  with pytest.raises(audio.AudioError, match="is the input file"):
    infer.process_file(src, out[alias](), overwrite=True)
  assert src.read_bytes() == before


def test_existing_output_is_kept_unless_overwrite(tmp_path):
  src, out = tmp_path / "take.wav", tmp_path / "out.wav"
  audio.save(src, _vocal(0.3), SR)
  out.write_bytes(b"the user's own file")
  with pytest.raises(audio.AudioError, match=r"out\.wav: already exists"):
    infer.process_file(src, out)
  assert out.read_bytes() == b"the user's own file"
  infer.process_file(src, out, overwrite=True)
  assert audio.load(out)[0].shape == (int(0.3 * SR), 1)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_permissions_follow_the_umask(tmp_path, umask):
  src, out = tmp_path / "take.wav", tmp_path / "out.wav"
  audio.save(src, _vocal(0.2), SR)
  old = os.umask(umask)
  try:
    infer.process_file(src, out)
    infer.process_file(src, out, overwrite=True)  # re-mixing keeps normal permissions too
  finally:
    os.umask(old)
  assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("ext,fmt", [(".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3"),
                                     (".aiff", "AIFF"), (".wav", "WAV")])
def test_output_format_follows_the_extension(tmp_path, ext, fmt):
  if ext not in audio.writable_extensions():
    pytest.skip(f"this libsndfile cannot write {fmt}")
  src = tmp_path / "take.wav"
  audio.save(src, _vocal(0.5), SR)
  infer.process_file(src, tmp_path / f"out{ext}")
  info = sf.info(tmp_path / f"out{ext}")
  assert info.format == fmt and info.samplerate == SR
  y, _ = audio.load(tmp_path / f"out{ext}")
  assert abs(y.shape[0] - int(0.5 * SR)) < 0.1 * SR and np.max(np.abs(y)) > 0.01


def test_unknown_output_format_is_refused_before_reading(tmp_path):
  # The input does not even exist: the output is checked first.
  with pytest.raises(audio.AudioError, match=r"out\.xyz: cannot write '\.xyz' files.*\.flac"):
    infer.process_file(tmp_path / "missing.wav", tmp_path / "out.xyz")
  assert os.listdir(tmp_path) == []


def test_unwritable_output_folder(tmp_path):
  src = tmp_path / "take.wav"
  audio.save(src, _vocal(0.2), SR)
  blocker = tmp_path / "not_a_folder"
  blocker.write_text("a file where a folder should be")
  with pytest.raises(audio.AudioError, match="output folder .* does not exist"):
    infer.process_file(src, blocker / "out.wav")
  with pytest.raises(audio.AudioError, match="output folder .* does not exist"):
    infer.process_file(src, tmp_path / "missing" / "out.wav")


def _corrupt(workdir, tmp_path, managers):
  """A copy of `workdir` whose parameter data files in `managers` are garbage."""
  bad = tmp_path / "corrupt"
  shutil.copytree(workdir, bad)
  for manager in managers:
    for root, _, files in os.walk(bad / manager):
      for f in files:
        if "params" in root and os.path.basename(root) == "d":
          with open(os.path.join(root, f), "wb") as fh:
            fh.write(b"\0garbage")
  return bad


def _incompatible(workdir, tmp_path, managers):
  """A copy of `workdir` whose saved config in `managers` no longer matches the parameters."""
  bad = tmp_path / "incompatible"
  shutil.copytree(workdir, bad)
  for root, _, files in (w for m in managers for w in os.walk(bad / m)):
    for f in files:
      if os.path.basename(root) == "meta" and f == "metadata":
        path = os.path.join(root, f)
        with open(path) as fh:
          meta = json.load(fh)
        meta["config"]["model"]["time_unet"]["base_width"] = 12
        with open(path, "w") as fh:
          json.dump(meta, fh)
  return bad


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("kind", ["empty", "corrupt", "incompatible"])
def test_bad_checkpoints(trained_workdir, tmp_path, caplog, kind):
  everything = (checkpoints.BEST, checkpoints.LATEST)
  path = {"empty": lambda: tmp_path,
          "corrupt": lambda: _corrupt(trained_workdir, tmp_path, everything),
          "incompatible": lambda: _incompatible(trained_workdir, tmp_path, everything)}[kind]()
  with pytest.raises(checkpoints.CheckpointError, match=str(path)) as raised:
    infer.AudioProcessor(use_ml_model=True, model_path=str(path), strict=True)
  assert "\n" not in str(raised.value) and len(str(raised.value)) < 500
  caplog.clear()
  proc = infer.AudioProcessor(use_ml_model=True, model_path=str(path))
  assert proc.engine == "dsp" and str(path) in proc.fallback_reason
  assert len(_warnings(caplog)) == 1 and "DSP vocal chain" in _warnings(caplog)[0]
  y = proc.process_vocal(_vocal(0.3), sample_rate=SR)
  assert y.shape == (int(0.3 * SR), 1)


@pytest.mark.parametrize("damage", [_corrupt, _incompatible])
def test_bad_best_step_falls_back_to_the_newest_intact_one(trained_workdir, tmp_path, caplog,
                                                           damage):
  path = damage(trained_workdir, tmp_path, (checkpoints.BEST,))
  proc = infer.AudioProcessor(use_ml_model=True, model_path=str(path), strict=True)
  used = os.path.join(path, checkpoints.LATEST, "3")
  assert proc.engine == "model" and proc.model_path == used
  [warning] = _warnings(caplog)
  assert os.path.join(path, checkpoints.BEST, "3") in warning and f"using {used}" in warning
  reference = infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir, strict=True)
  x = _vocal(0.5)
  np.testing.assert_allclose(proc.process_vocal(x, sample_rate=SR),
                             reference.process_vocal(x, sample_rate=SR), atol=1e-5)


def test_output_matches_the_training_mixes_loudness(trained_workdir):
  from mixnet import dsp

  target = checkpoints.load_meta(checkpoints.resolve(trained_workdir))["data"][
      "train_mixed_lufs_median"]
  assert -17.0 < target < -15.0  # the demo pairs' preset delivers at -16 LUFS
  x = 0.1 * _vocal(3.0)  # a quiet take
  matched = infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir,
                                 strict=True).process_vocal(x, sample_rate=SR)
  assert abs(dsp.integrated_loudness(matched, SR) - target) < 0.5
  raw_level = infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir, strict=True,
                                   match_loudness=False)
  assert dsp.integrated_loudness(raw_level.process_vocal(x, sample_rate=SR), SR) < target - 10


def test_digital_silence_in_gives_digital_silence_out(processor):
  y = processor.process_vocal(np.zeros((SR, 2), np.float32), sample_rate=SR)
  assert y.shape == (SR, 2) and not np.any(y)


def test_silent_gaps_stay_silent_and_tails_are_kept(processor):
  left, right = processor.backend.context
  reach = max(left, right) + 1000  # beyond the model's context and the resamplers' ringing
  gap = 2 * reach + SR // 2
  take = _vocal(1.0)
  x = np.concatenate([take, np.zeros((gap, 1), np.float32), take])
  y = processor.process_vocal(x, sample_rate=SR)
  assert not np.any(y[SR + reach:SR + gap - reach])  # the model saw only silence there
  assert np.max(np.abs(y[SR:SR + 200])) > 0  # output computed from real input is not cut
  assert np.max(np.abs(y[:SR])) > 0.01 and np.max(np.abs(y[SR + gap:])) > 0.01


def test_model_output_has_no_dc_offset(processor):
  y = processor.process_vocal(_vocal(3.0), sample_rate=SR)
  rms = float(np.sqrt(np.mean(y ** 2)))
  assert rms > 0.01 and abs(float(np.mean(y))) < 1e-4 * rms


def test_dc_block_starts_without_a_transient():
  t = np.arange(SR) / SR
  x = (0.3 + 0.5 * np.sin(2 * np.pi * 200 * t))[:, None].astype(np.float32)
  y = silence.dc_block(x, SR)
  assert abs(float(np.mean(y[SR // 2:]))) < 1e-3 and np.max(np.abs(y)) < 0.55
  np.testing.assert_allclose(silence.dc_block(np.full((100, 2), 0.2, np.float32), SR), 0,
                             atol=1e-7)


def test_silent_mask_windows():
  x = np.zeros((20, 2), np.float32)
  x[10, 0] = 0.5
  mask = silence.silent_mask(x, left=2, right=3)
  assert mask[:, 1].all()
  np.testing.assert_array_equal(np.flatnonzero(~mask[:, 0]), np.arange(7, 13))

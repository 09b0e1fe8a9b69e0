"""The one-file model: round trip from a workdir, the export CLI, and every kind of bad file."""

import json
import os
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest
import safetensors.numpy

import mixnet
from mixnet import model_file


@pytest.fixture(scope="module")
def exported(trained_workdir, tmp_path_factory):
  path = str(tmp_path_factory.mktemp("export") / "models" / "best_model.mixnet")
  done = subprocess.run([sys.executable, "-m", "mixnet.export", f"--checkpoint={trained_workdir}",
                         f"--out={path}"], capture_output=True, text=True)
  assert done.returncode == 0, done.stderr
  assert "wrote" in done.stdout
  return path


def test_round_trip_equals_the_checkpoint(trained_workdir, exported):
  params, meta = model_file.load(exported)
  ckpt_params, ckpt_meta, source = model_file.load_model(trained_workdir)
  assert "best" in source
  assert meta == ckpt_meta
  assert meta["sample_rate"] == 16000 and meta["channels"] == 1
  assert jax.tree.structure(params) == jax.tree.structure(ckpt_params)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ckpt_params), strict=True):
    assert a.dtype == b.dtype and np.array_equal(a, b)
  again, _, source = model_file.load_model(exported)
  assert source == exported
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params), strict=True):
    assert np.array_equal(a, b)


def test_file_is_self_describing(exported):
  with open(exported, "rb") as f:
    (size,) = struct.unpack("<Q", f.read(8))
    metadata = json.loads(f.read(size))["__metadata__"]
  assert metadata["format"] == model_file.FORMAT
  assert metadata["mixnet_version"] == mixnet.__version__
  assert json.loads(metadata["meta"])["config"]["model"]["name"] == "time_unet"
  assert len(metadata["sha256"]) == 64


def test_export_refuses_to_replace_a_file(trained_workdir, exported):
  done = subprocess.run([sys.executable, "-m", "mixnet.export", f"--checkpoint={trained_workdir}",
                         f"--out={exported}"], capture_output=True, text=True)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
      f"error: {exported}: exists; pass --overwrite to replace it"]


def _bad_files(exported, folder):
  data = open(exported, "rb").read()
  (size,) = struct.unpack("<Q", data[:8])
  header = json.loads(data[8:8 + size])
  newer = dict(header["__metadata__"], format_version=str(model_file.FORMAT_VERSION + 1))
  flipped = bytearray(data)
  flipped[-3] ^= 0xFF
  cases = {
      "empty": (b"", "only 0 bytes"),
      "truncated": (data[:8 + size // 2], "truncated"),
      "short_tensors": (data[:-100], "corrupt"),
      "random": (np.random.default_rng(0).bytes(4096), "no safetensors header"),
      "foreign": (safetensors.numpy.save({"w": np.zeros(3, np.float32)}), "without mixnet"),
      "newer": (safetensors.numpy.save({"w": np.zeros(3, np.float32)}, metadata=newer),
                "upgrade mixnet"),
      "flipped": (bytes(flipped), "checksum"),
  }
  for name, (content, expected) in cases.items():
    path = os.path.join(folder, f"{name}.mixnet")
    with open(path, "wb") as f:
      f.write(content)
    yield path, expected


def test_bad_files_name_the_file_and_the_problem(exported, tmp_path):
  for path, expected in _bad_files(exported, str(tmp_path)):
    with pytest.raises(model_file.ModelFileError) as e:
      model_file.load(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "\n" not in message
  with pytest.raises(model_file.ModelFileError, match="is a folder"):
    model_file.load(str(tmp_path))
  with pytest.raises(model_file.ModelFileError, match="cannot read"):
    model_file.load(str(tmp_path / "missing.mixnet"))


def test_training_keeps_best_model_file(trained_workdir, exported):
  """WORKDIR/best_model.mixnet is the best checkpoint, as `mixnet.export` would write it."""
  params, meta = model_file.load(os.path.join(trained_workdir, "best_model.mixnet"))
  want_params, want_meta = model_file.load(exported)
  assert meta == want_meta and meta["val_loss"] is not None
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(want_params), strict=True):
    assert np.array_equal(a, b)

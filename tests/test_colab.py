"""Notebook helpers: runtime detection, install command, overrides, uploads, model zips."""

import configparser
import io
import os
import shutil
import sys
import tempfile
import types
import zipfile

import numpy as np
import pytest

from experiments import base
from mixnet import audio, checkpoints, colab, infer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_machine(root, pci=(), nvidia=False):
  root.mkdir()
  for i, (vendor, device) in enumerate(pci):
    d = root / "sys" / "bus" / "pci" / "devices" / f"0000:00:0{i}.0"
    d.mkdir(parents=True)
    (d / "vendor").write_text(vendor + "\n")
    (d / "device").write_text(device + "\n")
  if nvidia:
    (root / "dev").mkdir()
    (root / "dev" / "nvidia0").write_text("")
  return str(root)


def test_detect_accelerator(tmp_path):
  assert colab.detect_accelerator(_fake_machine(tmp_path / "cpu")) == "cpu"
  # A Google PCI device that is not a TPU (e.g. a gVNIC) is not a TPU.
  assert colab.detect_accelerator(_fake_machine(tmp_path / "nic", [("0x1ae0", "0x0042")])) == "cpu"
  assert colab.detect_accelerator(
      _fake_machine(tmp_path / "v5e", [("0x8086", "0x1234"), ("0x1ae0", "0x0063")])) == "tpu"
  assert colab.detect_accelerator(_fake_machine(tmp_path / "gpu", nvidia=True)) == "gpu"
  # This test machine has neither.
  assert colab.detect_accelerator() == "cpu"


def test_install_command_matches_the_jax_pin():
  setup = configparser.ConfigParser()
  setup.read(os.path.join(REPO, "setup.cfg"))
  assert f"jax=={colab.JAX_VERSION}" in setup["options"]["install_requires"].split()
  cpu = colab.install_command("/content/mixnet", "cpu")
  assert cpu == [sys.executable, "-m", "pip", "install", "--quiet", "-e", "/content/mixnet"]
  assert colab.install_command("/r", "gpu")[-1] == f"jax[cuda12]=={colab.JAX_VERSION}"
  assert colab.install_command("/r", "tpu")[-1] == f"jax[tpu]=={colab.JAX_VERSION}"
  with pytest.raises(ValueError, match="rocm"):
    colab.install_command("/r", "rocm")


def test_stale_modules(monkeypatch):
  assert colab.stale_modules() == []  # what this process imported is what is installed
  monkeypatch.setitem(sys.modules, "scipy", types.SimpleNamespace(__version__="0.1"))
  stale = colab.stale_modules()
  assert len(stale) == 1 and stale[0].startswith("scipy 0.1 (installed now: ")


def test_runtime_report_lists_devices_and_warns_on_mismatch():
  import jax

  report = colab.runtime_report("cpu")
  assert f"{jax.device_count()} device(s)" in report and "'cpu'" in report
  assert "WARNING" not in report
  assert "WARNING: this machine has a GPU" in colab.runtime_report("gpu")


def test_apply_overrides():
  config = colab.apply_overrides(base.get_config("tiny"), {
      "sample_rate": 16000, "model.time_unet.base_width": 4, "train.num_steps": 7})
  assert config.data.sample_rate == 16000  # follows the shared reference
  assert config.model.time_unet.base_width == 4 and config.train.num_steps == 7
  with pytest.raises(KeyError, match=r"'train.num_step'.*no field 'num_step'.*num_steps"):
    colab.apply_overrides(config, {"train.num_step": 3})
  with pytest.raises(KeyError, match="'modle'"):
    colab.apply_overrides(config, {"modle.name": "x"})


def _zip_bytes(members):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    for name, data in members.items():
      z.writestr(name, data)
  return buf.getvalue()


def test_save_uploads(tmp_path):
  written, skipped = colab.save_uploads({
      "a.wav": b"A",
      "notes.txt": b"x",
      "takes.zip": _zip_bytes({"takes/b.WAV": b"B", "takes/sub/c.flac": b"C",
                               "__MACOSX/takes/._b.WAV": b"junk", "takes/.DS_Store": b"",
                               "takes/readme.md": b"r"}),
  }, str(tmp_path / "raw"))
  assert [os.path.basename(p) for p in written] == ["a.wav", "b.WAV", "c.flac"]
  assert sorted(skipped) == ["notes.txt", "takes/.DS_Store", "takes/readme.md"]
  assert (tmp_path / "raw" / "c.flac").read_bytes() == b"C"
  assert sorted(os.listdir(tmp_path / "raw")) == ["a.wav", "b.WAV", "c.flac"]  # no temp files
  with pytest.raises(ValueError, match="'a.wav'"):
    colab.save_uploads({"a.wav": b"1", "more.zip": _zip_bytes({"x/a.wav": b"2"})},
                       str(tmp_path / "dup"))
  with pytest.raises(ValueError, match="broken.zip: not a readable zip"):
    colab.save_uploads({"broken.zip": b"not a zip"}, str(tmp_path / "bad"))


def test_model_zip_round_trip(trained_workdir, tmp_path):
  zip_path = colab.archive_model(trained_workdir, str(tmp_path / colab.MODEL_ZIP))
  with zipfile.ZipFile(zip_path) as z:
    assert all(n.startswith(f"{checkpoints.BEST}/3/") for n in z.namelist())
  folder = colab.unpack_model(zip_path, str(tmp_path / "unpacked"))
  x = np.sin(np.linspace(0, 2000, 8000, dtype=np.float32))[:, None] * 0.3
  original = infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir, strict=True)
  original = original.process_vocal(x, sample_rate=16000)
  unpacked = infer.AudioProcessor(use_ml_model=True, model_path=folder, strict=True)
  assert unpacked.model_path == os.path.join(folder, checkpoints.BEST, "3")
  np.testing.assert_array_equal(unpacked.process_vocal(x, sample_rate=16000), original)
  default = colab.unpack_model(zip_path)  # a new temporary folder
  try:
    assert default != folder and os.path.isdir(os.path.join(default, checkpoints.BEST, "3"))
  finally:
    shutil.rmtree(default)


def test_unpack_model_rejects_other_zips(tmp_path):
  path = tmp_path / "takes.zip"
  path.write_bytes(_zip_bytes({"raw/a.wav": b"A"}))
  with pytest.raises(checkpoints.CheckpointError, match="takes.zip: holds no mixnet checkpoint"):
    colab.unpack_model(str(path), str(tmp_path / "out"))
  audio.save(tmp_path / "a.wav", np.zeros((10, 1), np.float32), 16000)
  ours = lambda: {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("mixnet_model_")}
  before = ours()
  with pytest.raises(ValueError, match="a.wav: not a readable zip"):
    colab.unpack_model(str(tmp_path / "a.wav"))
  assert ours() <= before  # its temporary folder is removed


def test_zip_folder(tmp_path):
  (tmp_path / "out" / "sub").mkdir(parents=True)
  (tmp_path / "out" / "a.wav").write_bytes(b"A")
  (tmp_path / "out" / "sub" / "b.wav").write_bytes(b"B")
  zip_path = colab.zip_folder(str(tmp_path / "out"), str(tmp_path / "out" / "all.zip"))
  with zipfile.ZipFile(zip_path) as z:
    assert sorted(z.namelist()) == ["a.wav", "sub/b.wav"]  # not itself, nor a temp file
    assert z.read("sub/b.wav") == b"B"


def test_run_reports_failures(capsys):
  colab.run([sys.executable, "-c", "print('fine')"])
  assert capsys.readouterr().out.startswith(f"$ {sys.executable} -c")
  with pytest.raises(RuntimeError, match=r"exit code 3\):\nboom"):
    colab.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])


def test_show_mixnet_logs_keeps_mixnet_info_and_others_errors():
  import logging as py_logging

  from absl import logging

  logger = logging.get_absl_logger()
  verbosity, filters = logging.get_verbosity(), list(logger.filters)
  try:
    colab.show_mixnet_logs()
    colab.show_mixnet_logs()  # a second call (a re-run cell) adds nothing
    assert logging.get_verbosity() == logging.INFO
    assert len(logger.filters) == len(filters) + 1
    record = lambda level, path: py_logging.LogRecord("absl", level, path, 1, "m", None, None)
    ours = os.path.join(REPO, "mixnet", "train_lib.py")
    lib = os.path.join(os.path.dirname(np.__file__), "x.py")
    assert logger.filter(record(py_logging.INFO, ours))
    assert not logger.filter(record(py_logging.INFO, lib))
    assert not logger.filter(record(py_logging.WARNING, lib))
    assert logger.filter(record(py_logging.ERROR, lib))
  finally:
    logging.set_verbosity(verbosity)
    logger.filters[:] = filters


def test_import_is_light():
  """The install cell imports mixnet.colab before the right jax is installed."""
  import subprocess

  code = ("import sys, mixnet.colab; "
          "print(sorted(m for m in ('numpy', 'jax', 'tensorflow', 'orbax') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]"

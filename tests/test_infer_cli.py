"""`python -m mixnet.infer` as a user runs it: exit codes, one-line errors, files on disk, kills."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from mixnet import audio, fileio, infer
from mixnet.data import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
ENV = dict(os.environ, PYTHONPATH=REPO)
# Writes the temporary file, says so, then hangs before the rename: a run killed mid-write.
_HANG_AFTER_WRITE = textwrap.dedent("""
    import runpy, sys, time
    import soundfile
    real_write = soundfile.write
    def write_then_hang(*args, **kwargs):
      real_write(*args, **kwargs)
      print("WRITTEN", flush=True)
      time.sleep(600)
    soundfile.write = write_then_hang
    sys.argv[0] = "mixnet.infer"
    runpy.run_module("mixnet.infer", run_name="__main__", alter_sys=True)
""")


def _infer(*args, cwd):
  return subprocess.run([sys.executable, "-m", "mixnet.infer", *map(str, args)], cwd=cwd,
                        env=ENV, capture_output=True, text=True, timeout=300)


def _lines(stderr):
  """stderr without the progress bar."""
  return [ln for ln in stderr.splitlines() if ln.strip() and "mixing:" not in ln]


def _take(path, seconds=0.5, seed=0):
  audio.save(path, synthetic.synth_vocal(seconds, SR, seed=seed), SR)
  return path


def _snapshot(folder):
  return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_inputs_are_never_replaced_and_colliding_outputs_are_refused(tmp_path):
  d = tmp_path / "d"
  d.mkdir()
  _take(d / "take.wav")
  _take(d / "take.flac", seed=1)
  before = _snapshot(d)
  out = _infer(d / "take.wav", d / "take.flac", "--out_dir", d, "--overwrite", cwd=tmp_path)
  assert out.returncode == 2, out.stderr
  [line] = _lines(out.stderr)
  assert line.startswith(f"error: {d / 'take.wav'}: ") and "nothing was written" in line
  assert _snapshot(d) == before
  for sub in ("a", "b"):
    (tmp_path / sub).mkdir()
    _take(tmp_path / sub / "take.wav")
  out = _infer("a/take.wav", "b/take.wav", "--out_dir=o", cwd=tmp_path)
  assert out.returncode == 2 and "would be written by each of a/take.wav, b/take.wav" in out.stderr
  assert os.listdir(tmp_path / "o") == []


def test_existing_outputs_formats_and_the_summary(tmp_path):
  _take(tmp_path / "good.wav")
  (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
  (tmp_path / "o").mkdir()
  (tmp_path / "o" / "good.flac").write_bytes(b"the user's file")
  out = _infer("good.wav", "broken.wav", "--out_dir=o", "--format=flac", cwd=tmp_path)
  assert out.returncode == 2 and "o/good.flac: already exists" in out.stderr
  assert (tmp_path / "o" / "good.flac").read_bytes() == b"the user's file"
  out = _infer("good.wav", "broken.wav", "--out_dir=o", "--format=flac", "--overwrite",
               cwd=tmp_path)
  assert out.returncode == 2
  assert out.stdout.strip().endswith("1/2 files written to o")  # only what was written
  errors = [ln for ln in _lines(out.stderr) if ln.startswith("error:")]
  assert len(errors) == 2 and errors[0].startswith("error: broken.wav: not a readable audio")
  assert errors[1] == "error: o: 1 of 2 files not written (errors above)"
  assert sf.info(str(tmp_path / "o" / "good.flac")).format == "FLAC"
  assert os.stat(tmp_path / "o" / "good.flac").st_mode & 0o777 == 0o666 & ~_umask()
  assert sorted(os.listdir(tmp_path / "o")) == ["good.flac"]


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


@pytest.mark.parametrize("args,returncode,message", [
    ((), 1, "give at least one input file"),
    (("take.wav", "--out_dir=take.wav"), 2, "error: take.wav: --out_dir is a file"),
    (("take.wav", "--out_dir=o", "--format=xyz"), 2, "error: --format=xyz: cannot write xyz"),
])
def test_usage_and_setting_errors(tmp_path, args, returncode, message):
  _take(tmp_path / "take.wav")
  out = _infer(*args, *(() if args else ("--out_dir=o",)), cwd=tmp_path)
  assert out.returncode == returncode and message in out.stderr
  assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def broken_workdir(trained_workdir, tmp_path_factory):
  """A copy of the trained workdir with every step's parameter data overwritten."""
  bad = tmp_path_factory.mktemp("broken") / "run"
  shutil.copytree(trained_workdir, bad)
  for root, _, files in os.walk(bad):
    for f in files:
      if "params" in root and os.path.basename(root) == "d":
        with open(os.path.join(root, f), "wb") as fh:
          fh.write(b"garbage")
  return bad


def test_a_named_checkpoint_that_cannot_load_is_an_error(tmp_path, broken_workdir):
  _take(tmp_path / "take.wav")
  for checkpoint in (tmp_path / "missing", broken_workdir):
    out = _infer("take.wav", "--out_dir=o", f"--checkpoint={checkpoint}", cwd=tmp_path)
    assert out.returncode == 2
    [line] = _lines(out.stderr)  # no TensorStore dump, no "Event loop is closed" tracebacks
    assert line.startswith(f"error: {checkpoint}") and len(line) < 600
    assert os.listdir(tmp_path / "o") == []
  out = _infer("take.wav", "--out_dir=o", f"--checkpoint={broken_workdir}", "--fallback_to_dsp",
               cwd=tmp_path)
  assert out.returncode == 0 and "engine=dsp" in out.stdout
  [warning] = _lines(out.stderr)
  assert "using the DSP vocal chain" in warning and str(broken_workdir) in warning


def test_killed_while_writing_then_rerun(tmp_path, trained_workdir):
  _take(tmp_path / "take.wav", seconds=1.0)
  args = ["take.wav", "--out_dir=o", f"--checkpoint={trained_workdir}"]
  proc = subprocess.Popen([sys.executable, "-c", _HANG_AFTER_WRITE, *args], cwd=tmp_path,
                          env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  try:
    assert proc.stdout.readline().strip() == "WRITTEN"
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  [left] = os.listdir(tmp_path / "o")  # the killed run's complete but unrenamed temporary file
  assert left.startswith(fileio.PREFIX) and left.endswith(".wav")
  out = _infer(*args, cwd=tmp_path)
  assert out.returncode == 0, out.stderr
  assert os.listdir(tmp_path / "o") == ["take.wav"]
  reference = infer.AudioProcessor(use_ml_model=True, model_path=trained_workdir, strict=True)
  raw_tc, sample_rate = audio.load(tmp_path / "take.wav")
  expected = reference.process_vocal(raw_tc, sample_rate=sample_rate)
  mixed, sr = audio.load(tmp_path / "o" / "take.wav")
  assert sr == SR and mixed.shape == expected.shape
  np.testing.assert_allclose(mixed, expected, atol=1e-6)  # 24-bit PCM


def test_preset_file_and_unknown_preset(tmp_path):
  """`--preset` takes a preset .json (e.g. an exported style); a bad one is one error line."""
  from mixnet import dsp

  take = _take(tmp_path / "take.wav")
  style = dataclasses.replace(dsp.get_preset("warm"), output_lufs=-20.0)
  dsp.save_preset(style, tmp_path / "my_style.json")
  out = _infer(take, "--out_dir", tmp_path / "out", "--preset", tmp_path / "my_style.json",
               cwd=tmp_path)
  assert out.returncode == 0, out.stderr
  mixed, _ = audio.load(tmp_path / "out" / "take.wav")
  raw, _ = audio.load(take)
  np.testing.assert_allclose(mixed, dsp.process(raw, SR, style), atol=1e-4)
  out = _infer(take, "--out_dir", tmp_path / "out2", "--preset", "loud", cwd=tmp_path)
  assert out.returncode == 2
  assert _lines(out.stderr) == [
      "error: unknown DSP preset 'loud'; valid presets: " + ", ".join(dsp.PRESETS)]
  assert not (tmp_path / "out2" / "take.wav").exists()

"""Evaluation report on a model trained on a simple style: the mix is the take at -10 dB."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mixnet import audio, checkpoints, metrics, report, train_lib
from mixnet.data import pairing, synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SR = 16000
GAIN = 10 ** (-10 / 20)


@pytest.fixture(scope="module")
def simple_style(tmp_path_factory, tiny_config):
  """(workdir, raw_dir, mixed_dir): 8 pairs whose mix is the take 10 dB down, and a model
  trained on them for 60 steps."""
  folder = tmp_path_factory.mktemp("simple_style")
  for sub in ("raw", "mixed"):
    os.makedirs(folder / sub)
  for i in range(8):
    raw = synthetic.synth_vocal(2.0, SR, seed=(7, i))
    audio.save(folder / "raw" / f"take{i}.wav", raw, SR)
    audio.save(folder / "mixed" / f"take{i}.wav", GAIN * raw, SR)
  config = tiny_config(num_steps=60, eval_every=60, checkpoint_every=60, log_every=20)
  config.data.raw_dir, config.data.mixed_dir = str(folder / "raw"), str(folder / "mixed")
  config.data.data_dir = ""
  config.data.val_fraction = 0.25
  config.opt.learning_rate = 3e-3
  config.opt.warmup_steps = 5
  workdir = str(folder / "workdir")
  train_lib.train_and_evaluate(config, workdir)
  return workdir, str(folder / "raw"), str(folder / "mixed")


def test_report_files_and_model_beats_identity(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  results = report.write_report(workdir, raw_dir, mixed_dir, str(tmp_path), preset="radio")
  # The training folders were given: only the held-out pairs are evaluated.
  assert results["split"] == "validation"
  names = [r["name"] for r in results["pairs"]]
  assert names and len(names) < 8
  avg = results["average"]
  assert avg["identity"]["mr_stft"] > 1.5 * avg["model"]["mr_stft"], avg
  assert avg["identity"]["loudness_error_lu"] == pytest.approx(10.0, abs=0.3)
  assert avg["model"]["loudness_error_lu"] < 5.0
  for system in report.SYSTEMS:
    assert set(avg[system]) == set(metrics.METRIC_NAMES)
    assert all(np.isfinite(v) for v in avg[system].values())
  for name in names:
    for system in ("model", "dsp"):
      y, sr = audio.load(tmp_path / "audio" / f"{name}.{system}.wav")
      assert sr == SR and y.shape[1] == 1
  assert os.path.getsize(tmp_path / f"spectrograms_{names[0]}.png") > 10_000
  assert os.path.getsize(tmp_path / "spectrum_difference.png") > 10_000
  with open(tmp_path / "metrics.json") as f:
    assert json.load(f)["average"] == avg
  text = (tmp_path / "report.md").read_text()
  assert "| mr_stft |" in text and "identity" in text and names[0] in text
  assert "used for training" not in text


def test_split_all_evaluates_every_pair(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  results = report.write_report(workdir, raw_dir, mixed_dir, str(tmp_path), split="all",
                              num_figures=0)
  assert len(results["pairs"]) == 8 and results["split"] == "all"
  assert not any(f.startswith("spectrograms_") for f in os.listdir(tmp_path))


def _pairs(*names):
  return [pairing.Pair(n, f"/r/{n}.wav", f"/m/{n}.wav") for n in names]


def test_held_out_pairs_are_the_names_saved_with_the_checkpoint():
  pairs = _pairs("a", "B", "c")
  got, split, on_training = report.select_pairs(pairs, "auto", {"validation_names": ["b"]},
                                                0.1, same_folders=True)
  assert [p.name for p in got] == ["B"] and split == "validation" and not on_training
  # Other folders: every pair, unless the held-out ones are asked for.
  got, split, on_training = report.select_pairs(pairs, "auto", {"validation_names": ["b"]},
                                                0.1, same_folders=False)
  assert len(got) == 3 and split == "all" and not on_training
  # Saved without names: the split rule of the prepared data (at least one of 3 held out).
  got, split, _ = report.select_pairs(pairs, "validation", {}, 0.1, same_folders=False)
  assert len(got) == 1 and split == "validation"


def test_no_held_out_pair_evaluates_all_loudly_or_says_what_to_do(caplog):
  pairs = _pairs("a", "b")
  got, split, on_training = report.select_pairs(pairs, "auto", {"validation_names": []}, 0.1,
                                                same_folders=True)
  assert len(got) == 2 and split == "all" and on_training
  assert "No pair was held out" in caplog.text
  with pytest.raises(pairing.PairingError, match="none of the 2 pairs.*--split=all"):
    report.select_pairs(pairs, "validation", {"validation_names": []}, 0.1, same_folders=True)
  with pytest.raises(pairing.PairingError, match="split: must be one of"):
    report.select_pairs(pairs, "held_out", {}, 0.1, same_folders=True)


def test_report_on_training_pairs_says_so():
  avg = {s: dict.fromkeys(metrics.METRIC_NAMES, 1.0) for s in report.SYSTEMS}
  results = dict(checkpoint="w/best/3", raw_dir="r", split="all", preset="default",
                 average=avg, pairs=[], skipped=[])
  assert "used for training" not in report.format_summary(results)
  assert "used for training" in report.format_summary(dict(results, on_training_data=True))


def test_cli_writes_the_report_and_errors_are_one_line(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  held_out = checkpoints.load_meta(checkpoints.resolve(workdir))["data"]["validation_names"]
  assert 0 < len(held_out) < 8
  trained_only = tmp_path / "trained_only"  # two pairs the model was trained on
  trained = [f"take{i}" for i in range(8) if f"take{i}" not in held_out][:2]
  for sub, folder in (("raw", raw_dir), ("mixed", mixed_dir)):
    os.makedirs(trained_only / sub)
    for name in trained:
      shutil.copy(os.path.join(folder, name + ".wav"), trained_only / sub)
  base = [sys.executable, "-m", "mixnet.report", f"--checkpoint={workdir}",
          f"--raw_dir={trained_only / 'raw'}", f"--mixed_dir={trained_only / 'mixed'}"]
  bad = subprocess.run(base + [f"--out_dir={tmp_path / 'bad'}", "--split=validation"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2, bad.stderr
  (line,) = bad.stderr.strip().splitlines()
  assert line.startswith("error: ") and "--split=all" in line
  good = subprocess.run(base + [f"--out_dir={tmp_path / 'good'}", "--split=all"], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert good.returncode == 0, good.stderr
  assert "| mr_stft |" in good.stdout and (tmp_path / "good" / "report.md").exists()
  assert not [x for x in good.stderr.splitlines() if x.startswith(("I", "W"))], good.stderr


"""Evaluation report on a model trained on a simple style: the mix is the take at -10 dB."""

import json
import os

import numpy as np
import pytest

from mixnet import audio, evaluate, metrics, train_lib
from mixnet.data import synthetic

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
  results = evaluate.evaluate(workdir, raw_dir, mixed_dir, str(tmp_path), preset="radio")
  # The training folders were given: only the held-out pairs are evaluated.
  assert results["split"] == "validation"
  names = [r["name"] for r in results["pairs"]]
  assert names and len(names) < 8
  avg = results["average"]
  assert avg["identity"]["mr_stft"] > 1.5 * avg["model"]["mr_stft"], avg
  assert avg["identity"]["loudness_error_lu"] == pytest.approx(10.0, abs=0.3)
  assert avg["model"]["loudness_error_lu"] < 5.0
  for system in evaluate.SYSTEMS:
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
  report = (tmp_path / "report.md").read_text()
  assert "| mr_stft |" in report and "identity" in report and names[0] in report


def test_split_all_evaluates_every_pair(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  results = evaluate.evaluate(workdir, raw_dir, mixed_dir, str(tmp_path), split="all",
                              num_figures=0)
  assert len(results["pairs"]) == 8 and results["split"] == "all"
  assert not any(f.startswith("spectrograms_") for f in os.listdir(tmp_path))

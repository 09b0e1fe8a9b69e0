"""`make demo`'s code path (`mixnet.demo.run`): train, evaluate, mix a new vocal, on small data."""

import os

from mixnet import audio, demo


def test_demo_runs_end_to_end(tiny_config, tmp_path):
  def config():
    c = tiny_config()  # the tiny preset at 16 kHz; the demo's own built-in data, smaller
    c.data.update(raw_dir="", mixed_dir="", data_dir="", demo_pairs=6, demo_seconds=2.0)
    return c

  results, summary = demo.run(str(tmp_path), num_steps=4, config=config())
  assert results["split"] == "validation" and results["pairs"]
  assert os.path.exists(tmp_path / "evaluation" / "report.md")
  assert summary["engine"] == "model"
  raw, sr = audio.load(tmp_path / "new_vocal_raw.wav")
  mixed, mixed_sr = audio.load(tmp_path / "new_vocal_mixed.wav")
  assert sr == mixed_sr == 16000 and mixed.shape == raw.shape
  # Running it again resumes the finished run instead of training from scratch.
  results_again, _ = demo.run(str(tmp_path), num_steps=4, config=config())
  assert results_again["average"] == results["average"]

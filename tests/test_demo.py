"""`python -m mixnet.demo` (`make demo`) end to end on small data: train, evaluate, mix, resume."""

import json
import os
import subprocess
import sys

from mixnet import audio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny preset shrunk as in conftest.tiny_test_config, with fewer, shorter demo pairs.
SMALL = ["--config.sample_rate=16000", "--config.data.segment_seconds=0.5",
         "--config.model.time_unet.base_width=4",
         "--config.model.time_unet.max_width=16", "--config.train.per_device_batch=2",
         "--config.train.eval_batches=1", "--config.train.num_audio_summaries=1",
         "--config.data.demo_pairs=6", "--config.data.demo_seconds=2.0"]


def _demo(out_dir):
  # From another folder: the default --config is found in the repository, not the cwd.
  return subprocess.run(
      [sys.executable, "-m", "mixnet.demo", f"--out_dir={out_dir}", "--num_steps=2", *SMALL],
      cwd=os.path.dirname(out_dir), capture_output=True, text=True, timeout=600,
      env=dict(os.environ, PYTHONPATH=REPO))


def test_demo_runs_end_to_end_and_resumes(tmp_path):
  out_dir = str(tmp_path / "demo_out")
  result = _demo(out_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  for text in ("[1-2/4] Demo data and training (2 steps", "[3/4]", "[4/4]", "| mr_stft |",
               "New vocal, mixed:", "TensorBoard:"):
    assert text in result.stdout, result.stdout
  # Library chatter (TF, TFDS, Orbax, absl INFO) goes to the log file, not the console.
  assert not [x for x in result.stderr.splitlines() if x.startswith(("I1", "W1", "E1"))], (
      result.stderr[-3000:])
  assert os.listdir(os.path.join(out_dir, "logs"))
  with open(os.path.join(out_dir, "evaluation", "metrics.json")) as f:
    results = json.load(f)
  assert results["split"] == "validation" and results["pairs"]
  assert not results["on_training_data"]
  raw, sr = audio.load(os.path.join(out_dir, "new_vocal_raw.wav"))
  mixed, mixed_sr = audio.load(os.path.join(out_dir, "new_vocal_mixed.wav"))
  assert sr == mixed_sr == 16000 and mixed.shape == raw.shape
  assert "(model," in result.stdout
  # Running it again resumes the finished run instead of training from scratch.
  again = _demo(out_dir)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "Resumed from step 2" in again.stdout, again.stdout
  with open(os.path.join(out_dir, "evaluation", "metrics.json")) as f:
    assert json.load(f)["average"] == results["average"]

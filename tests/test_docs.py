"""Every command in the docs' bash blocks runs, in order, on small data (no stale instructions).

All documents' commands run in order (README, quick start, training guide; a command repeated
word for word runs once), then the README's Python examples, in one folder holding
`my_vocals/raw|mixed` (short synthetic pairs at 16 kHz), some takes and the repository's
`experiments/`. Commands get flags appended that make them small and fast (later absl flags
win): 16 kHz, half-second crops, a tiny U-Net, two steps. `make ...` and `source ...` lines are
the set-up itself (CI runs `make test`; `test_demo` runs the demo's code); `tensorboard --logdir
D` runs with `--inspect`, which reads the event files and exits instead of serving.
"""

import os
import re
import shlex
import subprocess
import sys

import numpy as np
import soundfile as sf

from mixnet import audio
from mixnet.data import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "docs/QUICK_START.md", "docs/TRAINING_GUIDE.md"]
SR = 16000

# Every training run gets the shapes of conftest's tiny test config (16 kHz, 0.5 s, 2 per device,
# the tiny preset's U-Net and optimizer constants), so the README's `base.py` run and the guides'
# `base.py:tiny` run compile the same init, train and eval programs: the second one, and the
# other tests, load them from conftest's compilation cache instead of compiling a base-shaped
# model (about 2 minutes on 2 CPUs). What the commands themselves say (config file, folders,
# data preparation, resuming) is unchanged.
_FAST = {
    "mixnet.train": [
        "--config.sample_rate=16000", "--config.data.segment_seconds=0.5",
        "--config.data.val_fraction=0.34", "--config.train.num_steps=2",
        "--config.train.per_device_batch=2", "--config.train.eval_every=2",
        "--config.train.checkpoint_every=2", "--config.train.log_every=1",
        "--config.train.eval_batches=1", "--config.model.time_unet.base_width=4",
        "--config.model.time_unet.max_width=16",
        "--config.model.time_unet.bottleneck_dilations=(1, 2, 4, 8, 16)",
        "--config.model.spectral_unet.base_width=4",
        "--config.model.spectral_unet.max_width=16", "--config.opt.learning_rate=1e-3",
        "--config.opt.warmup_steps=50", "--config.opt.ema_decay=0.99"],
    "mixnet.data.prepare": ["--sample_rate=16000", "--val_fraction=0.34"],
}


def doc_commands(path):
  """Shell commands of the ```bash blocks of a Markdown file, in order."""
  with open(os.path.join(REPO, path)) as f:
    text = f.read()
  blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
  return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _workspace(tmp_path):
  for i in range(6):
    raw = synthetic.synth_vocal(2.0, SR, seed=(3, i))
    os.makedirs(tmp_path / "my_vocals" / "raw", exist_ok=True)
    os.makedirs(tmp_path / "my_vocals" / "mixed", exist_ok=True)
    audio.save(tmp_path / "my_vocals" / "raw" / f"take{i}_dry.wav", raw, SR)
    audio.save(tmp_path / "my_vocals" / "mixed" / f"Take{i}_mix.wav",
               np.tanh(3 * raw) / 3, SR)
  for name, seed in (("new_take", 99), ("take", 98), ("take2", 97)):
    audio.save(tmp_path / f"{name}.wav", synthetic.synth_vocal(1.5, SR, seed=seed), SR)
  os.symlink(os.path.join(REPO, "experiments"), tmp_path / "experiments")


def _argv(command):
  argv = shlex.split(command)
  if argv[0] == "python":
    argv[0] = sys.executable
    return argv + _FAST.get(argv[2], [])
  if argv[0] == "tensorboard":
    return [os.path.join(os.path.dirname(sys.executable), "tensorboard"), "--inspect"] + argv[1:]
  raise AssertionError(f"a doc command this test does not know how to run: {command}")


def test_doc_commands_run(tmp_path):
  commands = []
  for doc in DOCS:
    found = [c for c in doc_commands(doc) if not c.startswith(("make ", "source "))]
    assert found, f"{doc} has no commands"
    commands += [(doc, c) for c in found if c not in [seen for _, seen in commands]]
  _workspace(tmp_path)
  env = dict(os.environ, PYTHONPATH=REPO)
  for doc, command in commands:
    argv = _argv(command)
    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"{doc}: `{command}` failed:\n{out.stderr[-3000:]}"
    if "--inspect" in argv:
      assert "train/loss" in out.stdout, out.stdout[-2000:]
    if "mixnet.infer" in command:
      out_dir = re.search(r"--out_dir=(\S+)", command).group(1)
      info = sf.info(str(tmp_path / out_dir / "new_take.wav"))
      assert info.samplerate == SR and info.frames == int(1.5 * SR)
    if "mixnet.report" in command:
      out_dir = re.search(r"--out_dir=(\S+)", command).group(1)
      assert (tmp_path / out_dir / "report.md").exists()
  _run_python_examples(tmp_path, env)


def _python_blocks(path):
  with open(os.path.join(REPO, path)) as f:
    return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def _run_python_examples(tmp_path, env):
  """The README's Python examples (the original design's among them), after the commands made
  `runs/base` and `models/best_model.mixnet`."""
  for code in _python_blocks("README.md"):
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"README example failed:\n{code}\n{out.stderr[-3000:]}"
    assert out.stdout.startswith("model "), out.stdout  # each example ran the trained model
    assert "instead of a model" not in out.stderr, out.stderr
  for name in ("take_mixed.wav", "take2_mixed.wav"):
    assert sf.info(str(tmp_path / name)).samplerate == SR


def test_readme_shows_the_two_setup_commands():
  commands = doc_commands("README.md")
  assert commands[:2] == ["make demo", "make test"]

"""The Colab notebooks: stored clean, and run end to end on CPU with the tiny model and demo data.

The cell tagged "parameters" is replaced by the test's values (no install, demo data, 16 kHz,
a few steps of a very small model); everything else runs as a user would run it outside Colab.
"""

import ast
import os
import sys

import nbformat
import numpy as np
import pytest
import soundfile as sf
from nbclient import NotebookClient

from mixnet.data import tfds_builder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ("train.ipynb", "inference.ipynb")
SR = 16000


def _read(name):
  return nbformat.read(os.path.join(REPO, "colab", name), as_version=4)


def _parameters_cell(nb):
  cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
  return cells[0]


def _assigned_names(source):
  return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
          for t in node.targets}


def _run(name, params, cwd):
  """Executes notebook `name` with its parameters cell replaced; returns the executed notebook."""
  nb = _read(name)
  cell = _parameters_cell(nb)
  # The test must set every parameter the notebook has, and nothing it does not read.
  assert set(params) == _assigned_names(cell.source), name
  cell.source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
  # The kernelspec says "python", which jupyter_client replaces by sys.executable: the kernel
  # runs this venv's Python (checked by the extra last cell).
  nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable, end='')"))
  client = NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(cwd)}})
  client.execute()
  assert nb.cells.pop().outputs[0]["text"] == sys.executable
  return nb


def _text(nb):
  """Everything the executed cells printed or displayed as text/markdown."""
  parts = []
  for cell in nb.cells:
    for out in cell.get("outputs", []):
      parts.append(out.get("text", ""))
      data = out.get("data", {})
      parts += [data.get("text/plain", ""), data.get("text/markdown", "")]
  return "\n".join(parts)


def _outputs_of_type(nb, mime):
  return [out for cell in nb.cells for out in cell.get("outputs", [])
          if mime in out.get("data", {})]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_without_outputs_and_valid(name):
  nb = _read(name)
  nbformat.validate(nb)
  assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(c.outputs == [] and c.execution_count is None for c in code)
  assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(code)  # each step explained
  params = _parameters_cell(nb).source
  assert 'REPO_URL = "https://github.com/YOUR_NAME/mixnet"' in params
  assert "INSTALL = True" in params and "# @param" in params
  for cell in code:
    for line in cell.source.splitlines():
      if "google.colab" in line:  # only ever imported inside an `if colab.in_colab()` block
        assert line.startswith("  "), line


TRAIN_OVERRIDES = {
    "model.time_unet.base_width": 4,
    "model.time_unet.max_width": 16,
    "data.segment_seconds": 0.5,
    "data.demo_pairs": 6,
    "data.demo_seconds": 2.0,
    "data.val_fraction": 0.34,
    "train.per_device_batch": 2,
    "train.log_every": 1,
    "train.eval_every": 3,
    "train.checkpoint_every": 3,
    "train.eval_batches": 1,
    "train.num_audio_summaries": 1,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(executed train notebook, its WORKDIR)."""
  cwd = tmp_path_factory.mktemp("train_notebook")
  workdir = str(cwd / "run")
  nb = _run("train.ipynb", dict(
      REPO_URL="https://github.com/YOUR_NAME/mixnet", INSTALL=False, DATA_SOURCE="demo",
      RAW_DIR="", MIXED_DIR="", CONFIG="base.py", PRESET="tiny", NUM_STEPS=3, SAMPLE_RATE=SR,
      WORKDIR=workdir, SHOW_TENSORBOARD=False, CONFIG_OVERRIDES=TRAIN_OVERRIDES), cwd)
  return nb, workdir


def test_train_notebook(trained):
  nb, workdir = trained
  text = _text(nb)
  assert "Hardware: CPU" in text and "backend 'cpu'" in text
  held_out = sorted(n for n in (f"take_{i:03d}" for i in range(6))
                    if tfds_builder.split_of(n, TRAIN_OVERRIDES["data.val_fraction"])
                    == "validation")
  assert 0 < len(held_out) < 6
  assert "pairs: 6, kept: 6" in text and f"validation: {len(held_out)} pairs" in text
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "3"))
  assert os.path.isdir(os.path.join(workdir, "best", "3"))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  eval_dir = os.path.join(workdir, "eval")
  with open(os.path.join(eval_dir, "report.md")) as f:
    report = f.read()
  assert "| mr_stft |" in report and "(validation)" in report
  # The report and two figures are shown, and 3 players (raw, mix, model) per listened pair.
  assert "| metric | model | identity (raw) | DSP |" in text
  assert len(_outputs_of_type(nb, "image/png")) == 2
  players = _outputs_of_type(nb, "text/html")  # IPython's Audio renders as HTML
  assert len(players) == 3 * min(3, len(held_out))
  assert all("data:audio/wav;base64," in p["data"]["text/html"] for p in players)
  # Only mixnet's own progress lines, not every library's INFO chatter.
  assert "step 3/3  loss" in text and "CheckpointManager" not in text
  names = sorted(n.removesuffix(".model.wav") for n in os.listdir(os.path.join(eval_dir, "audio"))
                 if n.endswith(".model.wav"))
  assert names == held_out
  for n in names:
    data, sr = sf.read(os.path.join(eval_dir, "audio", f"{n}.model.wav"))
    assert sr == SR and len(data) > SR and np.all(np.isfinite(data)) and np.abs(data).max() > 0
  assert os.path.getsize(os.path.join(workdir, "mixnet_model.zip")) > 10_000


def test_inference_notebook_with_the_downloaded_model(trained, tmp_path):
  _, workdir = trained
  out_dir = str(tmp_path / "out")
  nb = _run("inference.ipynb", dict(
      REPO_URL="https://github.com/YOUR_NAME/mixnet", INSTALL=False,
      MODEL=os.path.join(workdir, "mixnet_model.zip"), INPUT_SOURCE="demo", INPUT_DIR="",
      OUT_DIR=out_dir, DEMO_SECONDS=1.5), tmp_path)
  text = _text(nb)
  unpacked = os.path.join(out_dir, "unpacked_model", "best", "3")
  assert f"Loaded {unpacked}: time_unet trained for 3 steps, 16000 Hz" in text
  assert "| demo_take | 1.5 |" in text
  data, sr = sf.read(os.path.join(out_dir, "mixed", "demo_take.wav"), always_2d=True)
  assert sr == SR and data.shape == (int(1.5 * SR), 1)
  assert np.all(np.isfinite(data)) and 0 < np.abs(data).max() <= 10 ** (-1 / 20) + 1e-4
  assert len(_outputs_of_type(nb, "text/html")) == 2  # before / after players


"""Helpers for the notebooks in colab/: runtime detection, installation, uploads, model zips.

The install cell imports this module from the fresh clone before the right jax is installed, so
nothing heavy (jax, orbax, TensorFlow) is imported at module level: functions that need them
import them when called.
"""

import collections
import glob
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from mixnet import fileio  # standard library only
from mixnet.data.pairing import AUDIO_EXTENSIONS  # standard library only, like this module

# The pin in setup.cfg; the GPU/TPU builds of jax must match it.
JAX_VERSION = "0.10.2"
JAX_EXTRAS = {"gpu": "cuda12", "tpu": "tpu"}

# PCI vendor of Google's TPUs and their device ids (v2/v3, v4, v5p, v5e, v6e, TPU7x), as in
# jax/_src/hardware_utils.py.
_GOOGLE_PCI_VENDOR = "0x1ae0"
_TPU_PCI_DEVICES = ("0x0027", "0x0056", "0x005e", "0x0062", "0x0063", "0x006f", "0x0076")
_NVIDIA_DEVICES = ("dev/nvidia0", "dev/nvidiactl")

# Modules whose import in a running kernel goes stale when pip replaces them: module -> the
# distributions that may provide it.
_RELOAD_SENSITIVE = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "flax": ("flax",),
    "optax": ("optax",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "google.protobuf": ("protobuf",),
}

MODEL_ZIP = "mixnet_model.zip"


def in_colab():
  """True inside a Google Colab kernel (which imports google.colab at start)."""
  return "google.colab" in sys.modules


def detect_accelerator(root="/"):
  """What the machine has, without importing jax: "tpu", "gpu" or "cpu".

  Args:
    root: file system root to look in (tests pass a fake tree).
  """
  for vendor_path in glob.glob(os.path.join(root, "sys/bus/pci/devices/*/vendor")):
    device_path = os.path.join(os.path.dirname(vendor_path), "device")
    if _read(vendor_path) == _GOOGLE_PCI_VENDOR and _read(device_path) in _TPU_PCI_DEVICES:
      return "tpu"
  if any(os.path.exists(os.path.join(root, d)) for d in _NVIDIA_DEVICES):
    return "gpu"
  return "cpu"


def _read(path):
  try:
    with open(path) as f:
      return f.read().strip()
  except OSError:
    return ""


def install_command(repo_dir, accelerator):
  """The pip command (argv) installing mixnet from `repo_dir` plus jax for `accelerator`.

  One pip call resolves mixnet's pins and the accelerator build of jax together.
  """
  command = [sys.executable, "-m", "pip", "install", "--quiet", "-e", repo_dir]
  if accelerator in JAX_EXTRAS:
    command.append(f"jax[{JAX_EXTRAS[accelerator]}]=={JAX_VERSION}")
  elif accelerator != "cpu":
    raise ValueError(f"accelerator must be tpu, gpu or cpu, got {accelerator!r}")
  return command


def run(command):
  """Runs `command` (argv), printing it; on failure raises with the end of its output.

  The output is captured because a notebook shows only what Python prints, not what a child
  process writes to the kernel's terminal.
  """
  print("$", " ".join(command))
  done = subprocess.run(command, capture_output=True, text=True)
  if done.returncode:
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
    raise RuntimeError(f"{' '.join(command)} failed (exit code {done.returncode}):\n{tail}")


def stale_modules():
  """Modules imported in this process whose installed version has since changed.

  After pip replaces one of them the running kernel mixes old and new code; it must restart.
  """
  stale = []
  for module_name, dists in _RELOAD_SENSITIVE.items():
    module = sys.modules.get(module_name)
    loaded = getattr(module, "__version__", None)
    if loaded is None:
      continue
    for dist in dists:
      try:
        installed = importlib.metadata.version(dist)
      except importlib.metadata.PackageNotFoundError:
        continue
      if installed != loaded:
        stale.append(f"{module_name} {loaded} (installed now: {installed})")
      break
  return stale


def runtime_report(accelerator):
  """Text naming the detected hardware and the devices JAX uses, with a warning on mismatch."""
  import jax

  devices = jax.devices()
  kinds = collections.Counter(d.device_kind for d in devices)
  lines = [
      f"Hardware: {accelerator.upper()}",
      f"JAX {jax.__version__}, backend '{jax.default_backend()}': {len(devices)} device(s), "
      + ", ".join(f"{n} x {kind}" for kind, n in kinds.items()),
  ]
  if accelerator != "cpu" and jax.default_backend() == "cpu":
    lines.append(
        f"WARNING: this machine has a {accelerator.upper()} but JAX only sees the CPU, so "
        "training will be slow. Run the install cell (INSTALL = True), restart the session "
        "and run the notebook again.")
  return "\n".join(lines)


def show_mixnet_logs():
  """Shows mixnet's absl logs from INFO up (training steps, evaluations), others' from ERROR up.

  absl logs at WARNING until flags are parsed, which notebooks never do. Opening it to INFO for
  every library would bury the training lines under Orbax's and TensorFlow Datasets' chatter.
  """
  from absl import logging

  logging.set_verbosity(logging.INFO)
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _MixnetLogFilter) for f in logger.filters):
    logger.addFilter(_MixnetLogFilter(os.path.dirname(os.path.abspath(__file__))))


class _MixnetLogFilter:
  """Passes records from files under `package_dir`, and errors from anywhere."""

  def __init__(self, package_dir):
    self.prefix = package_dir + os.sep

  def filter(self, record):
    return (record.levelno >= 40
            or os.path.abspath(record.pathname).startswith(self.prefix))


def apply_overrides(config, overrides):
  """Sets `config` fields from {"group.field": value}; unknown fields are an error.

  (`ConfigDict.update_from_flattened_dict` silently ignores a misspelt name.)

  Raises:
    KeyError: a name is not a field of `config`; the message lists the group's fields.
  """
  for dotted, value in overrides.items():
    *parents, field = dotted.split(".")
    node = config
    for i, name in enumerate(parents + [field]):
      if name not in node:
        where = ".".join(parents[:i]) or "config"
        raise KeyError(f"config override {dotted!r}: {where} has no field {name!r} "
                       f"(fields: {', '.join(sorted(node.keys()))})")
      if i < len(parents):
        node = node[name]
    setattr(node, field, value)
  return config


def save_uploads(uploaded, folder):
  """Writes uploaded files into `folder`; audio inside .zip files is extracted (flattened).

  Args:
    uploaded: {file name: bytes}, as `google.colab.files.upload()` returns.
    folder: created if missing.

  Returns:
    (written, skipped): paths of the audio files written, and names that are not audio.

  Raises:
    ValueError: two uploaded files (or zip members) have the same name, or a zip is corrupt.
  """
  os.makedirs(folder, exist_ok=True)
  files = {}
  skipped = []

  def add(name, data):
    base = os.path.basename(name)
    if not base.lower().endswith(AUDIO_EXTENSIONS) or base.startswith("."):
      skipped.append(name)
    elif base in files:
      raise ValueError(f"two uploaded files are named {base!r}; rename one")
    else:
      files[base] = data

  for name, data in uploaded.items():
    if name.lower().endswith(".zip"):
      try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
          for member in z.infolist():
            if not member.is_dir() and "__MACOSX" not in member.filename:
              add(member.filename, z.read(member))
      except zipfile.BadZipFile as e:
        raise ValueError(f"{name}: not a readable zip file ({e})") from e
    else:
      add(name, data)
  written = []
  for base, data in sorted(files.items()):
    path = os.path.join(folder, base)
    fileio.write_bytes(path, data)
    written.append(path)
  return written, skipped


def archive_model(checkpoint, zip_path):
  """Zips the checkpoint inference would load from `checkpoint` (best, else latest step).

  The zip holds `<best|checkpoints>/<step>/...`: unzipped anywhere, that folder is a valid
  `checkpoint` argument for `mixnet.infer` and `mixnet.evaluate` (see `unpack_model`).

  Returns:
    `zip_path`.
  """
  from mixnet import checkpoints

  located = checkpoints.resolve(checkpoint)
  return zip_folder(os.path.join(located.directory, str(located.step)), zip_path,
                    os.path.join(os.path.basename(located.directory), str(located.step)))


def zip_folder(folder, zip_path, prefix=""):
  """Writes every file under `folder` into `zip_path` (atomically), under `prefix/`.

  Returns:
    `zip_path`.
  """
  with fileio.atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for dirpath, dirnames, filenames in os.walk(folder):
      dirnames.sort()
      for name in sorted(filenames):
        path = os.path.join(dirpath, name)
        if os.path.abspath(path) not in (os.path.abspath(tmp), os.path.abspath(zip_path)):
          z.write(path, os.path.join(prefix, os.path.relpath(path, folder)))
  return zip_path


def unpack_model(zip_path, folder=None):
  """Extracts a zip made by `archive_model` and returns the folder to load the model from.

  Args:
    zip_path: the zip.
    folder: where to extract (created); default: a new temporary folder.

  Raises:
    mixnet.checkpoints.CheckpointError: the zip holds no checkpoint.
    ValueError: the file is not a zip.
  """
  from mixnet import checkpoints

  created = folder is None
  folder = folder or tempfile.mkdtemp(prefix="mixnet_model_")
  try:
    try:
      with zipfile.ZipFile(zip_path) as z:
        z.extractall(folder)  # extractall drops absolute and ".." parts of member names
    except zipfile.BadZipFile as e:
      raise ValueError(f"{zip_path}: not a readable zip file ({e})") from e
    try:
      checkpoints.resolve(folder)
    except checkpoints.CheckpointError as e:
      raise checkpoints.CheckpointError(
          f"{zip_path}: holds no mixnet checkpoint (make it with the training notebook's "
          f"download step or mixnet.colab.archive_model): {e}") from e
  except BaseException:
    if created:
      shutil.rmtree(folder, ignore_errors=True)
    raise
  return folder

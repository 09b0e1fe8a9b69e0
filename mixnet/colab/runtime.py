"""Notebook runtime: which accelerator, installing the matching jax, stale imports, logs.

The install cell imports this module from the fresh clone before the right jax is installed, so
nothing heavy (jax, orbax, TensorFlow) is imported at module level: functions that need them
import them when called.
"""

import collections
import glob
import importlib.metadata
import os
import subprocess
import sys

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
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    logger.addFilter(_MixnetLogFilter(package_dir))


class _MixnetLogFilter:
  """Passes records from files under `package_dir`, and errors from anywhere."""

  def __init__(self, package_dir):
    self.prefix = package_dir + os.sep

  def filter(self, record):
    return (record.levelno >= 40
            or os.path.abspath(record.pathname).startswith(self.prefix))

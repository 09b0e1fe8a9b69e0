"""Helpers the benchmark scripts share."""

import importlib.util
import os

EXPERIMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments")


def load_config(spec):
  """get_config(preset) of `experiments/FILE.py[:preset]`, e.g. "base.py:tiny".

  `spec` is a file name inside experiments/ or a path; the text after ':' is the preset.
  """
  file, _, preset = spec.partition(":")
  path = file if os.path.exists(file) else os.path.join(EXPERIMENTS, file)
  module_spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset) if preset else module.get_config()

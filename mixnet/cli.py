"""The convention every `python -m mixnet.X` entry point follows.

An entry module defines its absl flags at module level (it is the only module that does, and
nothing imports it), keeps `main(argv)` short, and ends with `cli.run(main)`. `run` gives every
CLI the same behaviour:

- a `MixnetError` (bad file, folder, setting or checkpoint) prints `error: <file>: <problem>` on
  stderr and exits with status 2; with `--verbosity=1` it keeps its traceback;
- `app.UsageError` prints the usage problem and exits 1 (absl's own convention);
- TensorFlow's C++ notices are silenced before TensorFlow is imported; `log_to_file` moves the
  library's log lines (Orbax, TFDS, absl INFO) into a file so the console shows only what a person
  needs.
"""

import os
import sys

# TensorFlow reads this once, at import: entry modules import `mixnet.cli` before anything that
# imports TensorFlow. 2 keeps errors, drops the INFO/WARNING start-up notices (oneDNN, cuda).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow runs only tf.data here, none of the math oneDNN speeds up. On CPUs where it turns
# oneDNN on by default (AVX-512 ones, e.g. an AMD EPYC) it prints a notice through absl that
# TF_CPP_MIN_LOG_LEVEL does not silence; with oneDNN off there is none.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, logging  # noqa: E402

from mixnet import errors  # noqa: E402


def log_to_file(directory, program):
  """Sends absl log lines to `directory/<program>.log`; only warnings also reach the console.

  Returns the path of the log file.
  """
  os.makedirs(directory, exist_ok=True)
  handler = logging.get_absl_handler()
  handler.use_absl_log_file(program, directory)
  logging.set_stderrthreshold("warning")
  return os.path.join(directory, f"{program}.INFO")


def fail(message):
  """Prints one `error:` line and exits with status 2 (a problem the user can fix)."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def run(main):
  """Runs `main(argv)` under absl with mixnet's error convention (see module docstring)."""

  def wrapped(argv):
    try:
      return main(argv)
    except errors.MixnetError as e:
      if logging.get_verbosity() >= logging.DEBUG:
        raise
      fail(e)

  app.run(wrapped)

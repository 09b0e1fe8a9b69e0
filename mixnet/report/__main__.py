r"""Writes an evaluation report: the model vs the raw input vs the DSP chain, on your pairs.

  python -m mixnet.report --checkpoint=WORKDIR --raw_dir=R --mixed_dir=M --out_dir=O \
      [--preset=default] [--split=auto|all|validation]

Writes `O/report.md`, `O/metrics.json`, figures and the processed audio (see
`mixnet.report`), and prints the report. `--split=auto` evaluates the pairs training held out
when R/M are the training folders (every pair, with a warning, if none was held out). Library log
lines go to `O/logs/`. Nothing imports this module (it defines the absl flags).
"""

import os

from absl import app, flags

from mixnet import cli, report

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Training workdir or checkpoint folder.")
_RAW_DIR = flags.DEFINE_string("raw_dir", None, "Folder of raw takes.")
_MIXED_DIR = flags.DEFINE_string("mixed_dir", None, "Folder of the user's mixes of them.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where the report, metrics, figures and audio go.")
_PRESET = flags.DEFINE_string("preset", "default", "DSP preset of the DSP baseline.")
_SPLIT = flags.DEFINE_enum(
    "split", "auto", list(report.SPLITS), "Which pairs: held-out ones (validation), all, or "
    "auto (held-out if these are the training folders, else all).")
flags.mark_flags_as_required(["checkpoint", "raw_dir", "mixed_dir", "out_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  out_dir = _OUT_DIR.value
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    cli.fail(f"{out_dir}: --out_dir is a file, not a folder")
  cli.log_to_file(os.path.join(out_dir, "logs"), "report")
  results = report.write_report(_CHECKPOINT.value, _RAW_DIR.value, _MIXED_DIR.value, out_dir,
                                preset=_PRESET.value, split=_SPLIT.value)
  print(report.format_markdown(results))
  print(f"Wrote {os.path.join(out_dir, 'report.md')}, metrics.json, figures and audio/")


if __name__ == "__main__":
  cli.run(main)

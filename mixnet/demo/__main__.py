r"""The end-to-end demo behind `make demo`: demo data, training, evaluation, a new mix.

  python -m mixnet.demo --out_dir=demo_out [--num_steps=2000] \
      [--config=experiments/base.py:tiny] [--config.a.b=v ...]

Runs `mixnet.demo.run` (steps in its docstring) and prints where the audio, the report and the
TensorBoard logs are. `--config` defaults to the `tiny` preset of the repository's
experiments/base.py; its data folders must stay empty (the demo brings its own data). Library
log lines go to `OUT_DIR/logs/`. Nothing imports this module (it defines the absl flags).
"""

import os

from absl import app, flags
from ml_collections import config_flags

from mixnet import cli, demo, report

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_OUT_DIR = flags.DEFINE_string("out_dir", "demo_out", "Where everything is written.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 2000, "Training steps.")
config_flags.DEFINE_config_file(
    "config", os.path.join(_REPO, "experiments", "base.py:tiny"),
    "Experiment config file and preset (default: the repository's experiments/base.py:tiny).",
    lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = flags.FLAGS.config
  if config.data.raw_dir or config.data.mixed_dir:
    raise app.UsageError("the demo uses its own data: leave config.data.raw_dir/mixed_dir empty "
                         "(train on your pairs with python -m mixnet.train)")
  out_dir = _OUT_DIR.value
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    cli.fail(f"{out_dir}: --out_dir is a file, not a folder")
  log_file = cli.log_to_file(os.path.join(out_dir, "logs"), "demo")
  results, summary = demo.run(out_dir, _NUM_STEPS.value, config, show_progress=True)
  avg = results["average"]
  print()
  print(report.format_summary(results))
  print(f"New vocal, raw:   {summary['input']}")
  print(f"New vocal, mixed: {summary['output']}  ({summary['engine']}, "
        f"{summary['realtime_factor']:.0f}x real time)")
  print(f"Evaluation:       {os.path.join(out_dir, 'evaluation', 'report.md')} "
        f"(MR-STFT model {avg['model']['mr_stft']:.3f} vs raw {avg['identity']['mr_stft']:.3f})")
  print(f"TensorBoard:      tensorboard --logdir {os.path.join(out_dir, 'workdir')}")
  print(f"Log:              {log_file}")


if __name__ == "__main__":
  cli.run(main)

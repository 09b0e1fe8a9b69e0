r"""The whole main job on the built-in demo data, end to end (`make demo`).

  python -m mixnet.demo --out_dir=demo_out [--num_steps=2000]

1. writes synthetic raw vocals and their mixes (the DSP chain's "warm" preset plays the user)
   and prepares TFDS shards from them;
2. trains the `tiny` config (experiments/base.py:tiny) for `num_steps` steps, resuming if
   `out_dir` already holds a run (so running it twice continues instead of starting over);
3. evaluates the held-out demo pairs: model vs the raw input vs the DSP chain;
4. mixes a new demo vocal the model has never seen;
and prints where the audio, the report and the TensorBoard logs are. About 4 minutes on 2 CPU
cores.
"""

import os

from absl import app, flags

from experiments import base
from mixnet import audio, evaluate, infer, train_lib
from mixnet.data import synthetic

_OUT_DIR = flags.DEFINE_string("out_dir", "demo_out", "Where everything is written.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 2000, "Training steps of the tiny model.")


def run(out_dir, num_steps, config=None):
  """Runs the demo with `config` (default: the tiny preset); returns (evaluation results,
  inference summary)."""
  workdir = os.path.join(out_dir, "workdir")
  config = config or base.get_config("tiny")
  config.train.num_steps = num_steps
  config.train.eval_every = max(1, num_steps // 4)
  config.train.checkpoint_every = max(1, num_steps // 8)
  config.train.log_every = max(1, num_steps // 40)
  print(f"[1-2/4] Demo data and training ({num_steps} steps of the tiny model) in {workdir}")
  train_lib.train_and_evaluate(config, workdir)

  print("[3/4] Evaluating on the held-out demo pairs")
  processor = infer.AudioProcessor(workdir, strict=True)
  pairs = os.path.join(workdir, "demo_pairs")
  eval_dir = os.path.join(out_dir, "evaluation")
  results = evaluate.evaluate(workdir, os.path.join(pairs, "raw"), os.path.join(pairs, "mixed"),
                              eval_dir, processor=processor)

  print("[4/4] Mixing a new demo vocal")
  sr = config.data.sample_rate
  raw_path = os.path.join(out_dir, "new_vocal_raw.wav")
  audio.save(raw_path, synthetic.synth_vocal(8.0, sr, seed=2024), sr)
  summary = infer.process_file(raw_path, os.path.join(out_dir, "new_vocal_mixed.wav"),
                               processor=processor)
  return results, summary


def main(argv):
  del argv
  out_dir = _OUT_DIR.value
  results, summary = run(out_dir, _NUM_STEPS.value)
  avg = results["average"]
  print()
  print(evaluate.format_report(results).split("\n\n| pair")[0])
  print()
  print(f"New vocal, raw:   {summary['input']}")
  print(f"New vocal, mixed: {summary['output']}  ({summary['engine']}, "
        f"{summary['realtime_factor']:.0f}x real time)")
  print(f"Evaluation:       {os.path.join(out_dir, 'evaluation', 'report.md')} "
        f"(MR-STFT model {avg['model']['mr_stft']:.3f} vs raw {avg['identity']['mr_stft']:.3f})")
  print(f"TensorBoard:      tensorboard --logdir {os.path.join(out_dir, 'workdir')}")


if __name__ == "__main__":
  app.run(main)

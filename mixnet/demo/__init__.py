"""The whole main job on the built-in demo data, end to end: the library behind `make demo`.

`run` (and `python -m mixnet.demo`, its command line in `__main__.py`):
1. writes synthetic raw vocals and their mixes (the DSP chain's "warm" preset plays the user)
   and prepares TFDS shards from them;
2. trains the given config for `num_steps` steps, resuming if `out_dir` already holds a run (so
   running it twice continues instead of starting over);
3. evaluates the held-out demo pairs: model vs the raw input vs the DSP chain (`mixnet.report`);
4. mixes a new demo vocal the model has never seen.
"""

import os

from mixnet import audio, infer, report, train_lib
from mixnet.data import synthetic


def run(out_dir, num_steps, config, show_progress=False):
  """Runs the demo with `config` (an experiments/ config whose data folders are empty, so the
  built-in demo pairs are used) in `out_dir`.

  Returns:
    (report results, inference summary): see `report.write_report` and `infer.process_file`.
  """
  workdir = os.path.join(out_dir, "workdir")
  config.train.num_steps = num_steps
  config.train.eval_every = max(1, num_steps // 4)
  config.train.checkpoint_every = max(1, num_steps // 8)
  config.train.log_every = max(1, num_steps // 40)
  print(f"[1-2/4] Demo data and training ({num_steps} steps of {config.model.name}) in {workdir}")
  train_lib.train_and_evaluate(config, workdir, show_progress=show_progress)

  print("[3/4] Evaluating on the held-out demo pairs")
  processor = infer.AudioProcessor(use_ml_model=True, model_path=workdir, strict=True)
  pairs = os.path.join(workdir, "demo_pairs")
  results = report.write_report(workdir, os.path.join(pairs, "raw"),
                                os.path.join(pairs, "mixed"), os.path.join(out_dir, "evaluation"),
                                processor=processor)

  print("[4/4] Mixing a new demo vocal")
  sr = config.data.sample_rate
  raw_path = os.path.join(out_dir, "new_vocal_raw.wav")
  audio.save(raw_path, synthetic.synth_vocal(8.0, sr, seed=2024), sr)
  summary = infer.process_file(raw_path, os.path.join(out_dir, "new_vocal_mixed.wav"),
                               processor=processor, overwrite=True)
  return results, summary

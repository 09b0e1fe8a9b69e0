"""Throughput of the tf.data training pipeline for the base config (and optionally others).

Run: .venv/bin/python benchmarks/input_pipeline.py [--presets=base,tiny] [--batches=200]
     [--work_dir=/tmp/mixnet_bench_input] [--devices=1]

Data: the built-in demo pairs of each preset (written and prepared once into --work_dir, then
reused). The host batch is per_device_batch * --devices, as training builds it. After
`--warmup` batches (the shuffle buffer filling), `--batches` batches are timed; the table shows
batches/s and seconds of audio delivered per wall-clock second (raw side only; the mix comes
along). Target: at least 5x the audio per second the base train step consumes.
Eval windows are timed too (one full pass over the validation files).
"""

import argparse
import os
import time

from experiments import base
from mixnet import input_pipeline
from mixnet.data import prepare


def _time(iterator, count):
  start = time.perf_counter()
  done = 0
  for _ in range(count):
    if next(iterator, None) is None:
      break
    done += 1
  return done, time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--presets", default="base")
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--warmup", type=int, default=20)
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--work_dir", default="/tmp/mixnet_bench_input")
  args = parser.parse_args()
  rows = []
  for preset in args.presets.split(","):
    config = base.get_config(preset)
    data_dir = os.path.join(args.work_dir, "data")
    prepare.prepare_from_config(config.data, data_dir, os.path.join(args.work_dir, "demo"),
                                show_progress=False)
    batch = config.train.per_device_batch * args.devices
    seg_s = input_pipeline.segment_length(config.data) / config.data.sample_rate
    it = input_pipeline.create_train_dataset(config.data, data_dir, batch, seed=0)
    it = it.as_numpy_iterator()
    _time(it, args.warmup)
    done, seconds = _time(it, args.batches)
    rows.append((preset, "train", batch, seg_s, done / seconds, done * batch * seg_s / seconds))
    ev = input_pipeline.create_eval_dataset(config.data, data_dir, batch).as_numpy_iterator()
    done, seconds = _time(ev, 10**9)
    rows.append((preset, "eval", batch, seg_s, done / seconds, done * batch * seg_s / seconds))
  print("CPU shared with other processes: figures are lower bounds.")
  print(f"{'preset':<8} {'pipeline':<9} {'batch':>5} {'segment s':>9} {'batches/s':>10} "
        f"{'audio s/s':>10}")
  for preset, kind, batch, seg_s, bps, aps in rows:
    print(f"{preset:<8} {kind:<9} {batch:>5} {seg_s:>9.2f} {bps:>10.1f} {aps:>10.0f}")


if __name__ == "__main__":
  main()

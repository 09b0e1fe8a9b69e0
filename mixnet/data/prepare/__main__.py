r"""Prepares training data: pairs, aligns and shards a raw folder and a mixed folder.

  python -m mixnet.data.prepare --raw_dir=R --mixed_dir=M --data_dir=D [--sample_rate=44100] \
      [--channels=1] [--max_shift_ms=100] [--val_fraction=0.1] [--keep_low_confidence] \
      [--max_tail_s=5] [--keep_length_mismatch]

Prints one row per pair (name, duration, sample rates, offset, polarity, confidence, kept, split
or why it was left out) and the totals; the same summary is saved as JSON next to the shards.
Without --raw_dir/--mixed_dir the built-in synthetic demo pairs are written to `D/demo` and
prepared. Library log lines go to `D/logs/`; the console shows progress bars, warnings and the
table. The logic lives in `mixnet.data.prepare` (`__init__.py`); nothing imports this module
(it defines the absl flags).
"""

import os

from absl import app, flags

from mixnet import cli  # Before mixnet.data (TensorFlow): quiets TensorFlow's start-up notices.
from mixnet.data import analysis, pairing, prepare

_RAW_DIR = flags.DEFINE_string("raw_dir", "", "Folder of raw takes; empty: built-in demo data.")
_MIXED_DIR = flags.DEFINE_string("mixed_dir", "", "Folder of mixes; empty: built-in demo data.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the TFDS shards and the summary go.",
                                required=True)
_SAMPLE_RATE = flags.DEFINE_integer("sample_rate", 44100, "Sample rate (Hz) of the prepared data.")
_CHANNELS = flags.DEFINE_integer("channels", 1, "1 (mono) or 2 (stereo).")
_MAX_SHIFT_MS = flags.DEFINE_float("max_shift_ms", 100.0, "Largest take/mix offset searched (ms).")
_VAL_FRACTION = flags.DEFINE_float(
    "val_fraction", 0.1, "Share of pairs for validation (by name hash; with 3 or more pairs at "
    "least one is held out).")
_MIN_CONFIDENCE = flags.DEFINE_float("min_confidence", 0.3,
                                     "Leave out pairs aligned with less confidence.")
_KEEP_LOW_CONFIDENCE = flags.DEFINE_bool("keep_low_confidence", False,
                                         "Keep pairs with low alignment confidence.")
_MAX_TAIL_S = flags.DEFINE_float(
    "max_tail_s", analysis.MAX_TAIL_S, "How much longer (s) a mix may run than its raw take "
    "(reverb tail); longer ones, and mixes that cut off part of the take, are left out.")
_KEEP_LENGTH_MISMATCH = flags.DEFINE_bool(
    "keep_length_mismatch", False, "Keep pairs whose lengths differ beyond --max_tail_s or "
    "whose mix ends before the take does.")
_DEMO_PAIRS = flags.DEFINE_integer("demo_pairs", 24, "Demo data only: how many pairs.")
_DEMO_SECONDS = flags.DEFINE_float("demo_seconds", 6.0, "Demo data only: longest take (s).")
_DEMO_PRESET = flags.DEFINE_string("demo_preset", "warm",
                                   "Demo data only: the DSP preset that mixes the takes.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if bool(_RAW_DIR.value) != bool(_MIXED_DIR.value):
    raise app.UsageError("give both --raw_dir and --mixed_dir, or neither for the demo data")
  data_dir = _DATA_DIR.value
  prepare.check_data_dir(data_dir)
  raw_dir, mixed_dir = _RAW_DIR.value, _MIXED_DIR.value
  if raw_dir:
    pairing.find_pairs(raw_dir, mixed_dir)  # Bad folders: one line, before anything is written.
  cli.log_to_file(os.path.join(data_dir, "logs"), "prepare")
  if not raw_dir:
    raw_dir, mixed_dir = prepare.write_demo_pairs(
        os.path.join(data_dir, "demo"), num_pairs=_DEMO_PAIRS.value,
        sample_rate=_SAMPLE_RATE.value, seconds=_DEMO_SECONDS.value, preset=_DEMO_PRESET.value)
    print(f"demo data: {raw_dir}, {mixed_dir}")
  summary = prepare.prepare_dataset(
      raw_dir, mixed_dir, data_dir, sample_rate=_SAMPLE_RATE.value, channels=_CHANNELS.value,
      max_shift_ms=_MAX_SHIFT_MS.value, val_fraction=_VAL_FRACTION.value,
      min_confidence=_MIN_CONFIDENCE.value, keep_low_confidence=_KEEP_LOW_CONFIDENCE.value,
      max_tail_s=_MAX_TAIL_S.value, keep_length_mismatch=_KEEP_LENGTH_MISMATCH.value)
  print(prepare.format_report(summary))


if __name__ == "__main__":
  cli.run(main)

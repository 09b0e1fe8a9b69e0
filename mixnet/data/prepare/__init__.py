"""Builds the training data: pairs, aligns and shards a raw folder and a mixed folder.

The library behind `python -m mixnet.data.prepare` (its command line is `__main__.py`) and
behind training's data step (`prepare.training.prepare_data`).
`prepare_dataset` writes the TFDS shards under `data_dir/paired_vocals/<config>/<version>` and a
summary with one row per pair (name, duration, sample rates, offset, polarity, confidence, kept
or why not), saved as JSON next to the shards (`SUMMARY_FILE`); `data_dir/prepared.json` points
at the dataset built last, which is what the input pipeline reads. Preparing again with the same
sources and settings reuses the shards. A build that was killed leaves TFDS's `incomplete.*`
folder (and perhaps a dataset without a summary); the next `prepare_dataset` into the same
`data_dir` removes them before it builds.
"""

import glob
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from mixnet import errors, fileio
from mixnet.data import analysis, pairing, tfds_builder

SUMMARY_FILE = "prepare_summary.json"
POINTER_FILE = "prepared.json"
DEMO_SETTINGS_FILE = "demo_settings.json"


# TFDS builds into `<config folder>/incomplete.XXXXXX_<version>` and renames it when done.
_INCOMPLETE_GLOB = "incomplete.??????_*"


class PrepareError(errors.MixnetError):
  """No prepared dataset where one is expected, it does not match the config, or `data_dir` is
  not a folder."""


def check_data_dir(data_dir):
  """Raises PrepareError if `data_dir` is not given or exists as something other than a folder."""
  if not data_dir:
    raise PrepareError("data_dir: no data folder given")
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise PrepareError(f"{data_dir}: data_dir is a file, not a folder")


def remove_incomplete(data_dir):
  """Removes what killed builds left under `data_dir`: TFDS `incomplete.*` folders of our dataset,
  and dataset folders that are left empty. Returns the removed paths."""
  root = os.path.join(data_dir, tfds_builder.PairedVocals.name)
  removed = []
  for config_dir in sorted(glob.glob(os.path.join(root, "*", ""))):
    for leftover in sorted(glob.glob(os.path.join(config_dir, _INCOMPLETE_GLOB))):
      if os.path.isdir(leftover):
        shutil.rmtree(leftover)
        removed.append(leftover)
    if not os.listdir(config_dir):
      os.rmdir(config_dir)
  if removed:
    logging.info("Removed %d folder(s) an interrupted prepare left: %s", len(removed),
                 ", ".join(removed))
  return removed


def prepare_dataset(raw_dir, mixed_dir, data_dir, *, sample_rate=44100, channels=1,
                    max_shift_ms=100.0, val_fraction=0.1, min_confidence=0.3,
                    keep_low_confidence=False, max_tail_s=analysis.MAX_TAIL_S,
                    keep_length_mismatch=False, show_progress=True):
  """Pairs, aligns and writes TFDS shards under `data_dir`; reuses them if already built.

  Args:
    raw_dir: folder of raw (dry) takes.
    mixed_dir: folder of their mixes, matched by file name (see `pairing`).
    data_dir: TFDS data dir; the dataset goes to `data_dir/paired_vocals/<config>/<version>`.
    sample_rate: rate (Hz) every file is resampled to.
    channels: 1 or 2.
    max_shift_ms: largest offset between a take and its mix that alignment searches.
    val_fraction: share of pairs (by name hash) for the validation split.
    min_confidence: pairs aligned with less confidence are left out...
    keep_low_confidence: ...unless this is True.
    max_tail_s: how much longer (s) a mix may run than its take (see `analysis`); pairs whose
      lengths differ beyond the rule are left out...
    keep_length_mismatch: ...unless this is True.
    show_progress: show tqdm progress bars.

  Returns:
    The summary dict: "dataset_dir", "settings", "pairs" (one row per pair, see
    `analysis.analyze_pair`, plus "split" for kept pairs), "unpaired_raw", "unpaired_mixed",
    "ambiguous", "ignored", "subfolders", "totals" (counts, seconds, the training mixes' median
    loudness and "validation_names"), and "reused" (True when existing shards were used as
    they were).

  Raises:
    pairing.PairingError: a folder is missing or empty, both are one folder, no file names
      match, or no pair is usable (each pair's reason is in the message).
    tfds_builder.SettingsError: a setting is out of range.
    PrepareError: `data_dir` is a file.
  """
  check_data_dir(data_dir)
  found = pairing.find_pairs(raw_dir, mixed_dir)  # Fail early, with pairing's clear messages.
  if found.subfolders:
    logging.warning("Subfolders are not searched for pairs (move their files up to use them): "
                    "%s", ", ".join(found.subfolders))
  config = tfds_builder.make_config(
      raw_dir, mixed_dir, sample_rate=sample_rate, channels=channels,
      max_shift_ms=max_shift_ms, val_fraction=val_fraction, min_confidence=min_confidence,
      keep_low_confidence=keep_low_confidence, max_tail_s=max_tail_s,
      keep_length_mismatch=keep_length_mismatch)
  os.makedirs(data_dir, exist_ok=True)
  remove_incomplete(data_dir)
  builder = tfds_builder.PairedVocals(config=config, data_dir=data_dir,
                                      show_progress=show_progress)
  summary_path = os.path.join(builder.data_dir, SUMMARY_FILE)
  if builder.is_prepared() and os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
    summary["reused"] = True
    logging.info("Reusing prepared dataset %s", builder.data_dir)
  else:
    if os.path.exists(builder.data_dir):
      shutil.rmtree(builder.data_dir)  # A build without a summary did not finish.
    tfds.display_progress_bar(False)  # Ours say more (per pair); TFDS's would interleave.
    with tempfile.TemporaryDirectory() as unused_download_dir:  # Nothing is downloaded.
      builder.download_and_prepare(download_dir=unused_download_dir)
    summary = _summary(builder)
    fileio.write_json(summary_path, summary)
    summary["reused"] = False
  fileio.write_json(os.path.join(data_dir, POINTER_FILE), dict(
      dataset_dir=os.path.relpath(builder.data_dir, data_dir),
      sample_rate=config.sample_rate, channels=config.channels))
  summary["dataset_dir"] = builder.data_dir
  return summary


def _summary(builder):
  config = builder.builder_config
  rows = builder.rows
  kept = [r for r in rows if r["kept"]]
  seconds = lambda split: sum(r["duration_s"] for r in kept if r["split"] == split)
  result = builder.pairing_result
  return dict(
      dataset_dir=builder.data_dir,
      settings=dict(raw_dir=config.raw_dir, mixed_dir=config.mixed_dir,
                    sample_rate=config.sample_rate, channels=config.channels,
                    max_shift_ms=config.max_shift_ms, val_fraction=config.val_fraction,
                    min_confidence=config.min_confidence,
                    keep_low_confidence=config.keep_low_confidence,
                    max_tail_s=config.max_tail_s,
                    keep_length_mismatch=config.keep_length_mismatch),
      pairs=rows,
      unpaired_raw=result.unpaired_raw,
      unpaired_mixed=result.unpaired_mixed,
      ambiguous=[dict(folder=folder, files=files) for folder, files in result.ambiguous],
      ignored=result.ignored,
      subfolders=result.subfolders,
      totals=dict(
          pairs=len(rows),
          kept=len(kept),
          left_out=len(rows) - len(kept),
          train_pairs=sum(r["split"] == "train" for r in kept),
          validation_pairs=sum(r["split"] == "validation" for r in kept),
          train_seconds=seconds("train"),
          validation_seconds=seconds("validation"),
          train_mixed_lufs_median=_median([r["mixed_lufs"] for r in kept
                                           if r["split"] == "train"]),
          # Saved with checkpoints, so that reports evaluate exactly the held-out pairs.
          validation_names=sorted(r["name"] for r in kept if r["split"] == "validation"),
      ),
  )


def _median(values):
  return float(np.median(values)) if values else None


def find_prepared(data_dir):
  """Returns (dataset_dir, pointer dict) of the dataset last prepared into `data_dir`.

  Raises:
    PrepareError: nothing was prepared there (or the dataset was removed), or it is a file.
  """
  check_data_dir(data_dir)
  pointer_path = os.path.join(data_dir, POINTER_FILE)
  if not os.path.exists(pointer_path):
    raise PrepareError(
        f"{data_dir}: no prepared dataset ({POINTER_FILE} missing); run "
        f"`python -m mixnet.data.prepare --data_dir={data_dir} ...` or prepare_dataset first")
  with open(pointer_path) as f:
    pointer = json.load(f)
  dataset_dir = os.path.join(data_dir, pointer["dataset_dir"])
  if not os.path.exists(os.path.join(dataset_dir, "dataset_info.json")):
    raise PrepareError(f"{pointer_path}: points to {dataset_dir}, which holds no dataset; "
                       "prepare the data again")
  return dataset_dir, pointer


def write_demo_pairs(demo_dir, *, num_pairs, sample_rate, seconds, preset):
  """Writes the synthetic demo pairs into `demo_dir` unless the same ones are already there.

  Args:
    demo_dir: gets `raw/` and `mixed/` (see `synthetic.write_pairs`).
    num_pairs, sample_rate, seconds: how many takes, at which rate (Hz), how long (s, longest).
    preset: name of the DSP preset that plays the user mixing them.

  Returns:
    (raw_dir, mixed_dir) of the demo pairs.
  """
  from mixnet.data import synthetic  # Pulls in the DSP chain only when demo data is needed.
  settings = dict(num_pairs=int(num_pairs), sample_rate=int(sample_rate), seconds=float(seconds),
                  preset=str(preset), seed=0)
  raw_dir, mixed_dir = os.path.join(demo_dir, "raw"), os.path.join(demo_dir, "mixed")
  marker = os.path.join(demo_dir, DEMO_SETTINGS_FILE)
  if os.path.exists(marker):
    with open(marker) as f:
      written = json.load(f)
    if written.get("settings") == settings and all(
        os.path.exists(os.path.join(d, n + ".wav"))
        for n in written.get("names", []) for d in (raw_dir, mixed_dir)):
      return raw_dir, mixed_dir
  for d in (raw_dir, mixed_dir):
    if os.path.isdir(d):
      shutil.rmtree(d)  # Stale demo takes from other settings would be paired too.
  os.makedirs(demo_dir, exist_ok=True)
  names = synthetic.write_pairs(demo_dir, **settings)
  fileio.write_json(marker, dict(settings=settings, names=names))
  return raw_dir, mixed_dir


def prepare_from_config(data_config, data_dir, demo_dir, show_progress=True):
  """Prepares `data_config.raw_dir`/`mixed_dir`, or the demo pairs when `raw_dir` is empty.

  Args:
    data_config: a config's `data` group (see experiments/base.py); `max_tail_s` and
      `keep_length_mismatch` are optional there (defaults of `prepare_dataset`).
    data_dir: where the shards go.
    demo_dir: where demo pairs are written (only used without `raw_dir`).
    show_progress: show tqdm progress bars.

  Returns:
    The summary of `prepare_dataset`.
  """
  raw_dir, mixed_dir = data_config.raw_dir, data_config.mixed_dir
  if not raw_dir and not mixed_dir:
    raw_dir, mixed_dir = write_demo_pairs(
        demo_dir, num_pairs=data_config.demo_pairs, sample_rate=data_config.sample_rate,
        seconds=data_config.demo_seconds, preset=data_config.demo_preset)
  elif not raw_dir or not mixed_dir:
    raise pairing.PairingError(
        f"data.raw_dir, data.mixed_dir: give both (got raw_dir={raw_dir!r}, "
        f"mixed_dir={mixed_dir!r}), or neither for the demo data")
  return prepare_dataset(
      raw_dir, mixed_dir, data_dir, sample_rate=data_config.sample_rate,
      channels=data_config.channels, max_shift_ms=data_config.max_shift_ms,
      val_fraction=data_config.val_fraction, min_confidence=data_config.min_confidence,
      keep_low_confidence=data_config.keep_low_confidence,
      max_tail_s=data_config.get("max_tail_s", analysis.MAX_TAIL_S),
      keep_length_mismatch=data_config.get("keep_length_mismatch", False),
      show_progress=show_progress)


def format_report(summary):
  """Returns the per-pair table and the totals of a `prepare_dataset` summary as text."""
  header = (f"{'name':<24} {'dur s':>7} {'raw Hz':>7} {'mix Hz':>7} {'offset ms':>9} "
            f"{'pol':>4} {'conf':>5} {'kept':>5}  split / reason")
  lines = [header, "-" * len(header)]
  for r in summary["pairs"]:
    rates = [f"{r[k]:>7}" if r[k] else f"{'?':>7}" for k in ("raw_sample_rate",
                                                            "mixed_sample_rate")]
    note = "; ".join(x for x in (r.get("split", ""), r["reason"]) if x)
    lines.append(f"{r['name'][:24]:<24} {r['duration_s']:>7.2f} {rates[0]} {rates[1]} "
                 f"{r['offset_ms']:>9.2f} {'+' if r['polarity'] > 0 else '-':>4} "
                 f"{r['confidence']:>5.2f} {'yes' if r['kept'] else 'NO':>5}  {note}")
  t = summary["totals"]
  lines += [
      "",
      f"pairs: {t['pairs']}, kept: {t['kept']}, left out: {t['left_out']}",
      f"train: {t['train_pairs']} pairs, {t['train_seconds']:.1f} s; "
      f"validation: {t['validation_pairs']} pairs, {t['validation_seconds']:.1f} s",
  ]
  for key, label in (("unpaired_raw", "raw files without a mix"),
                     ("unpaired_mixed", "mixes without a raw file"),
                     ("ignored", "ignored (not audio)"),
                     ("subfolders", "subfolders not searched (move their files up to use them)")):
    if summary[key]:
      lines.append(f"{label}: {', '.join(summary[key])}")
  for amb in summary["ambiguous"]:
    lines.append(f"left out, same name in {amb['folder']}: {', '.join(amb['files'])}")
  reuse = "reused existing shards" if summary.get("reused") else "wrote shards"
  lines.append(f"{reuse} in {summary['dataset_dir']} (summary: {SUMMARY_FILE})")
  return "\n".join(lines)



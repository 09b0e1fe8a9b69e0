"""TFDS builder for paired vocals: raw takes and their mixes, aligned, as tfrecord shards.

Each example holds one pair as float32 `raw` and `mixed` arrays shaped `[time, channels]` at
the config's sample rate, of equal length, plus its name, the alignment that was applied and
the raw take's integrated loudness (`raw_lufs`, LUFS, measured on the whole take: the gain
staging of chain models uses it, see `mixnet.diffdsp.gain`).

Per pair, `analysis.analyze_pair` decides whether to keep it and how to align it (the rules for
unreadable, silent, badly aligned and mismatched-length pairs are there).

Splits (`assign_splits`): a pair goes to "validation" when a hash of its lower-cased name falls
below `val_fraction`, otherwise to "train", so a pair's split does not depend on which other files
are present. Two exceptions for small sets: if the hash would leave "train" empty, everything goes
to "train"; if it would leave "validation" empty while there are at least
`MIN_PAIRS_FOR_VALIDATION` kept pairs (and `val_fraction > 0`), the pair with the lowest hash is
held out, so that "best" checkpoints and evaluation reports rest on a pair training never saw.
Empty splits are not written.

Nothing is downloaded: the builder reads only the two source folders.
"""

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds
import tqdm
from absl import logging
from absl.logging import converter

from mixnet import errors
from mixnet.data import analysis, pairing

DATASET_VERSION = "1.1.0"
# With at least this many kept pairs, one is always held out for validation (see module doc).
MIN_PAIRS_FOR_VALIDATION = 3


class SettingsError(errors.MixnetError):
  """A dataset setting is out of range; the message names the setting."""


@dataclasses.dataclass(eq=False)
class PairedVocalsConfig(tfds.core.BuilderConfig):
  """Which folders to read and how to prepare them; see `make_config`."""
  raw_dir: str = ""
  mixed_dir: str = ""
  sample_rate: int = 44100
  channels: int = 1
  max_shift_ms: float = 100.0
  val_fraction: float = 0.1
  min_confidence: float = 0.3
  keep_low_confidence: bool = False
  max_tail_s: float = analysis.MAX_TAIL_S
  keep_length_mismatch: bool = False


def make_config(raw_dir, mixed_dir, *, sample_rate, channels, max_shift_ms, val_fraction,
                min_confidence, keep_low_confidence, max_tail_s=analysis.MAX_TAIL_S,
                keep_length_mismatch=False):
  """Returns a `PairedVocalsConfig` whose name fingerprints the settings and source files.

  The name changes when a setting changes or a source audio file is added, removed, resized or
  touched, so shards built from the same sources with the same settings are found and reused.

  Raises:
    SettingsError: a setting is out of range.
    pairing.PairingError: a folder is missing or holds no audio.
  """
  for name, value, ok, rule in (
      ("sample_rate", sample_rate, sample_rate >= 8000, ">= 8000 (Hz)"),
      ("channels", channels, channels in (1, 2), "1 or 2"),
      ("max_shift_ms", max_shift_ms, max_shift_ms > 0, "> 0"),
      ("val_fraction", val_fraction, 0.0 <= val_fraction < 1.0, "in [0, 1)"),
      ("max_tail_s", max_tail_s, max_tail_s >= 0, ">= 0")):
    if not ok:
      raise SettingsError(f"{name}: must be {rule}, got {value}")
  settings = dict(sample_rate=int(sample_rate), channels=int(channels),
                  max_shift_ms=float(max_shift_ms), val_fraction=float(val_fraction),
                  min_confidence=float(min_confidence),
                  keep_low_confidence=bool(keep_low_confidence), max_tail_s=float(max_tail_s),
                  keep_length_mismatch=bool(keep_length_mismatch))
  digest = hashlib.sha256(repr(sorted(settings.items())).encode())
  for folder in (raw_dir, mixed_dir):
    for stat in _source_stats(folder):
      digest.update(repr(stat).encode())
  name = f"sr{settings['sample_rate']}_ch{settings['channels']}_{digest.hexdigest()[:12]}"
  return PairedVocalsConfig(name=name, version=DATASET_VERSION, raw_dir=os.path.abspath(raw_dir),
                            mixed_dir=os.path.abspath(mixed_dir), **settings)


def _source_stats(folder):
  """(name, size, mtime) of every audio file in `folder`, for fingerprinting."""
  if not os.path.isdir(folder):
    raise pairing.PairingError(f"{folder}: folder does not exist")
  stats = []
  for entry in sorted(os.listdir(folder)):
    path = os.path.join(folder, entry)
    if entry.lower().endswith(pairing.AUDIO_EXTENSIONS) and os.path.isfile(path):
      st = os.stat(path)
      stats.append((entry, st.st_size, st.st_mtime_ns))
  return stats


def _name_hash(name):
  """A stable number in [0, 1) for a pair name (case-insensitive)."""
  h = int.from_bytes(hashlib.sha256(name.lower().encode("utf-8")).digest()[:8], "big")
  return h / 2.0**64


def split_of(name, val_fraction):
  """Returns "validation" or "train" for a pair name, by a stable hash of the lower-cased name."""
  return "validation" if _name_hash(name) < val_fraction else "train"


def assign_splits(names, val_fraction):
  """Returns {name: "train" or "validation"} for the kept pairs (rules in the module docstring)."""
  splits = {name: split_of(name, val_fraction) for name in names}
  held_out = [n for n in names if splits[n] == "validation"]
  if len(held_out) == len(names):
    return dict.fromkeys(names, "train")
  if not held_out and val_fraction > 0 and len(names) >= MIN_PAIRS_FOR_VALIDATION:
    splits[min(names, key=_name_hash)] = "validation"
  return splits


def _tfds_warning_to_info(record):
  """A log filter: TFDS's warnings become INFO lines (the log file keeps them, not the console).

  TFDS warns on every build that the config is custom and that the folder it is about to fill
  has no dataset info, and on every read of a tensor feature that `dtype` is deprecated (its own
  decoder asks for it). They concern how mixnet uses TFDS; none is something a user can act on.
  """
  if (record.levelno == converter.STANDARD_WARNING
      and f"{os.sep}tensorflow_datasets{os.sep}" in record.pathname):
    record.levelno, record.levelname = converter.STANDARD_INFO, "INFO"
  return True


# Installed when this module is first imported: by preparing, and by training and evaluation
# through the input pipeline (which imports `mixnet.data.prepare`, which imports this module).
logging.get_absl_logger().addFilter(_tfds_warning_to_info)


class PairedVocals(tfds.core.GeneratorBasedBuilder):
  """Aligned raw/mixed vocal pairs from two local folders (see the module docstring)."""

  VERSION = tfds.core.Version(DATASET_VERSION)
  RELEASE_NOTES = {
      "1.0.0": "Aligned pairs, float32 [time, channels], hash split.",
      "1.1.0": "raw_lufs: the whole raw take's integrated loudness (chain gain staging).",
  }

  # TFDS looks for a checksums file next to the builder's code, and on Python >= 3.9 the lookup
  # imports `importlib_resources`, which TFDS does not install. Nothing is downloaded, so there
  # are no checksums to find: say there is no code path.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return None

  # TFDS prints where it downloads and writes, on stdout; the prepare summary says where the
  # shards went, and nothing is downloaded.
  def _log_download_bytes(self):
    pass

  def _log_download_done(self):
    pass

  def __init__(self, *, config, show_progress=True, **kwargs):
    self.show_progress = show_progress
    self.pairing_result = None
    self.rows = []
    super().__init__(config=config, **kwargs)

  def _info(self):
    channels = self.builder_config.channels
    audio_feature = lambda: tfds.features.Tensor(
        shape=(None, channels), dtype=np.float32, encoding=tfds.features.Encoding.BYTES)
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"Aligned vocal pairs at {self.builder_config.sample_rate} Hz.",
        features=tfds.features.FeaturesDict({
            "raw": audio_feature(),
            "mixed": audio_feature(),
            "name": tfds.features.Text(),
            "offset_samples": tfds.features.Scalar(dtype=np.int64),
            "polarity": tfds.features.Scalar(dtype=np.int64),
            "confidence": tfds.features.Scalar(dtype=np.float32),
            "raw_lufs": tfds.features.Scalar(dtype=np.float32),
        }),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    config = self.builder_config
    self.pairing_result = pairing.find_pairs(config.raw_dir, config.mixed_dir)
    pairs = self.pairing_result.pairs
    self.rows = [analysis.analyze_pair(p, config)
                 for p in tqdm.tqdm(pairs, desc="aligning", unit="pair",
                                    disable=not self.show_progress)]
    kept = [(p, r) for p, r in zip(pairs, self.rows, strict=True) if r["kept"]]
    if not kept:
      reasons = "; ".join(f"{r['name']}: {r['reason']}" for r in self.rows)
      raise pairing.PairingError(
          f"{config.raw_dir}: no usable pair (with {config.mixed_dir}): {reasons}")
    splits = assign_splits([r["name"] for _, r in kept], config.val_fraction)
    for _, row in kept:
      row["split"] = splits[row["name"]]
    return {split: self._generate_examples([(p, r) for p, r in kept if r["split"] == split])
            for split in ("train", "validation")
            if any(r["split"] == split for _, r in kept)}

  def _generate_examples(self, kept):
    for pair, row in tqdm.tqdm(kept, desc=f"writing {kept[0][1]['split']}", unit="pair",
                               disable=not self.show_progress):
      raw_tc, mixed_tc = analysis.load_aligned(pair, row, self.builder_config)
      yield row["name"], {
          "raw": raw_tc,
          "mixed": mixed_tc,
          "name": row["name"],
          "offset_samples": row["offset_samples"],
          "polarity": row["polarity"],
          "confidence": row["confidence"],
          "raw_lufs": row["raw_lufs"],
      }

"""TFDS builder for paired vocals: raw takes and their mixes, aligned, as tfrecord shards.

Each example holds one pair as float32 `raw` and `mixed` arrays shaped `[time, channels]` at
the config's sample rate, of equal length, plus its name and the alignment that was applied.

Per pair the builder:
  1. loads both files, resampling to the config rate (soxr) and converting to the config's
     channel count (stereo -> mono averages, mono -> stereo copies);
  2. estimates the mix's offset and polarity against the raw take (`align.estimate_offset`);
  3. leaves the pair out if a file is unreadable, either side is silent, or the alignment
     confidence is below `min_confidence` (unless `keep_low_confidence`), saying why;
  4. applies the alignment: a mix that lags loses its first `offset` samples (the plugin
     latency), a mix that leads is matched by dropping the raw take's first samples (that part
     of the take has no mix), an inverted mix is flipped back;
  5. pads or crops the raw take to the mix's length, keeping the mix's tail (reverb ringing
     out after the voice maps from silence).
Pairs go to "validation" when a hash of their lower-cased name falls below `val_fraction`,
otherwise to "train", so a pair's split never depends on which other files are present. If that
would leave "train" empty (very few pairs), everything goes to "train". Empty splits are not
written.

Nothing is downloaded: the builder reads only the two source folders.
"""

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from mixnet import audio, dsp
from mixnet.data import align, pairing

DATASET_VERSION = "1.0.0"
# Peak level (dBFS) below which a file counts as silent and its pair is left out.
SILENCE_PEAK_DB = -60.0
# Pairs shorter than this (seconds, after alignment) are left out.
MIN_DURATION_S = 0.1


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


def make_config(raw_dir, mixed_dir, *, sample_rate, channels, max_shift_ms, val_fraction,
                min_confidence, keep_low_confidence):
  """Returns a `PairedVocalsConfig` whose name fingerprints the settings and source files.

  The name changes when a setting changes or a source audio file is added, removed, resized or
  touched, so shards built from the same sources with the same settings are found and reused.

  Raises:
    pairing.PairingError: a folder is missing or holds no audio.
  """
  if channels not in (1, 2):
    raise ValueError(f"channels must be 1 or 2, got {channels}")
  if not 0.0 <= val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
  settings = dict(sample_rate=int(sample_rate), channels=int(channels),
                  max_shift_ms=float(max_shift_ms), val_fraction=float(val_fraction),
                  min_confidence=float(min_confidence),
                  keep_low_confidence=bool(keep_low_confidence))
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
    raise pairing.PairingError(f"folder {folder} does not exist")
  stats = []
  for entry in sorted(os.listdir(folder)):
    path = os.path.join(folder, entry)
    if entry.lower().endswith(pairing.AUDIO_EXTENSIONS) and os.path.isfile(path):
      st = os.stat(path)
      stats.append((entry, st.st_size, st.st_mtime_ns))
  return stats


def split_of(name, val_fraction):
  """Returns "validation" or "train" for a pair name, by a stable hash of the lower-cased name."""
  h = int.from_bytes(hashlib.sha256(name.lower().encode("utf-8")).digest()[:8], "big")
  return "validation" if h / 2.0**64 < val_fraction else "train"


def analyze_pair(pair, config):
  """Loads and aligns one pair and decides whether to keep it.

  Args:
    pair: a `pairing.Pair`.
    config: a `PairedVocalsConfig` (sample rate, channels, alignment settings).

  Returns:
    A report row (dict of JSON-friendly values): name, files, source sample rates and channels,
    duration_s (of the prepared pair), mixed_lufs (its mix's integrated loudness), offset_samples,
    offset_ms, polarity, confidence, kept and reason (why a pair is left out or kept despite a
    warning; "" otherwise).
  """
  row = dict(name=pair.name, raw_file=pair.raw_path, mixed_file=pair.mixed_path,
             raw_sample_rate=None, mixed_sample_rate=None, raw_channels=None,
             mixed_channels=None, duration_s=0.0, mixed_lufs=None, offset_samples=0,
             offset_ms=0.0, polarity=1, confidence=0.0, kept=False, reason="")
  try:
    raw_tc, mixed_tc = _load_pair(pair, config, row)
  except audio.AudioError as e:
    row["reason"] = f"unreadable: {e}"
    return row
  for side, x in (("raw", raw_tc), ("mixed", mixed_tc)):
    peak_db = 20.0 * np.log10(max(float(np.max(np.abs(x))), 1e-12))
    if peak_db < SILENCE_PEAK_DB:
      row["reason"] = f"silent: {side} file peaks at {peak_db:.0f} dBFS"
      return row
  max_shift_s = config.max_shift_ms / 1000.0
  offset, confidence, polarity = align.estimate_offset(
      raw_tc, mixed_tc, config.sample_rate, max_shift_s=max_shift_s)
  row.update(offset_samples=offset, offset_ms=1000.0 * offset / config.sample_rate,
             polarity=polarity, confidence=confidence)
  if confidence < config.min_confidence:
    row["reason"] = f"low alignment confidence {confidence:.2f} < {config.min_confidence:.2f}"
    row["reason"] += _wider_match_hint(raw_tc, mixed_tc, config)
    if not config.keep_low_confidence:
      return row
    row["reason"] += " (kept: keep_low_confidence)"
  _, mixed_tc = apply_alignment(raw_tc, mixed_tc, offset, polarity)
  row["duration_s"] = len(mixed_tc) / config.sample_rate
  # The user's delivery loudness: inference can match the output to the training mixes' median.
  row["mixed_lufs"] = float(dsp.integrated_loudness(mixed_tc, config.sample_rate))
  if row["duration_s"] < MIN_DURATION_S:
    row["reason"] = f"too short: {row['duration_s']:.3f} s after alignment"
    return row
  row["kept"] = True
  return row


def _load_pair(pair, config, row):
  """Loads both files at the config rate and channel count, noting their source formats."""
  raw_tc, raw_sr = audio.load(pair.raw_path)
  mixed_tc, mixed_sr = audio.load(pair.mixed_path)
  row.update(raw_sample_rate=raw_sr, mixed_sample_rate=mixed_sr, raw_channels=raw_tc.shape[1],
             mixed_channels=mixed_tc.shape[1])
  raw_tc = audio.to_channels(audio.resample(raw_tc, raw_sr, config.sample_rate), config.channels)
  mixed_tc = audio.resample(mixed_tc, mixed_sr, config.sample_rate)
  return raw_tc, audio.to_channels(mixed_tc, config.channels)


def _wider_match_hint(raw_tc, mixed_tc, config):
  """Explains a low confidence when a clear match exists beyond `max_shift_ms`."""
  wide_s = max(10.0 * config.max_shift_ms / 1000.0, 2.0)
  offset, confidence, _ = align.estimate_offset(raw_tc, mixed_tc, config.sample_rate,
                                                max_shift_s=wide_s)
  offset_ms = 1000.0 * offset / config.sample_rate
  if confidence >= config.min_confidence and abs(offset_ms) > config.max_shift_ms:
    return (f"; the best match is at {offset_ms:.1f} ms, beyond max_shift_ms="
            f"{config.max_shift_ms:g}: raise it to use this pair")
  return ""


def apply_alignment(raw_tc, mixed_tc, offset, polarity):
  """Undoes `offset` and `polarity` and gives both sides the mix's (aligned) length.

  Args:
    raw_tc, mixed_tc: `[time, channels]` float32 arrays at one sample rate.
    offset: samples the mix lags the raw take (negative: leads).
    polarity: +1, or -1 to flip the mix back.

  Returns:
    (raw_tc, mixed_tc) of equal length: the aligned mix's, the raw take zero-padded or cropped
    at the end to match.
  """
  if offset > 0:
    mixed_tc = mixed_tc[offset:]
  elif offset < 0:
    raw_tc = raw_tc[-offset:]
  mixed_tc = (mixed_tc * np.float32(polarity)).astype(np.float32)
  length = len(mixed_tc)
  if len(raw_tc) < length:
    raw_tc = np.pad(raw_tc, ((0, length - len(raw_tc)), (0, 0)))
  return np.ascontiguousarray(raw_tc[:length], np.float32), mixed_tc


def load_aligned(pair, row, config):
  """Loads a kept pair and applies the alignment recorded in its report `row`."""
  raw_tc, mixed_tc = _load_pair(pair, config, dict(row))
  return apply_alignment(raw_tc, mixed_tc, row["offset_samples"], row["polarity"])


class PairedVocals(tfds.core.GeneratorBasedBuilder):
  """Aligned raw/mixed vocal pairs from two local folders (see the module docstring)."""

  VERSION = tfds.core.Version(DATASET_VERSION)
  RELEASE_NOTES = {DATASET_VERSION: "Aligned pairs, float32 [time, channels], hash split."}

  # TFDS looks for a checksums file next to the builder's code, and on Python >= 3.9 the lookup
  # imports `importlib_resources`, which TFDS does not install. Nothing is downloaded, so there
  # are no checksums to find: say there is no code path.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return None

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
        }),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    config = self.builder_config
    self.pairing_result = pairing.find_pairs(config.raw_dir, config.mixed_dir)
    pairs = self.pairing_result.pairs
    self.rows = [analyze_pair(p, config)
                 for p in tqdm.tqdm(pairs, desc="aligning", unit="pair",
                                    disable=not self.show_progress)]
    kept = [(p, r) for p, r in zip(pairs, self.rows, strict=True) if r["kept"]]
    if not kept:
      reasons = "; ".join(f"{r['name']}: {r['reason']}" for r in self.rows)
      raise ValueError(f"no usable pair in {config.raw_dir} / {config.mixed_dir}: {reasons}")
    for _, row in kept:
      row["split"] = split_of(row["name"], config.val_fraction)
    if all(row["split"] == "validation" for _, row in kept):
      for _, row in kept:
        row["split"] = "train"
    return {split: self._generate_examples([(p, r) for p, r in kept if r["split"] == split])
            for split in ("train", "validation")
            if any(r["split"] == split for _, r in kept)}

  def _generate_examples(self, kept):
    for pair, row in tqdm.tqdm(kept, desc=f"writing {kept[0][1]['split']}", unit="pair",
                               disable=not self.show_progress):
      raw_tc, mixed_tc = load_aligned(pair, row, self.builder_config)
      yield row["name"], {
          "raw": raw_tc,
          "mixed": mixed_tc,
          "name": row["name"],
          "offset_samples": row["offset_samples"],
          "polarity": row["polarity"],
          "confidence": row["confidence"],
      }

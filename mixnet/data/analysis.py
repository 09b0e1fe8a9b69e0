"""Loads, checks and aligns one raw/mixed pair: the per-pair rules of the prepared data.

Per pair (`analyze_pair`, used by the TFDS builder and the evaluation report alike):
  1. loads both files, resampling to the config rate (soxr) and converting to the config's
     channel count (stereo -> mono averages, mono -> stereo copies);
  2. estimates the mix's offset and polarity against the raw take (`align.estimate_offset`);
  3. leaves the pair out if a file is unreadable, either side is silent, the alignment
     confidence is below `min_confidence` (unless `keep_low_confidence`), or the lengths differ
     by more than a reverb tail or a latency explains (unless `keep_length_mismatch`, see below),
     saying why;
  4. applies the alignment: a mix that lags loses its first `offset` samples (the plugin
     latency), a mix that leads is matched by dropping the raw take's first samples (that part
     of the take has no mix), an inverted mix is flipped back;
  5. pads or crops the raw take to the mix's length, keeping the mix's tail (reverb ringing
     out after the voice maps from silence).

Lengths, compared after the offset is undone: the mix may run longer than the raw take by up to
`max_tail_s` (reverb or delay ringing out after the voice); it may end earlier only by the
largest offset searched (`max_shift_ms`), or where the raw take has nothing left but noise (its
remainder peaks more than `CUT_QUIET_DB` below the take's peak). A mix many seconds longer than
its take, or one that cuts off part of the performance, is more likely a wrong or truncated
export than a style to learn.

Audio arrays are float32 `[time, channels]` at the config's sample rate.
"""

import numpy as np

from mixnet import audio, dsp
from mixnet.data import align

# Peak level (dBFS) below which a file counts as silent and its pair is left out.
SILENCE_PEAK_DB = -60.0
# Pairs shorter than this (seconds, after alignment) are left out.
MIN_DURATION_S = 0.1
# Default of `max_tail_s`: how much longer (seconds) a mix may run than its raw take.
MAX_TAIL_S = 5.0
# The raw take may go on after its mix ends only where it is this many dB below its own peak.
CUT_QUIET_DB = 30.0


def analyze_pair(pair, config):
  """Loads and aligns one pair and decides whether to keep it.

  Args:
    pair: a `pairing.Pair`.
    config: a `PairedVocalsConfig` (sample rate, channels, alignment settings).

  Returns:
    A report row (dict of JSON-friendly values): name, files, source sample rates and channels,
    duration_s (of the prepared pair), raw_lufs and mixed_lufs (integrated loudness of the
    prepared raw take and mix, LUFS), offset_samples,
    offset_ms, polarity, confidence, kept and reason (why a pair is left out or kept despite a
    warning; "" otherwise).
  """
  row = dict(name=pair.name, raw_file=pair.raw_path, mixed_file=pair.mixed_path,
             raw_sample_rate=None, mixed_sample_rate=None, raw_channels=None,
             mixed_channels=None, duration_s=0.0, raw_lufs=None, mixed_lufs=None, offset_samples=0,
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
  mismatch = _length_mismatch(raw_tc, mixed_tc, offset, config)
  if mismatch:
    row["reason"] = "; ".join(x for x in (row["reason"], mismatch) if x)
    if not config.keep_length_mismatch:
      return row
    row["reason"] += " (kept: keep_length_mismatch)"
  raw_tc, mixed_tc = apply_alignment(raw_tc, mixed_tc, offset, polarity)
  row["duration_s"] = len(mixed_tc) / config.sample_rate
  # The whole take's level, for the gain staging of chain models (`mixnet.diffdsp.gain`).
  row["raw_lufs"] = float(dsp.integrated_loudness(raw_tc, config.sample_rate))
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


def _length_mismatch(raw_tc, mixed_tc, offset, config):
  """Says how the aligned lengths differ beyond the rule in the module docstring, else ""."""
  raw_tc = raw_tc[max(0, -offset):]
  mixed_len = len(mixed_tc) - max(0, offset)
  sr = config.sample_rate
  extra_s = (mixed_len - len(raw_tc)) / sr
  if extra_s > config.max_tail_s:
    return (f"length mismatch: the mix runs {extra_s:.1f} s longer than the raw take (a reverb "
            f"tail explains up to max_tail_s={config.max_tail_s:g} s)")
  rest_tc = raw_tc[max(0, mixed_len):]
  if len(rest_tc) <= config.max_shift_ms / 1000.0 * sr:
    return ""
  take_peak = float(np.max(np.abs(raw_tc)))
  rest_db = 20.0 * np.log10(max(float(np.max(np.abs(rest_tc))), 1e-12) / max(take_peak, 1e-12))
  if rest_db < -CUT_QUIET_DB:
    return ""
  return (f"length mismatch: the mix ends {len(rest_tc) / sr:.1f} s before the raw take, which "
          f"still has sound there (up to {max(0.0, -rest_db):.0f} dB below its peak): a cut or "
          "a wrong export?")


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

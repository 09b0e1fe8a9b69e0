"""tf.data input pipeline over the prepared shards (see `mixnet.data.prepare`); no JAX here.

Batches are dicts {"raw": x_btc, "mixed": y_btc}: float32 `[batch, time, channels]` at
`data_config.sample_rate` Hz with time = `segment_length(data_config)` (training batches:
`context_length + segment_length`). `batch` is the host-local
batch; several hosts each read their own slice of the files (`shard_index` of `num_shards`, i.e.
the process index and count).

Training batches are a function of (seed, host, step) alone: the batch of step `s` holds the
host's examples `s * batch ... (s + 1) * batch - 1`, and example `k` is drawn with stateless
random ops keyed by `k`. A run resumed at any step therefore starts at once
(`create_train_dataset(..., start_step=s)`) and sees exactly the batches an uninterrupted run
would. The host's training files are held in memory for this random access (about 8 bytes per
sample and channel: raw and mix, float32).

  * A pass over the host's files has one slot per segment of audio in each file
    (max(1, file length // segment)); each pass visits its slots in a random order of their own
    (`tf.random.experimental.index_shuffle` keyed by the pass), so long files give
    proportionally more crops and consecutive examples come from different files.
  * Each crop starts at a random position; it may reach up to `shift_ms` past either end of the
    file (zero-filled), which shifts both sides together and shows the model takes that start or
    stop inside a segment (and places files shorter than a segment at random positions in it).
  * A crop whose raw RMS is below `silence_db` is redrawn (up to `SILENCE_DRAWS` candidates,
    then the loudest candidate is used, so a quiet file never stalls the pipeline).
  * Gain: a random gain of up to +-`gain_db` dB on both sides ("both": the mapping's level
    relationship stays as the user mixes it and the rest becomes level-independent), or on the
    raw take only ("input": the model learns to land at the user's output level whatever level
    the take was recorded at).
  * `polarity_flip`: both sides are inverted together half of the time (a mix is as good
    inverted, and an inverted take is common).
  * Context (`data.context_seconds`): each crop also carries the audio before its segment
    (zeros before a file's start), so a model with long memory (a reverb tail, a compressor's
    state) starts the segment warmed up, as chunked inference does; the train step scores
    only the segment (`train_step(..., context=)`). The segment is drawn, checked for silence
    and augmented exactly as without context.
  * Gain staging (`input_lufs`, for `chain` and `hybrid` models): each raw take is scaled to
    `input_lufs` by its whole-take loudness stored at prepare time (`raw_lufs`, the rule of
    `mixnet.diffdsp.gain.gain_for_loudness`) before any crop is cut, in training and in
    validation alike, so a crop of a quiet verse keeps its place in the take's dynamics.

Evaluation (`create_eval_dataset`): every validation file cut into consecutive segment-long
windows in file order, each with the file's id, its start sample and how many of its samples are
real (the last window of a file is zero-padded); the last batch may be smaller. Raw windows carry
the context before them as training crops do: a long-memory model is scored warmed up.
Validation joins a file's windows back together and scores the whole file, as the evaluation
report does.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from mixnet.data import prepare
from mixnet.dsp import loudness

# Candidate positions drawn per crop when skipping near-silent crops.
SILENCE_DRAWS = 16
# Eval window ids: host index * FILE_ID_STRIDE + the file's index on that host.
FILE_ID_STRIDE = 1 << 20
GAIN_MODES = ("both", "input")


def segment_length(data_config):
  """Samples per training segment and eval window."""
  return int(round(data_config.segment_seconds * data_config.sample_rate))


def context_length(data_config):
  """Samples of warm-up audio before each training segment (`data.context_seconds`, 0 if unset)."""
  return int(round(float(data_config.get("context_seconds", 0.0)) * data_config.sample_rate))


def open_dataset(data_config, data_dir):
  """Returns the TFDS builder of the dataset last prepared in `data_dir`.

  Raises:
    prepare.PrepareError: nothing is prepared there, or it was prepared at another sample rate
      or channel count than `data_config` asks for.
  """
  dataset_dir, pointer = prepare.find_prepared(data_dir)
  for key in ("sample_rate", "channels"):
    if int(pointer[key]) != int(data_config[key]):
      raise prepare.PrepareError(
          f"{dataset_dir} was prepared with {key}={pointer[key]}, but the config asks for "
          f"{data_config[key]}; prepare the data again with the config's settings")
  return tfds.builder_from_directory(dataset_dir)


def has_validation(builder):
  """True when the prepared dataset holds at least one validation file."""
  splits = builder.info.splits
  return "validation" in splits and splits["validation"].num_examples > 0


def _host_split(builder, split, shard_index, num_shards):
  """This host's part of `split`; every host reads all of it when it has too few files."""
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"shard_index {shard_index} not in [0, {num_shards})")
  num_files = builder.info.splits[split].num_examples
  if num_shards == 1:
    return split
  if num_files < num_shards:
    logging.warning("split %s has %d files for %d hosts; every host reads all of them",
                    split, num_files, num_shards)
    return split
  return tfds.even_splits(split, n=num_shards)[shard_index]


def _check_staging(builder, input_lufs):
  if input_lufs is not None and "raw_lufs" not in builder.info.features:
    raise prepare.PrepareError(
        f"{builder.data_dir} was prepared by an older mixnet without the takes' loudness "
        "(raw_lufs), which gain staging needs; prepare the data again")


def _read(builder, split, input_lufs=None):
  """Examples of `split` in file order as {"raw", "mixed"} `[time, channels]` and "name".

  With `input_lufs` (LUFS), each raw take is staged to it by its stored whole-take loudness.
  """
  _check_staging(builder, input_lufs)

  def select(ex):
    raw = ex["raw"]
    if input_lufs is not None:
      gain_db = tf.where(ex["raw_lufs"] <= loudness.LOUDNESS_FLOOR_LUFS, 0.0,
                         input_lufs - ex["raw_lufs"])
      raw = raw * 10.0 ** (gain_db / 20.0)
    return {"raw": raw, "mixed": ex["mixed"], "name": ex["name"]}

  ds = builder.as_dataset(split=split, shuffle_files=False)
  return ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)


def _seeds(seed, shard_index, count):
  """`count` int seeds derived from the run seed and the host index."""
  return [int(s) for s in np.random.SeedSequence([seed, shard_index]).generate_state(count)]


def load_host_files(builder, split, input_lufs=None):
  """The files of `split` (this host's part) in memory: names, and raw/mix concatenated.

  With `input_lufs` (LUFS), each raw take is staged to it (see the module docstring).

  Returns:
    (names, raw_tc, mixed_tc, starts, lengths): `raw_tc`/`mixed_tc` float32 `[samples,
    channels]` with file i at `starts[i] : starts[i] + lengths[i]`.
  """
  names, raws, mixes = [], [], []
  for ex in tfds.as_numpy(_read(builder, split, input_lufs)):
    names.append(ex["name"].decode("utf-8"))
    raws.append(ex["raw"])
    mixes.append(ex["mixed"])
  lengths = np.array([len(r) for r in raws], np.int64)
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
  return names, np.concatenate(raws), np.concatenate(mixes), starts, lengths


def _example_fn(data_config, files, seeds):
  """Returns fn(k) -> {"raw", "mixed"} `[context + segment, channels]`: host example `k`."""
  seg, context = segment_length(data_config), context_length(data_config)
  shift = int(round(data_config.shift_ms / 1000.0 * data_config.sample_rate))
  gain_db = float(data_config.gain_db)
  if data_config.gain_mode not in GAIN_MODES:
    raise ValueError(f"data.gain_mode must be 'both' or 'input', got {data_config.gain_mode!r}")
  gain_both = data_config.gain_mode == "both"
  _, raw_tc, mixed_tc, starts, lengths = files
  slot_file = tf.constant(np.repeat(np.arange(len(lengths)), np.maximum(1, lengths // seg)))
  num_slots = int(slot_file.shape[0])
  raw, mixed = tf.constant(raw_tc), tf.constant(mixed_tc)
  power = np.mean(np.square(raw_tc, dtype=np.float64), axis=-1)
  energy = tf.constant(np.concatenate([[0.0], np.cumsum(power)]))
  starts, lengths = tf.constant(starts), tf.constant(lengths)
  order_seed, crop_seed = seeds

  def example(k):
    slot = tf.random.experimental.index_shuffle(
        k % num_slots, tf.stack([tf.constant(order_seed, tf.int64), k // num_slots]),
        num_slots - 1)
    f = tf.gather(slot_file, slot)
    offset, length = starts[f], lengths[f]
    key = tf.random.experimental.stateless_split(
        tf.stack([tf.constant(crop_seed, tf.int64), k]), num=3)
    # Candidate starts, in file samples: crops may reach `shift` past either end.
    first = tf.random.stateless_uniform(
        [SILENCE_DRAWS], key[0], minval=-shift,
        maxval=tf.maximum(length - seg, 0) + shift + 1, dtype=tf.int64)
    lo, hi = (tf.clip_by_value(x, 0, length) for x in (first, first + seg))
    level_db = 10.0 * tf.math.log(
        (tf.gather(energy, offset + hi) - tf.gather(energy, offset + lo)) / seg + 1e-20
    ) / np.log(10.0)
    loud = level_db >= data_config.silence_db
    pick = tf.where(tf.reduce_any(loud), tf.argmax(tf.cast(loud, tf.int32)),
                    tf.argmax(level_db))
    index = first[pick] - context + tf.range(context + seg, dtype=tf.int64)
    inside = ((index >= 0) & (index < length))[:, None]
    where = offset + tf.clip_by_value(index, 0, length - 1)
    raw_tc = tf.where(inside, tf.gather(raw, where), 0.0)
    mixed_tc = tf.where(inside, tf.gather(mixed, where), 0.0)
    draws = tf.random.stateless_uniform([2], key[1])
    gain = 10.0 ** ((2.0 * draws[0] - 1.0) * gain_db / 20.0)
    sign = tf.where(draws[1] < 0.5, -1.0, 1.0) if data_config.polarity_flip else 1.0
    return {"raw": raw_tc * gain * sign,
            "mixed": mixed_tc * (gain if gain_both else 1.0) * sign}

  return example


def create_train_dataset(data_config, data_dir, batch_size, seed, shard_index=0, num_shards=1,
                         start_step=0, input_lufs=None):
  """Infinite dataset of random training crops, a function of (seed, host, step).

  Args:
    data_config: `config.data`.
    data_dir: where `prepare` wrote the shards.
    batch_size: host-local batch size.
    seed: run seed; the same seed (and host) gives the same batches.
    shard_index, num_shards: this host's index and the host count.
    start_step: steps already trained; the first batch is the one of step `start_step + 1`.
    input_lufs: stage every raw take to this loudness (LUFS) first; None keeps its level.

  Returns:
    tf.data.Dataset of {"raw", "mixed"}: float32 `[batch_size, context + segment, channels]`.
  """
  builder = open_dataset(data_config, data_dir)
  files = load_host_files(builder, _host_split(builder, "train", shard_index, num_shards),
                          input_lufs)
  logging.info("host %d of %d trains on %d files: %s", shard_index, num_shards,
               len(files[0]), ", ".join(files[0]))
  example = _example_fn(data_config, files, _seeds(seed, shard_index, 2))
  first = int(start_step) * int(batch_size)
  ds = tf.data.Dataset.range(first, np.iinfo(np.int64).max)
  ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_deterministic_options())


def create_eval_dataset(data_config, data_dir, batch_size, shard_index=0, num_shards=1,
                        input_lufs=None):
  """Finite, deterministic dataset of consecutive windows over the validation files.

  Uses the training files when there is no validation split (the caller says so once). With
  `input_lufs`, the raw takes are staged as for training.

  Returns:
    tf.data.Dataset of {"raw": float32 `[batch, context + segment, channels]` (the window and
    the `data.context_seconds` before it), "mixed": float32 `[batch, segment, channels]`;
    "file": int32 id (host index * FILE_ID_STRIDE + file index), "start": the window's first
    sample in the file, "valid": how many of its samples are the file's (the rest is zero
    padding). Batches hold `batch_size` windows, the last one possibly fewer.
  """
  builder = open_dataset(data_config, data_dir)
  split = "validation" if has_validation(builder) else "train"
  seg, context = segment_length(data_config), context_length(data_config)

  def windows(index, ex):
    length = tf.shape(ex["raw"], out_type=tf.int64)[0]
    count = (length + seg - 1) // seg
    frame = lambda x: tf.reshape(tf.pad(x, [[0, count * seg - length], [0, 0]]),
                                 [-1, seg, data_config.channels])
    # Each raw window with the `context` samples before it (zeros before the file's start).
    raw = tf.pad(ex["raw"], [[context, count * seg - length], [0, 0]])
    raw_windows = tf.signal.frame(raw, context + seg, seg, axis=0)
    start = tf.range(count) * seg
    return {"raw": raw_windows, "mixed": frame(ex["mixed"]),
            "file": tf.fill([count], tf.cast(shard_index * FILE_ID_STRIDE + index, tf.int32)),
            "start": tf.cast(start, tf.int32),
            "valid": tf.cast(tf.minimum(length - start, seg), tf.int32)}

  ds = _read(builder, _host_split(builder, split, shard_index, num_shards), input_lufs)
  ds = ds.enumerate()
  ds = ds.map(windows).unbatch()
  ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_deterministic_options())


def _deterministic_options():
  options = tf.data.Options()
  options.deterministic = True
  return options

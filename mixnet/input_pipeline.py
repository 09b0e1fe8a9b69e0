"""tf.data input pipeline over the prepared shards (see `mixnet.data.prepare`); no JAX here.

Batches are dicts {"raw": x_btc, "mixed": y_btc}: float32 `[batch, time, channels]` at
`data_config.sample_rate` Hz with time = round(segment_seconds * sample_rate). `batch` is the
host-local batch; several hosts each read their own slice of the files (`shard_index` of
`num_shards`, i.e. the process index and count).

Training crops (all random draws are stateless and seeded, so a run is reproducible):
  * each pass over a file yields max(1, file length // segment) crops at random positions;
    a crop may reach up to `shift_ms` past either end of the file (zero-filled), which shifts
    both sides together and shows the model takes that start or stop inside a segment (and
    places files shorter than a segment at random positions in it);
  * a crop whose raw RMS is below `silence_db` is redrawn (up to `SILENCE_DRAWS` candidates,
    then the loudest candidate is used, so a quiet file never stalls the pipeline);
  * gain: a random gain of up to +-`gain_db` dB on both sides ("both": the mapping's level
    relationship stays as the user mixes it and the rest becomes level-independent), or on the
    raw take only ("input": the model learns to land at the user's output level whatever level
    the take was recorded at, as the original design's gain variation intended);
  * `polarity_flip`: both sides are inverted together half of the time (a mix is as good
    inverted, and an inverted take is common).
Crops of different files are mixed in a shuffle buffer of `shuffle_buffer` crops.

Evaluation: every validation file cut into consecutive segment-long windows (the last one
zero-padded), in file order; the last batch is filled up with the first windows again so no
window is dropped and every batch has the same shape.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from mixnet.data import prepare

# Candidate positions drawn per crop when skipping near-silent crops.
SILENCE_DRAWS = 16
# Files held in memory to shuffle file order before cropping (crops are shuffled again).
FILE_SHUFFLE_BUFFER = 8


def segment_length(data_config):
  """Samples per training segment and eval window."""
  return int(round(data_config.segment_seconds * data_config.sample_rate))


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


def _read(builder, split, shuffle_seed=None):
  """Examples of `split` as {"raw", "mixed"} `[time, channels]` float32 dicts."""
  read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed)
  ds = builder.as_dataset(split=split, shuffle_files=shuffle_seed is not None,
                          read_config=read_config)
  return ds.map(lambda ex: {"raw": ex["raw"], "mixed": ex["mixed"]},
                num_parallel_calls=tf.data.AUTOTUNE)


def _seeds(seed, shard_index, count):
  """`count` int seeds derived from the run seed and the host index."""
  return [int(s) for s in np.random.SeedSequence([seed, shard_index]).generate_state(count)]


def _crop_fn(data_config, crop_seed):
  """Returns fn(index, example) -> crops dict `[n, segment, channels]`; see module docstring."""
  seg = segment_length(data_config)
  shift = int(round(data_config.shift_ms / 1000.0 * data_config.sample_rate))
  gain_db = float(data_config.gain_db)
  if data_config.gain_mode not in ("both", "input"):
    raise ValueError(f"data.gain_mode must be 'both' or 'input', got {data_config.gain_mode!r}")
  gain_both = data_config.gain_mode == "both"

  def crops(index, ex):
    seeds = tf.random.experimental.stateless_split(
        tf.stack([tf.constant(crop_seed, tf.int64), index]), num=4)
    raw, mixed = ex["raw"], ex["mixed"]
    length = tf.shape(raw)[0]
    n = tf.maximum(1, length // seg)
    pad = [[shift, shift + tf.maximum(0, seg - length)], [0, 0]]
    raw, mixed = tf.pad(raw, pad), tf.pad(mixed, pad)
    starts = tf.random.stateless_uniform(
        [n, SILENCE_DRAWS], seeds[0], minval=0, maxval=tf.shape(raw)[0] - seg + 1,
        dtype=tf.int32)
    power = tf.cast(tf.reduce_mean(tf.square(raw), axis=-1), tf.float64)
    energy = tf.concat([tf.zeros([1], tf.float64), tf.cumsum(power)], axis=0)
    level_db = 10.0 * tf.math.log(
        (tf.gather(energy, starts + seg) - tf.gather(energy, starts)) / seg + 1e-20) / np.log(10.0)
    loud = level_db >= data_config.silence_db
    pick = tf.where(tf.reduce_any(loud, axis=1),
                    tf.argmax(tf.cast(loud, tf.int32), axis=1, output_type=tf.int32),
                    tf.argmax(level_db, axis=1, output_type=tf.int32))
    start = tf.gather(starts, pick, batch_dims=1)
    window = start[:, None] + tf.range(seg)[None, :]
    raw_ntc, mixed_ntc = tf.gather(raw, window), tf.gather(mixed, window)
    gain = 10.0 ** (tf.random.stateless_uniform(
        [n, 1, 1], seeds[1], minval=-gain_db, maxval=gain_db) / 20.0)
    sign = tf.ones([n, 1, 1])
    if data_config.polarity_flip:
      sign = tf.where(tf.random.stateless_uniform([n, 1, 1], seeds[2]) < 0.5, -1.0, 1.0)
    raw_ntc = raw_ntc * gain * sign
    mixed_ntc = mixed_ntc * (gain if gain_both else 1.0) * sign
    return {"raw": raw_ntc, "mixed": mixed_ntc}

  return crops


def create_train_dataset(data_config, data_dir, batch_size, seed, shard_index=0, num_shards=1):
  """Infinite, seeded dataset of random training crops; see the module docstring.

  Args:
    data_config: `config.data`.
    data_dir: where `prepare` wrote the shards.
    batch_size: host-local batch size.
    seed: run seed; the same seed (and host) gives the same batches.
    shard_index, num_shards: this host's index and the host count.

  Returns:
    tf.data.Dataset of {"raw", "mixed"}: float32 `[batch_size, segment, channels]`.
  """
  builder = open_dataset(data_config, data_dir)
  split = _host_split(builder, "train", shard_index, num_shards)
  file_seed, crop_seed, shuffle_seed = _seeds(seed, shard_index, 3)
  ds = _read(builder, split, shuffle_seed=file_seed)
  ds = ds.shuffle(FILE_SHUFFLE_BUFFER, seed=file_seed).repeat().enumerate()
  ds = ds.map(_crop_fn(data_config, crop_seed), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.unbatch().shuffle(data_config.shuffle_buffer, seed=shuffle_seed)
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_deterministic_options())


def create_eval_dataset(data_config, data_dir, batch_size, shard_index=0, num_shards=1):
  """Finite, deterministic dataset of fixed windows over the validation files.

  Falls back to the training files (with a warning) when there is no validation split, so tiny
  data sets still evaluate.

  Returns:
    tf.data.Dataset of {"raw", "mixed"}: float32 `[batch_size, segment, channels]`; every
    window of this host's files appears at least once.
  """
  builder = open_dataset(data_config, data_dir)
  split = "validation"
  if split not in builder.info.splits or builder.info.splits[split].num_examples == 0:
    logging.warning("%s has no validation files; evaluating on the training files",
                    builder.data_dir)
    split = "train"
  seg = segment_length(data_config)

  def windows(ex):
    length = tf.shape(ex["raw"])[0]
    padded = (length + seg - 1) // seg * seg
    frame = lambda x: tf.reshape(tf.pad(x, [[0, padded - length], [0, 0]]),
                                 [-1, seg, data_config.channels])
    return {"raw": frame(ex["raw"]), "mixed": frame(ex["mixed"])}

  ds = _read(builder, _host_split(builder, split, shard_index, num_shards))
  ds = ds.map(windows).unbatch()
  ds = ds.concatenate(ds.repeat().take(batch_size - 1))
  ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_deterministic_options())


def _deterministic_options():
  options = tf.data.Options()
  options.deterministic = True
  return options

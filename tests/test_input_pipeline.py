"""tf.data pipelines: synchronized crops, augmentation, seeding, host sharding, eval windows."""

import ast
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds

from experiments import base
from mixnet import dsp, input_pipeline
from mixnet.data import prepare, tfds_builder

SR = 16000
SEG = 4000  # 0.25 s
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each file's samples are 0 or its level (the short file: 0.6 or 1.0 times its level), so with
# gain and flips off a crop's largest magnitude says which file it came from.
TRAIN_LEVELS = (0.1, 0.2, 0.3, 0.4)
SHORT_LEVEL = 0.9
VAL_LEVELS = (0.6, 0.7)


def _write_pair(raw_dir, mixed_dir, name, raw_t):
  """Writes raw and mixed = 0.5 * raw as float WAVs, so stored values are exact."""
  sf.write(os.path.join(raw_dir, name + ".wav"), raw_t, SR, subtype="FLOAT")
  sf.write(os.path.join(mixed_dir, name + ".wav"), 0.5 * raw_t, SR, subtype="FLOAT")


def _names(split, count, val_fraction):
  names = (f"take{i}" for i in range(1000))
  return [n for n in names if tfds_builder.split_of(n, val_fraction) == split][:count]


def _data_config(**overrides):
  data = base.get_config("tiny").data
  data.sample_rate = SR
  data.segment_seconds = SEG / SR
  data.update(overrides)
  return data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """Prepared pairs with mixed = 0.5 * raw: 4 train files of 1 s, one of 0.15 s, 2 val of 1.1 s."""
  folder = tmp_path_factory.mktemp("pipeline")
  raw_dir, mixed_dir = str(folder / "raw"), str(folder / "mixed")
  os.makedirs(raw_dir)
  os.makedirs(mixed_dir)
  rng = np.random.default_rng(0)
  train_names = _names("train", 5, 0.3)
  for name, level in zip(train_names, TRAIN_LEVELS, strict=False):
    _write_pair(raw_dir, mixed_dir, name, level * rng.integers(0, 2, SR).astype(np.float32))
  short = SHORT_LEVEL * (0.6 + 0.4 * rng.integers(0, 2, int(0.15 * SR)))
  _write_pair(raw_dir, mixed_dir, train_names[4], short.astype(np.float32))
  for name, level in zip(_names("validation", 2, 0.3), VAL_LEVELS, strict=True):
    raw_t = level * rng.integers(0, 2, int(1.1 * SR)).astype(np.float32)
    _write_pair(raw_dir, mixed_dir, name, raw_t)
  data_dir = str(folder / "data")
  summary = prepare.prepare_dataset(raw_dir, mixed_dir, data_dir, sample_rate=SR,
                                    val_fraction=0.3, show_progress=False)
  assert summary["totals"]["kept"] == 7 and summary["totals"]["validation_pairs"] == 2
  assert all(r["offset_samples"] == 0 and r["polarity"] == 1 for r in summary["pairs"])
  return data_dir


def _batches(data_config, data_dir, count, batch_size=8, seed=0, **kwargs):
  ds = input_pipeline.create_train_dataset(data_config, data_dir, batch_size, seed, **kwargs)
  return [b for b, _ in zip(ds.as_numpy_iterator(), range(count), strict=False)]


def _file_level(crop_tc):
  peak = float(np.max(np.abs(crop_tc)))
  return round(peak, 3)


def test_train_batches_have_the_promised_layout(data_dir):
  (batch,) = _batches(_data_config(), data_dir, 1, batch_size=5)
  assert set(batch) == {"raw", "mixed"}
  for x in batch.values():
    assert x.shape == (5, SEG, 1) and x.dtype == np.float32


def test_context_is_the_audio_before_the_same_segment(data_dir):
  """`context_seconds`: the crop grows to the left; its segment is the context-free crop."""
  plain = _data_config(gain_mode="both", gain_db=6.0, polarity_flip=True)
  warm = _data_config(gain_mode="both", gain_db=6.0, polarity_flip=True, context_seconds=0.1)
  context = input_pipeline.context_length(warm)
  assert context == 1600
  files = 0
  for without, with_context in zip(_batches(plain, data_dir, 4), _batches(warm, data_dir, 4),
                                   strict=True):
    assert with_context["raw"].shape == (8, context + SEG, 1)
    for key in ("raw", "mixed"):
      np.testing.assert_array_equal(with_context[key][:, context:], without[key])
    np.testing.assert_allclose(with_context["mixed"], 0.5 * with_context["raw"], atol=1e-9)
    for crop_tc, segment_tc in zip(with_context["raw"], without["raw"], strict=True):
      # The context is the same file's audio (one level) or zeros before the file's start.
      levels = np.unique(np.round(np.abs(crop_tc[:context][crop_tc[:context] != 0]), 4))
      assert set(levels) <= set(np.unique(np.round(np.abs(segment_tc[segment_tc != 0]), 4)))
      files += len(levels) > 0
  assert files > 16


def test_crops_stay_in_sync_with_gain_on_both_sides(data_dir):
  config = _data_config(gain_mode="both", gain_db=6.0, polarity_flip=True, shift_ms=20.0)
  for batch in _batches(config, data_dir, 20):
    np.testing.assert_allclose(batch["mixed"], 0.5 * batch["raw"], rtol=1e-6, atol=1e-9)


def test_input_gain_scales_the_raw_take_only(data_dir):
  config = _data_config(gain_mode="input", gain_db=6.0, polarity_flip=False)
  gains = []
  for batch in _batches(config, data_dir, 10):
    for raw_tc, mixed_tc in zip(batch["raw"], batch["mixed"], strict=True):
      nonzero = mixed_tc != 0
      ratio = 0.5 * raw_tc[nonzero] / mixed_tc[nonzero]
      np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # Same gain on every sample.
      assert _file_level(2 * mixed_tc) in TRAIN_LEVELS + (SHORT_LEVEL,)  # Mix untouched.
      gains.append(ratio[0])
  gains_db = 20 * np.log10(gains)
  assert gains_db.min() >= -6.0 - 1e-4 and gains_db.max() <= 6.0 + 1e-4
  assert gains_db.max() - gains_db.min() > 6.0


def test_polarity_flip_inverts_both_sides_about_half_the_time(data_dir):
  signs = []
  for flip in (True, False):
    config = _data_config(gain_db=0.0, polarity_flip=flip)
    for batch in _batches(config, data_dir, 8):
      for raw_tc in batch["raw"]:
        assert raw_tc.min() >= 0.0 or raw_tc.max() <= 0.0  # One sign per crop.
        if flip:
          signs.append(raw_tc.sum() < 0)
        else:
          assert raw_tc.min() >= 0.0
  assert 0.3 < np.mean(signs) < 0.7


def test_same_seed_same_batches(data_dir):
  config = _data_config()
  first, again = _batches(config, data_dir, 3), _batches(config, data_dir, 3)
  other = _batches(config, data_dir, 3, seed=1)
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a["raw"], b["raw"])
  assert not np.array_equal(first[0]["raw"], other[0]["raw"])


def test_hosts_read_disjoint_files(data_dir):
  config = _data_config(gain_db=0.0, polarity_flip=False)
  seen = []
  for index in (0, 1):
    levels = {_file_level(x) for b in _batches(config, data_dir, 12, shard_index=index,
                                                num_shards=2) for x in b["raw"]}
    seen.append(levels)
  assert seen[0] and seen[1] and not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(TRAIN_LEVELS) | {SHORT_LEVEL}


def test_more_hosts_than_files_read_everything(data_dir):
  config = _data_config(gain_db=0.0, polarity_flip=False)
  (batch,) = _batches(config, data_dir, 1, shard_index=7, num_shards=8)
  assert batch["raw"].shape == (8, SEG, 1)
  with pytest.raises(ValueError, match="shard_index"):
    _batches(config, data_dir, 1, shard_index=2, num_shards=2)


def test_shift_places_short_files_at_varying_positions(data_dir):
  config = _data_config(gain_db=0.0, polarity_flip=False, shift_ms=20.0)
  shift, short_len = int(0.02 * SR), int(0.15 * SR)
  starts = set()
  for batch in _batches(config, data_dir, 40):
    for raw_tc in batch["raw"][:, :, 0]:
      if _file_level(raw_tc) != SHORT_LEVEL:
        continue
      support = np.flatnonzero(raw_tc)
      assert support[-1] - support[0] + 1 == len(support)  # One contiguous piece.
      assert short_len - shift <= len(support) <= short_len
      assert support[0] <= shift
      starts.add(int(support[0]) - (short_len - len(support)))
  assert len(starts) > 3


def test_near_silent_crops_are_skipped(tmp_path):
  raw_t = np.zeros(2 * SR, np.float32)
  raw_t[-SR // 2:] = 0.3 * np.random.default_rng(1).standard_normal(SR // 2)
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
  _write_pair(str(tmp_path / "raw"), str(tmp_path / "mixed"), "mostly_silent", raw_t)
  prepare.prepare_dataset(str(tmp_path / "raw"), str(tmp_path / "mixed"), str(tmp_path / "d"),
                          sample_rate=SR, val_fraction=0.0, show_progress=False)
  silent_share = {}
  for silence_db in (-50.0, -400.0):
    config = _data_config(silence_db=silence_db, gain_db=0.0, shift_ms=0.0)
    crops = np.concatenate([b["raw"] for b in _batches(config, str(tmp_path / "d"), 10)])
    rms_db = 10 * np.log10(np.mean(crops**2, axis=(1, 2)) + 1e-20)
    silent_share[silence_db] = np.mean(rms_db < -50.0)
  assert silent_share[-400.0] > 0.4
  assert silent_share[-50.0] < 0.1


def test_resumed_pipeline_starts_at_the_step_and_repeats_the_batches(data_dir):
  # The batch of a step depends on (seed, host, step) only: a pipeline started at step 5 gives
  # the uninterrupted pipeline's batches 6, 7, ... without producing the earlier ones.
  config = _data_config()
  straight = _batches(config, data_dir, 8, batch_size=3)
  resumed = _batches(config, data_dir, 3, batch_size=3, start_step=5)
  for a, b in zip(straight[5:], resumed, strict=True):
    np.testing.assert_array_equal(a["raw"], b["raw"])
    np.testing.assert_array_equal(a["mixed"], b["mixed"])
  far = _batches(config, data_dir, 1, batch_size=3, start_step=10**9)[0]
  assert far["raw"].shape == (3, SEG, 1) and np.abs(far["raw"]).max() > 0


def test_each_pass_visits_every_file_in_proportion_to_its_length(data_dir):
  # 4 files of 1 s hold 4 segments each, the 0.15-s file one slot: a pass is 17 crops.
  config = _data_config(gain_db=0.0, polarity_flip=False)
  (batch,) = _batches(config, data_dir, 1, batch_size=17)
  levels = [_file_level(x) for x in batch["raw"]]
  assert sorted(levels) == sorted([lv for lv in TRAIN_LEVELS for _ in range(4)] + [SHORT_LEVEL])
  assert levels[:4] != [levels[0]] * 4  # Consecutive crops come from different files.


def _eval_windows(config, data_dir, batch_size, **kwargs):
  ds = input_pipeline.create_eval_dataset(config, data_dir, batch_size=batch_size, **kwargs)
  return list(ds.as_numpy_iterator())


def test_eval_windows_cover_every_validation_file_in_order(data_dir):
  config = _data_config()
  batches = _eval_windows(config, data_dir, 4)
  again = _eval_windows(config, data_dir, 4)
  builder = input_pipeline.open_dataset(config, data_dir)
  expected, files, starts, valid = [], [], [], []
  for index, ex in enumerate(tfds.as_numpy(builder.as_dataset(split="validation",
                                                              shuffle_files=False))):
    raw_t = ex["raw"][:, 0]
    assert len(raw_t) == int(1.1 * SR)
    padded = np.pad(raw_t, (0, -len(raw_t) % SEG))
    expected.extend(padded.reshape(-1, SEG))
    count = len(padded) // SEG
    files += [index] * count
    starts += list(range(0, count * SEG, SEG))
    valid += [SEG] * (count - 1) + [len(raw_t) - (count - 1) * SEG]
  assert len(expected) == 10 and [len(b["raw"]) for b in batches] == [4, 4, 2]
  windows = np.concatenate([b["raw"][:, :, 0] for b in batches])
  np.testing.assert_array_equal(windows, np.stack(expected))
  for key, values in (("file", files), ("start", starts), ("valid", valid)):
    np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]), values)
  mixed = np.concatenate([b["mixed"][:, :, 0] for b in batches])
  np.testing.assert_array_equal(mixed, 0.5 * windows)
  for a, b in zip(batches, again, strict=True):
    np.testing.assert_array_equal(a["raw"], b["raw"])
  host1 = _eval_windows(config, data_dir, 4, shard_index=1, num_shards=2)
  assert set(np.concatenate([b["file"] for b in host1])) == {input_pipeline.FILE_ID_STRIDE}


def test_eval_raw_windows_carry_the_context_before_them(data_dir):
  """With `context_seconds`, raw window i is the file's samples [start - context, start + seg)."""
  plain = _eval_windows(_data_config(), data_dir, 4)
  warm = _eval_windows(_data_config(context_seconds=0.1), data_dir, 4)
  context = 1600
  raw_t = np.concatenate([b["raw"][:, :, 0] for b in plain]).reshape(-1)[:int(1.1 * SR)]
  first_file = np.pad(raw_t, (context, 0))
  for key in ("mixed", "file", "start", "valid"):
    np.testing.assert_array_equal(np.concatenate([b[key] for b in warm]),
                                  np.concatenate([b[key] for b in plain]))
  windows = np.concatenate([b["raw"][:, :, 0] for b in warm])
  assert windows.shape == (10, context + SEG)
  np.testing.assert_array_equal(windows[:, context:],
                                np.concatenate([b["raw"][:, :, 0] for b in plain]))
  for i in range(4):  # the first file's five windows, but the last (zero-padded past the end)
    np.testing.assert_array_equal(windows[i], first_file[i * SEG:i * SEG + context + SEG])
  assert not np.any(windows[0, :context]) and np.any(windows[1, :context])


def test_eval_uses_train_files_without_validation(tmp_path):
  rng = np.random.default_rng(2)
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
  _write_pair(str(tmp_path / "raw"), str(tmp_path / "mixed"), "only",
              0.2 * rng.standard_normal(SR).astype(np.float32))
  prepare.prepare_dataset(str(tmp_path / "raw"), str(tmp_path / "mixed"), str(tmp_path / "d"),
                          sample_rate=SR, val_fraction=0.0, show_progress=False)
  config = _data_config()
  assert not input_pipeline.has_validation(input_pipeline.open_dataset(config, str(tmp_path / "d")))
  (batch,) = _eval_windows(config, str(tmp_path / "d"), 8)  # The 1-s file: 4 windows.
  assert batch["raw"].shape == (4, SEG, 1) and list(batch["valid"]) == [SEG] * 4


def test_staging_brings_every_take_to_the_reference_loudness(data_dir):
  """Chain models see each take at `input_lufs` (whole-take loudness), the mix untouched."""
  config = _data_config()
  builder = input_pipeline.open_dataset(config, data_dir)
  names, raw_tc, mixed_tc, starts, lengths = input_pipeline.load_host_files(builder, "train")
  staged = input_pipeline.load_host_files(builder, "train", input_lufs=-20.0)
  assert staged[0] == names
  np.testing.assert_array_equal(staged[2], mixed_tc)
  for start, length in zip(starts, lengths, strict=True):
    take, after = raw_tc[start:start + length], staged[1][start:start + length]
    if dsp.integrated_loudness(take, SR) <= dsp.loudness.LOUDNESS_FLOOR_LUFS:
      np.testing.assert_array_equal(after, take)  # The 0.15-s file is too short to measure.
    else:
      assert dsp.integrated_loudness(after, SR) == pytest.approx(-20.0, abs=0.01)
  plain = _data_config(gain_db=0.0, polarity_flip=False)
  batch = _batches(plain, data_dir, 1, input_lufs=-20.0)[0]
  assert set(np.unique(batch["raw"])) <= set(np.unique(staged[1]))
  assert not set(np.unique(batch["raw"])) <= set(np.unique(raw_tc))
  windows = _eval_windows(config, data_dir, 4, input_lufs=-20.0)
  for file_id in (0, 1):
    take = np.concatenate([w["raw"][i, :v] for w in windows
                           for i, v in enumerate(w["valid"]) if w["file"][i] == file_id])
    assert dsp.integrated_loudness(take, SR) == pytest.approx(-20.0, abs=0.01)


def test_config_must_match_the_prepared_data(data_dir, tmp_path):
  with pytest.raises(prepare.PrepareError, match="sample_rate=16000"):
    input_pipeline.create_train_dataset(_data_config(sample_rate=22050), data_dir, 2, 0)
  with pytest.raises(prepare.PrepareError, match="channels"):
    input_pipeline.create_eval_dataset(_data_config(channels=2), data_dir, 2)
  with pytest.raises(prepare.PrepareError, match="no prepared dataset"):
    input_pipeline.create_train_dataset(_data_config(), str(tmp_path), 2, 0)
  with pytest.raises(ValueError, match="gain_mode"):
    input_pipeline.create_train_dataset(_data_config(gain_mode="mix"), data_dir, 2, 0)


def _source(module):
  """Path of the source of mixnet module or package `module`, or None if it is not ours."""
  base = os.path.join(REPO, *module.split("."))
  for path in (base + ".py", os.path.join(base, "__init__.py")):
    if os.path.exists(path):
      return path
  return None


def _imports(module):
  """Absolute names of the modules `module` imports, anywhere in its source."""
  path = _source(module)
  with open(path) as f:
    tree = ast.parse(f.read())
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      parent = package.rsplit(".", node.level - 1)[0] if node.level else ""
      name = ".".join(x for x in (parent, node.module) if x)
      found.add(name)
      found.update(f"{name}.{alias.name}" for alias in node.names)
  return found


def test_pipeline_code_does_not_import_jax():
  # TensorFlow itself may import jax when it is installed; what matters is that no mixnet code
  # on the pipeline's path does (it runs in tf.data threads beside the JAX training loop).
  todo, seen = ["mixnet.input_pipeline"], set()
  while todo:
    module = todo.pop()
    # `import mixnet` itself is cheap: its only import (AudioProcessor) is lazy, in a module
    # __getattr__ that pipeline code never triggers (tests/test_api.py checks it imports no jax).
    if module in seen or module == "mixnet" or _source(module) is None:
      continue
    seen.add(module)
    imports = _imports(module)
    assert not {m for m in imports if m.split(".")[0] in ("jax", "flax", "optax")}, module
    todo.extend(m for m in imports if m.startswith("mixnet"))
  assert {"mixnet.input_pipeline", "mixnet.data.prepare", "mixnet.data.align",
          "mixnet.dsp"} <= seen

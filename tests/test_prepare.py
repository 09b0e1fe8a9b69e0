"""prepare_dataset / the TFDS builder on messy folders: every kind of bad input, shards, reuse."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds
from helpers import shift

from mixnet import audio, dsp, errors
from mixnet.data import align, pairing, prepare, synthetic, tfds_builder

SR = 16000
SECONDS = 1.5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _take(seed, seconds=SECONDS):
  raw_tc = synthetic.synth_vocal(seconds, SR, seed=(21, seed))
  return raw_tc, dsp.process(raw_tc, SR, "intimate")


def _write_messy(folder):
  """Raw and mixed folders with one pair (or stray file) per kind of trouble."""
  raw_dir, mixed_dir = os.path.join(folder, "raw"), os.path.join(folder, "mixed")
  os.makedirs(raw_dir)
  os.makedirs(mixed_dir)
  save_raw = lambda name, x: audio.save(os.path.join(raw_dir, name), x, SR)
  save_mix = lambda name, x, sr=SR: audio.save(os.path.join(mixed_dir, name), x, sr)

  raw, mix = _take(0)
  save_raw("clean.wav", raw)
  save_mix("clean.wav", mix)
  raw, mix = _take(1)  # Mix exported at 22.05 kHz, 20 ms late, named with a suffix.
  save_raw("Resampled_dry.wav", raw)
  save_mix("resampled_mix.wav", audio.resample(shift(mix, 320), SR, 22050), 22050)
  raw, _ = _take(2)  # Mono take, stereo mix, 15 ms early.
  save_raw("stereo.wav", raw)
  save_mix("Stereo.wav", shift(dsp.process(np.repeat(raw, 2, axis=1), SR, "intimate"), -240))
  raw, mix = _take(3)
  save_raw("inverted.wav", raw)
  save_mix("inverted.wav", -shift(mix, 112))
  raw, _ = _take(4)  # The mix rings on 0.5 s after the take.
  save_raw("tail.wav", raw)
  save_mix("tail.wav", dsp.process(np.pad(raw, ((0, SR // 2), (0, 0))), SR, "intimate"))
  raw, mix = _take(5)  # The mix stops early, in the middle of the performance.
  save_raw("cut.wav", raw)
  save_mix("cut.wav", mix[:int(0.4 * len(mix))])
  raw, _ = _take(12, seconds=1.0)  # A 1-s take with an 8-s "mix": mostly another song's time.
  save_raw("long.wav", raw)
  save_mix("long.wav", dsp.process(np.pad(raw, ((0, 7 * SR), (0, 0))), SR, "intimate"))
  raw, mix = _take(13)  # The raw take's last 0.4 s is room noise only: not a cut.
  raw[-int(0.4 * SR):] = 1e-4 * np.random.default_rng(0).standard_normal((int(0.4 * SR), 1))
  save_raw("trimmed.wav", raw)
  save_mix("trimmed.wav", mix[:-int(0.4 * SR)])
  raw, mix = _take(6)
  save_raw("broken.wav", raw)
  with open(os.path.join(mixed_dir, "broken.wav"), "wb") as f:
    f.write(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
  raw, mix = _take(7)
  raw[100:110] = np.nan
  sf.write(os.path.join(raw_dir, "nan.wav"), raw, SR, subtype="FLOAT")
  save_mix("nan.wav", mix)
  save_raw("silence.wav", np.zeros((SR, 1), np.float32))
  save_mix("silence.wav", np.zeros((SR, 1), np.float32))
  raw, mix = _take(8)  # 300 ms late: beyond the 100 ms searched.
  save_raw("far.wav", raw)
  save_mix("far.wav", shift(mix, int(0.3 * SR)))
  save_raw("lonely.wav", raw)
  save_mix("orphan_mix.wav", mix)
  with open(os.path.join(raw_dir, "notes.txt"), "w") as f:
    f.write("not audio")
  return raw_dir, mixed_dir


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
  """(raw_dir, mixed_dir, data_dir, summary) of the messy folders, prepared once."""
  folder = str(tmp_path_factory.mktemp("messy"))
  raw_dir, mixed_dir = _write_messy(folder)
  data_dir = os.path.join(folder, "data")
  summary = prepare.prepare_dataset(raw_dir, mixed_dir, data_dir, sample_rate=SR,
                                    val_fraction=0.3, show_progress=False)
  return raw_dir, mixed_dir, data_dir, summary


def _row(summary, name):
  (row,) = [r for r in summary["pairs"] if r["name"].lower() == name]
  return row


def _stored(summary, name):
  """The (raw, mixed) arrays stored for pair `name`."""
  builder = tfds.builder_from_directory(summary["dataset_dir"])
  for split in builder.info.splits:
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      if ex["name"].decode().lower() == name:
        return ex["raw"], ex["mixed"]
  raise AssertionError(f"{name} not stored")


def _assert_aligned(raw_tc, mixed_tc):
  assert raw_tc.shape == mixed_tc.shape and raw_tc.dtype == np.float32
  offset, confidence, polarity = align.estimate_offset(raw_tc, mixed_tc, SR)
  assert abs(offset) <= 1 and polarity == 1 and confidence > 0.5


def test_clean_pair_kept_unshifted(messy):
  row = _row(messy[3], "clean")
  assert row["kept"] and row["offset_samples"] == 0 and row["polarity"] == 1
  assert row["confidence"] > 0.5 and row["reason"] == ""
  _assert_aligned(*_stored(messy[3], "clean"))


def test_different_sample_rates_are_resampled(messy):
  row = _row(messy[3], "resampled")
  assert (row["raw_sample_rate"], row["mixed_sample_rate"]) == (SR, 22050)
  assert row["kept"] and abs(row["offset_samples"] - 320) <= 1
  assert row["mixed_file"].endswith("resampled_mix.wav")
  _assert_aligned(*_stored(messy[3], "resampled"))


def test_mono_raw_with_stereo_mix(messy):
  row = _row(messy[3], "stereo")
  assert (row["raw_channels"], row["mixed_channels"]) == (1, 2)
  assert row["kept"] and abs(row["offset_samples"] + 240) <= 1
  raw_tc, mixed_tc = _stored(messy[3], "stereo")
  assert raw_tc.shape[1] == 1
  _assert_aligned(raw_tc, mixed_tc)


def test_stereo_output_copies_a_mono_take(tmp_path):
  raw_tc, _ = _take(9, seconds=1.0)
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
  audio.save(str(tmp_path / "raw" / "a.wav"), raw_tc, SR)
  audio.save(str(tmp_path / "mixed" / "a.wav"),
             dsp.process(np.repeat(raw_tc, 2, axis=1), SR, "intimate"), SR)
  summary = prepare.prepare_dataset(str(tmp_path / "raw"), str(tmp_path / "mixed"),
                                    str(tmp_path / "data"), sample_rate=SR, channels=2,
                                    show_progress=False)
  raw_st, mixed_st = _stored(summary, "a")
  assert raw_st.shape == mixed_st.shape and raw_st.shape[1] == 2
  np.testing.assert_array_equal(raw_st[:, 0], raw_st[:, 1])


def test_polarity_inverted_mix_is_flipped_back(messy):
  row = _row(messy[3], "inverted")
  assert row["kept"] and row["polarity"] == -1 and abs(row["offset_samples"] - 112) <= 1
  _assert_aligned(*_stored(messy[3], "inverted"))


def test_a_reverb_tail_and_a_trimmed_silent_end_are_kept(messy):
  tail = _row(messy[3], "tail")
  assert tail["kept"] and tail["duration_s"] == pytest.approx(SECONDS + 0.5, abs=1e-3)
  raw_tc, mixed_tc = _stored(messy[3], "tail")
  assert len(raw_tc) == len(mixed_tc) == int((SECONDS + 0.5) * SR)
  assert np.all(raw_tc[-SR // 4:] == 0.0) and np.any(mixed_tc[-SR // 2:] != 0.0)
  trimmed = _row(messy[3], "trimmed")
  assert trimmed["kept"] and trimmed["reason"] == ""
  assert trimmed["duration_s"] == pytest.approx(SECONDS - 0.4, abs=1e-3)


def test_lengths_beyond_a_tail_or_latency_are_left_out_with_the_reason(messy):
  long = _row(messy[3], "long")
  assert not long["kept"]
  assert "mix runs 7.0 s longer than the raw take" in long["reason"]
  assert "max_tail_s=5" in long["reason"]
  cut = _row(messy[3], "cut")
  assert not cut["kept"] and "mix ends 0.9 s before the raw take" in cut["reason"]
  report = prepare.format_report(messy[3])
  (line,) = [x for x in report.splitlines() if x.startswith("long ")]
  assert " NO " in line and "length mismatch" in line


def test_keep_length_mismatch_keeps_them(messy, tmp_path):
  raw_dir, mixed_dir, _, _ = messy
  summary = prepare.prepare_dataset(raw_dir, mixed_dir, str(tmp_path), sample_rate=SR,
                                    val_fraction=0.3, keep_length_mismatch=True,
                                    show_progress=False)
  cut, long = _row(summary, "cut"), _row(summary, "long")
  assert cut["kept"] and "(kept: keep_length_mismatch)" in cut["reason"]
  assert long["kept"] and long["duration_s"] == pytest.approx(8.0, abs=1e-3)
  assert cut["duration_s"] == pytest.approx(0.4 * SECONDS, abs=1e-3)
  raw_tc, mixed_tc = _stored(summary, "cut")
  assert len(raw_tc) == len(mixed_tc) == int(0.4 * int(SECONDS * SR))
  assert summary["totals"]["kept"] == 8


def test_unreadable_file_in_the_middle_is_reported_and_the_rest_builds(messy):
  row = _row(messy[3], "broken")
  assert not row["kept"] and row["reason"].startswith("unreadable")
  assert "broken.wav" in row["reason"]
  assert messy[3]["totals"]["kept"] == 6


def test_nan_in_a_file_is_reported(messy):
  row = _row(messy[3], "nan")
  assert not row["kept"] and "NaN" in row["reason"] and "nan.wav" in row["reason"]


def test_silent_pair_is_left_out(messy):
  row = _row(messy[3], "silence")
  assert not row["kept"] and row["reason"].startswith("silent")


def test_offset_beyond_max_shift_is_left_out_with_a_hint(messy):
  row = _row(messy[3], "far")
  assert not row["kept"] and row["confidence"] < 0.3
  assert "beyond max_shift_ms=100" in row["reason"] and "300.0 ms" in row["reason"]


def test_keep_low_confidence_keeps_the_far_pair(messy, tmp_path):
  raw_dir, mixed_dir, _, _ = messy
  summary = prepare.prepare_dataset(raw_dir, mixed_dir, str(tmp_path), sample_rate=SR,
                                    val_fraction=0.3, keep_low_confidence=True,
                                    show_progress=False)
  row = _row(summary, "far")
  assert row["kept"] and "keep_low_confidence" in row["reason"]
  assert summary["totals"]["kept"] == 7


def test_unpaired_and_ignored_files_are_reported(messy):
  summary = messy[3]
  assert summary["unpaired_raw"] == ["lonely.wav"]
  assert summary["unpaired_mixed"] == ["orphan_mix.wav"]
  assert summary["ignored"] == ["notes.txt"]
  report = prepare.format_report(summary)
  for text in ("lonely.wav", "orphan_mix.wav", "far", "NO", "validation", "kept: 6"):
    assert text in report


def test_shards_summary_and_pointer_exist_on_disk(messy):
  _, _, data_dir, summary = messy
  dataset_dir = summary["dataset_dir"]
  assert dataset_dir.startswith(os.path.join(data_dir, "paired_vocals"))
  assert sorted(os.listdir(data_dir)) == ["paired_vocals", prepare.POINTER_FILE]
  shards = glob.glob(os.path.join(dataset_dir, "paired_vocals-*.tfrecord-*"))
  assert any("-train.tfrecord" in s for s in shards)
  assert all(os.path.getsize(s) > SR * 4 for s in shards)
  with open(os.path.join(dataset_dir, prepare.SUMMARY_FILE)) as f:
    on_disk = json.load(f)
  assert on_disk["totals"] == summary["totals"] and len(on_disk["pairs"]) == 12
  assert prepare.find_prepared(data_dir)[0] == os.path.normpath(dataset_dir)
  builder = tfds.builder_from_directory(dataset_dir)
  stored = sum(s.num_examples for s in builder.info.splits.values())
  assert stored == summary["totals"]["kept"]


def test_split_is_a_deterministic_hash_of_the_name(messy):
  summary = messy[3]
  kept = [r for r in summary["pairs"] if r["kept"]]
  assert {r["split"] for r in kept} == {"train", "validation"}
  for r in kept:
    assert r["split"] == tfds_builder.split_of(r["name"], 0.3)
    assert r["split"] == tfds_builder.split_of(r["name"].upper(), 0.3)
  builder = tfds.builder_from_directory(summary["dataset_dir"])
  assert builder.info.splits["validation"].num_examples == sum(
      r["split"] == "validation" for r in kept)
  assert summary["totals"]["validation_names"] == sorted(
      r["name"] for r in kept if r["split"] == "validation")
  names = [f"take_{i}" for i in range(2000)]
  share = np.mean([tfds_builder.split_of(n, 0.1) == "validation" for n in names])
  assert 0.08 < share < 0.12
  assert [tfds_builder.split_of(n, 0.1) for n in names[:50]] == [
      tfds_builder.split_of(n, 0.1) for n in names[:50]]


def test_second_call_reuses_shards_and_changes_rebuild(messy, tmp_path):
  raw_dir, mixed_dir, data_dir, summary = messy
  assert summary["reused"] is False
  shard = glob.glob(os.path.join(summary["dataset_dir"], "*.tfrecord-*"))[0]
  mtime = os.path.getmtime(shard)
  again = prepare.prepare_dataset(raw_dir, mixed_dir, data_dir, sample_rate=SR,
                                  val_fraction=0.3, show_progress=False)
  assert again["reused"] is True and again["dataset_dir"] == summary["dataset_dir"]
  assert again["pairs"] == summary["pairs"] and os.path.getmtime(shard) == mtime
  other = tfds_builder.make_config(raw_dir, mixed_dir, sample_rate=SR, channels=1,
                                   max_shift_ms=100.0, val_fraction=0.2, min_confidence=0.3,
                                   keep_low_confidence=False)
  assert other.name not in summary["dataset_dir"]
  same = tfds_builder.make_config(raw_dir, mixed_dir, sample_rate=SR, channels=1,
                                  max_shift_ms=100.0, val_fraction=0.3, min_confidence=0.3,
                                  keep_low_confidence=False)
  assert same.name in summary["dataset_dir"]


def test_adding_a_file_changes_the_dataset(tmp_path):
  raw_tc, mix_tc = _take(10, seconds=1.0)
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
  audio.save(str(tmp_path / "raw" / "a.wav"), raw_tc, SR)
  audio.save(str(tmp_path / "mixed" / "a.wav"), mix_tc, SR)
  args = (str(tmp_path / "raw"), str(tmp_path / "mixed"), str(tmp_path / "data"))
  first = prepare.prepare_dataset(*args, sample_rate=SR, show_progress=False)
  audio.save(str(tmp_path / "raw" / "b.wav"), raw_tc, SR)
  audio.save(str(tmp_path / "mixed" / "b.wav"), mix_tc, SR)
  second = prepare.prepare_dataset(*args, sample_rate=SR, show_progress=False)
  assert second["dataset_dir"] != first["dataset_dir"] and not second["reused"]
  assert second["totals"]["kept"] == 2
  assert prepare.find_prepared(args[2])[0] == os.path.normpath(second["dataset_dir"])


@pytest.mark.parametrize("case", ["missing", "empty", "no_pairs"])
def test_missing_empty_and_unpaired_folders_raise(tmp_path, case):
  raw_dir, mixed_dir = tmp_path / "raw", tmp_path / "mixed"
  if case != "missing":
    os.makedirs(raw_dir)
    os.makedirs(mixed_dir)
    audio.save(str(raw_dir / "a.wav"), np.full((100, 1), 0.1, np.float32), SR)
  if case == "no_pairs":
    audio.save(str(mixed_dir / "b.wav"), np.full((100, 1), 0.1, np.float32), SR)
  message = {"missing": "does not exist", "empty": "no audio files",
             "no_pairs": "matching name"}[case]
  with pytest.raises(pairing.PairingError, match=message):
    prepare.prepare_dataset(str(raw_dir), str(mixed_dir), str(tmp_path / "data"),
                            sample_rate=SR, show_progress=False)


def test_no_usable_pair_raises_with_reasons(tmp_path):
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
    audio.save(str(tmp_path / sub / "quiet.wav"), np.zeros((SR, 1), np.float32), SR)
  with pytest.raises(pairing.PairingError, match="no usable pair.*quiet: silent"):
    prepare.prepare_dataset(str(tmp_path / "raw"), str(tmp_path / "mixed"),
                            str(tmp_path / "data"), sample_rate=SR, show_progress=False)
  with pytest.raises(prepare.PrepareError, match="no prepared dataset"):
    prepare.find_prepared(str(tmp_path / "data"))


def test_prepare_from_config_writes_demo_pairs_once(tmp_path):
  data_config = ml_collections.ConfigDict(dict(
      raw_dir="", mixed_dir="", sample_rate=SR, channels=1, val_fraction=0.0,
      max_shift_ms=100.0, min_confidence=0.3, keep_low_confidence=False, demo_pairs=2,
      demo_seconds=1.0, demo_preset="default"))
  demo_dir, data_dir = str(tmp_path / "demo"), str(tmp_path / "data")
  summary = prepare.prepare_from_config(data_config, data_dir, demo_dir, show_progress=False)
  assert summary["totals"]["kept"] == 2 and not summary["reused"]
  raw_file = os.path.join(demo_dir, "raw", "take_000.wav")
  mtime = os.path.getmtime(raw_file)
  again = prepare.prepare_from_config(data_config, data_dir, demo_dir, show_progress=False)
  assert again["reused"] and os.path.getmtime(raw_file) == mtime
  data_config.raw_dir = os.path.join(demo_dir, "raw")
  with pytest.raises(pairing.PairingError, match="both"):
    prepare.prepare_from_config(data_config, data_dir, demo_dir)


def _cli(*flags, timeout=120):
  return subprocess.run([sys.executable, "-m", "mixnet.data.prepare", *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


def test_cli_prints_table_and_summary_and_no_library_notices(tmp_path):
  raw_tc, mix_tc = _take(11, seconds=1.0)
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
  audio.save(str(tmp_path / "raw" / "song.wav"), raw_tc, SR)
  audio.save(str(tmp_path / "mixed" / "song_mix.wav"), shift(mix_tc, 80), SR)
  os.makedirs(tmp_path / "raw" / "old")
  result = _cli(f"--raw_dir={tmp_path / 'raw'}", f"--mixed_dir={tmp_path / 'mixed'}",
                f"--data_dir={tmp_path / 'data'}", f"--sample_rate={SR}", "--val_fraction=0")
  assert result.returncode == 0, result.stderr
  assert "offset ms" in result.stdout and "pairs: 1, kept: 1" in result.stdout
  (line,) = [x for x in result.stdout.splitlines() if x.startswith("song ")]
  assert "5.00" in line and "yes" in line
  assert "aligning" in result.stderr  # The tqdm progress bar.
  # One warning line for the subfolder; TFDS's and TensorFlow's notices stay in the log file.
  warnings = [x for x in result.stderr.splitlines() if x.startswith("W")]
  assert len(warnings) == 1 and "old" in warnings[0], result.stderr
  console = result.stdout + result.stderr
  for notice in ("Downloading and preparing", "custom data configuration", "dataset_info.json",
                 "oneDNN", "I1", "Subsequent calls will reuse"):
    assert notice not in console, console
  assert "subfolders not searched" in result.stdout
  with open(tmp_path / "data" / "logs" / "prepare.INFO") as f:
    assert "custom data configuration" in f.read()


@pytest.mark.parametrize("case", ["missing", "same_folder", "data_dir_is_a_file"])
def test_cli_errors_are_one_line_with_exit_status_2(tmp_path, case):
  os.makedirs(tmp_path / "takes")
  audio.save(str(tmp_path / "takes" / "a.wav"), _take(14, seconds=0.5)[0], SR)
  (tmp_path / "file").write_text("")
  raw, mixed, data, expected = {
      "missing": ("nothere", "takes", "data", "nothere: raw folder does not exist"),
      "same_folder": ("takes", "./takes/", "data", "both the raw and the mixed folder"),
      "data_dir_is_a_file": ("takes", "takes", "file", "file: data_dir is a file"),
  }[case]
  if case == "data_dir_is_a_file":
    os.makedirs(tmp_path / "mixes")
    mixed = "mixes"
  result = subprocess.run(
      [sys.executable, "-m", "mixnet.data.prepare", f"--raw_dir={raw}", f"--mixed_dir={mixed}",
       f"--data_dir={data}"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 2, result.stderr
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith("error: ") and expected in line, line
  assert not os.path.exists(tmp_path / "data")


def test_data_dir_that_is_a_file_is_a_prepare_error(messy, tmp_path):
  raw_dir, mixed_dir, _, _ = messy
  (tmp_path / "data").write_text("")
  for call in (lambda: prepare.prepare_dataset(raw_dir, mixed_dir, str(tmp_path / "data")),
               lambda: prepare.find_prepared(str(tmp_path / "data"))):
    with pytest.raises(prepare.PrepareError, match="data: data_dir is a file, not a folder"):
      call()
  assert issubclass(prepare.PrepareError, errors.MixnetError)
  assert issubclass(tfds_builder.SettingsError, errors.MixnetError)
  with pytest.raises(tfds_builder.SettingsError, match="^channels: must be 1 or 2, got 3"):
    prepare.prepare_dataset(raw_dir, mixed_dir, str(tmp_path / "d2"), channels=3)


def test_small_sets_keep_one_validation_pair():
  names = [n for n in (f"take{i}" for i in range(200))
           if tfds_builder.split_of(n, 0.1) == "train"][:9]
  for count in range(1, 10):
    splits = tfds_builder.assign_splits(names[:count], 0.1)
    held_out = [n for n, s in splits.items() if s == "validation"]
    expected = 1 if count >= tfds_builder.MIN_PAIRS_FOR_VALIDATION else 0
    assert len(held_out) == expected, (count, splits)
    assert set(splits) == set(names[:count])
  assert tfds_builder.assign_splits(names[:5], 0.0) == dict.fromkeys(names[:5], "train")
  # The held-out pair is the same however many others there are (lowest name hash).
  assert tfds_builder.assign_splits(names[:3], 0.1) == {
      n: s for n, s in tfds_builder.assign_splits(names[:9], 0.1).items() if n in names[:3]}
  # All pairs hashed into validation: everything trains instead.
  val_names = [n for n in (f"take{i}" for i in range(200))
               if tfds_builder.split_of(n, 0.1) == "validation"][:2]
  assert tfds_builder.assign_splits(val_names, 0.1) == dict.fromkeys(val_names, "train")


def test_a_killed_build_is_cleaned_up_by_the_next(messy, tmp_path):
  raw_dir, mixed_dir, _, summary = messy
  data_dir = str(tmp_path)
  config_dir = os.path.dirname(summary["dataset_dir"]).replace(messy[2], data_dir)
  leftover = os.path.join(config_dir, f"incomplete.AB12CD_{tfds_builder.DATASET_VERSION}")
  os.makedirs(os.path.join(leftover, "sub"))
  stale_config = os.path.join(data_dir, "paired_vocals", "sr16000_ch1_000000000000")
  os.makedirs(os.path.join(stale_config, f"incomplete.XY34ZW_{tfds_builder.DATASET_VERSION}"))
  keep = os.path.join(data_dir, "paired_vocals", "notes.txt")
  with open(keep, "w") as f:
    f.write("not ours to remove")
  again = prepare.prepare_dataset(raw_dir, mixed_dir, data_dir, sample_rate=SR,
                                  val_fraction=0.3, show_progress=False)
  assert not os.path.exists(leftover) and not os.path.exists(stale_config)
  assert os.path.exists(keep)
  assert os.listdir(os.path.dirname(again["dataset_dir"])) == [tfds_builder.DATASET_VERSION]
  assert again["totals"] == summary["totals"]


def _noise_pairs(folder, count, seconds):
  """`count` pairs of white noise with mixed = 0.5 * raw (quick to make, slow enough to align)."""
  rng = np.random.default_rng(5)
  for sub in ("raw", "mixed"):
    os.makedirs(os.path.join(folder, sub))
  for i in range(count):
    raw_t = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    sf.write(os.path.join(folder, "raw", f"n{i:02d}.wav"), raw_t, SR, subtype="FLOAT")
    sf.write(os.path.join(folder, "mixed", f"n{i:02d}.wav"), 0.5 * raw_t, SR, subtype="FLOAT")
  return os.path.join(folder, "raw"), os.path.join(folder, "mixed")


def test_sigkill_during_prepare_then_rerun_leaves_no_stray_folders(tmp_path):
  raw_dir, mixed_dir = _noise_pairs(str(tmp_path), 8, 12.0)
  data_dir = str(tmp_path / "data")
  flags = (f"--raw_dir={raw_dir}", f"--mixed_dir={mixed_dir}", f"--data_dir={data_dir}",
           f"--sample_rate={SR}", "--val_fraction=0.2")
  proc = subprocess.Popen([sys.executable, "-m", "mixnet.data.prepare", *flags], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  pattern = os.path.join(data_dir, "paired_vocals", "*", "incomplete.*")
  try:
    while not glob.glob(pattern) and proc.poll() is None:
      time.sleep(0.005)
    assert proc.poll() is None, "prepare finished before it could be killed mid-build"
    time.sleep(0.2)  # into the per-pair work
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait()
  assert proc.returncode == -signal.SIGKILL
  assert glob.glob(pattern)  # what the kill left behind
  result = _cli(*flags)
  assert result.returncode == 0, result.stderr
  assert not glob.glob(pattern)
  (config_dir,) = glob.glob(os.path.join(data_dir, "paired_vocals", "*", ""))
  assert os.listdir(config_dir) == [tfds_builder.DATASET_VERSION]
  dataset_dir, _ = prepare.find_prepared(data_dir)
  builder = tfds.builder_from_directory(dataset_dir)
  stored = {}
  for split in builder.info.splits:
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      stored[ex["name"].decode()] = ex
  assert sorted(stored) == [f"n{i:02d}" for i in range(8)]
  raw_t, _ = sf.read(os.path.join(raw_dir, "n07.wav"), dtype="float32")
  np.testing.assert_array_equal(stored["n07"]["raw"][:, 0], raw_t)
  np.testing.assert_array_equal(stored["n07"]["mixed"][:, 0], 0.5 * raw_t)


def test_training_data_step_returns_the_facts_saved_with_checkpoints(tiny_config, tmp_path):
  from mixnet.data.prepare import training

  config = tiny_config()
  data_dir, facts = training.prepare_data(config, str(tmp_path))
  assert data_dir == config.data.data_dir
  summary = prepare.prepare_from_config(config.data, data_dir, str(tmp_path / "unused"),
                                        show_progress=False)
  assert summary["reused"]
  assert facts == {"raw_dir": summary["settings"]["raw_dir"],
                   "mixed_dir": summary["settings"]["mixed_dir"], **summary["totals"]}
  assert 0 < len(facts["validation_names"]) < 6
  config.data.data_dir = ""
  data_dir, facts = training.prepare_data(config, str(tmp_path))
  assert data_dir == os.path.join(str(tmp_path), "data") and facts["kept"] == 6

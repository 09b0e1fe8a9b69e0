"""Pairing raw takes with mixes by file name."""

import os

import pytest

from mixnet import errors
from mixnet.data import pairing


def _touch(folder, *names):
  os.makedirs(folder, exist_ok=True)
  for name in names:
    with open(os.path.join(folder, name), "wb") as f:
      f.write(b"")


def test_matches_case_and_role_suffixes(tmp_path):
  raw, mixed = str(tmp_path / "raw"), str(tmp_path / "mixed")
  _touch(raw, "Verse1.wav", "Chorus_dry.wav", "bridge-raw.flac", "outro (raw).aiff", "intro.WAV")
  _touch(mixed, "verse1_mix.flac", "chorus (mixed).wav", "Bridge.WAV", "outro.Wet.wav",
         "INTRO.wav")
  result = pairing.find_pairs(raw, mixed)
  got = {(p.name, os.path.basename(p.raw_path), os.path.basename(p.mixed_path))
         for p in result.pairs}
  assert got == {("Verse1", "Verse1.wav", "verse1_mix.flac"),
                 ("Chorus", "Chorus_dry.wav", "chorus (mixed).wav"),
                 ("bridge", "bridge-raw.flac", "Bridge.WAV"),
                 ("outro", "outro (raw).aiff", "outro.Wet.wav"),
                 ("intro", "intro.WAV", "INTRO.wav")}
  assert [p.name for p in result.pairs] == ["bridge", "Chorus", "intro", "outro", "Verse1"]
  assert all(os.path.dirname(p.raw_path) == raw for p in result.pairs)
  assert result.unpaired_raw == result.unpaired_mixed == result.ambiguous == []


def test_reports_unpaired_ignored_and_ambiguous(tmp_path):
  raw, mixed = str(tmp_path / "raw"), str(tmp_path / "mixed")
  _touch(raw, "a.wav", "extra_take.wav", "dup.wav", "Dup_raw.flac", "readme.txt", ".hidden.wav")
  _touch(mixed, "a_mix.wav", "bonus.wav", "dup.wav", "cover.jpg")
  result = pairing.find_pairs(raw, mixed)
  assert [p.name for p in result.pairs] == ["a"]
  assert result.unpaired_raw == ["extra_take.wav"]
  assert result.unpaired_mixed == ["bonus.wav"]
  assert result.ambiguous == [("raw", ["Dup_raw.flac", "dup.wav"])]
  assert result.ignored == ["cover.jpg", "readme.txt"]
  assert result.subfolders == []


def test_subfolders_are_listed_not_searched(tmp_path):
  raw, mixed = str(tmp_path / "raw"), str(tmp_path / "mixed")
  _touch(raw, "a.wav")
  _touch(os.path.join(raw, "old takes"), "b.wav")
  _touch(os.path.join(raw, "subfolder.wav"))
  _touch(os.path.join(raw, ".git"), "c.wav")
  _touch(mixed, "a.wav", "b.wav")
  _touch(os.path.join(mixed, "v2"), "a.wav")
  result = pairing.find_pairs(raw, mixed)
  assert [p.name for p in result.pairs] == ["a"] and result.unpaired_mixed == ["b.wav"]
  assert result.subfolders == [os.path.join(raw, "old takes"), os.path.join(raw, "subfolder.wav"),
                               os.path.join(mixed, "v2")]


def test_audio_only_in_subfolders_says_so(tmp_path):
  _touch(str(tmp_path / "raw" / "session1"), "a.wav")
  _touch(str(tmp_path / "mixed"), "a.wav")
  with pytest.raises(pairing.PairingError, match="no audio files.*subfolders are not searched: "
                     "session1"):
    pairing.find_pairs(str(tmp_path / "raw"), str(tmp_path / "mixed"))


@pytest.mark.parametrize("spelling", ["same", "trailing_slash", "dotdot", "symlink"])
def test_one_folder_given_as_raw_and_mixed_is_an_error(tmp_path, spelling):
  folder = str(tmp_path / "takes")
  _touch(folder, "a.wav", "b.wav")
  other = {"same": folder, "trailing_slash": folder + os.sep,
           "dotdot": os.path.join(folder, "..", "takes"),
           "symlink": str(tmp_path / "link")}[spelling]
  if spelling == "symlink":
    os.symlink(folder, other)
  with pytest.raises(pairing.PairingError, match="both the raw and the mixed folder"):
    pairing.find_pairs(folder, other)


def test_role_words_inside_names_are_kept():
  assert pairing.pair_key("remix.wav") == "remix"
  assert pairing.pair_key("dry.wav") == "dry"
  assert pairing.pair_key("Song_Mixed.wav") == "song"
  assert pairing.pair_key("drywall_mix.wav") == "drywall"
  assert pairing.pair_key("take 2 - dry.wav") == "take 2"


def test_missing_folder(tmp_path):
  _touch(str(tmp_path / "mixed"), "a.wav")
  with pytest.raises(pairing.PairingError, match=r"^\S*nope: raw folder does not exist"):
    pairing.find_pairs(str(tmp_path / "nope"), str(tmp_path / "mixed"))
  _touch(str(tmp_path / "raw"), "a.wav")
  with pytest.raises(pairing.PairingError, match=r"^\S*gone: mixed folder does not exist"):
    pairing.find_pairs(str(tmp_path / "raw"), str(tmp_path / "gone"))
  with pytest.raises(pairing.PairingError, match="no raw folder given"):
    pairing.find_pairs("", str(tmp_path / "mixed"))


def test_folder_is_a_file(tmp_path):
  _touch(str(tmp_path), "file.wav")
  _touch(str(tmp_path / "mixed"), "a.wav")
  with pytest.raises(pairing.PairingError, match="is a file, not a folder"):
    pairing.find_pairs(str(tmp_path / "file.wav"), str(tmp_path / "mixed"))


def test_empty_folder(tmp_path):
  os.makedirs(tmp_path / "raw")
  _touch(str(tmp_path / "mixed"), "a.wav", "notes.txt")
  with pytest.raises(pairing.PairingError, match="raw: raw folder contains no audio files"):
    pairing.find_pairs(str(tmp_path / "raw"), str(tmp_path / "mixed"))
  _touch(str(tmp_path / "raw"), "a.wav")
  os.remove(tmp_path / "mixed" / "a.wav")
  with pytest.raises(pairing.PairingError, match="mixed: mixed folder contains no audio files"):
    pairing.find_pairs(str(tmp_path / "raw"), str(tmp_path / "mixed"))


def test_no_pairs_names_the_files(tmp_path):
  _touch(str(tmp_path / "raw"), "one.wav", "two.wav")
  _touch(str(tmp_path / "mixed"), "three.wav")
  with pytest.raises(pairing.PairingError, match=r"no raw file .*one\.wav, two\.wav.*three\.wav"):
    pairing.find_pairs(str(tmp_path / "raw"), str(tmp_path / "mixed"))


def test_pairing_error_is_a_mixnet_error():
  # Every CLI prints a MixnetError as one `error: <file>: <problem>` line; ValueError catchers
  # around mixnet calls keep working.
  assert issubclass(pairing.PairingError, errors.MixnetError)
  assert issubclass(pairing.PairingError, ValueError)

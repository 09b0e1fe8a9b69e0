"""Matches raw takes with their mixes by file name.

`raw_dir/Verse1.wav` pairs with `mixed_dir/verse1_mix.flac`: stems are compared
case-insensitively after removing one common role suffix (`_raw`, `_dry`, `_mix`, `_mixed`,
`_wet`, also written with `-`, `.`, a space or in parentheses). Files that are not audio
(by extension) and hidden files are ignored; files without a partner are reported, as are
names that two files of the same folder normalise to (those are left out, since mixnet cannot
know which one is meant).

Only the files directly in each folder are paired. Subfolders are not searched (a nested
`raw/old/take1.wav` could pair with the wrong `mixed/take1.wav`); they are listed in the result
so that callers can say they were skipped. The raw and the mixed folder must be two different
folders: one folder given twice (under any spelling or through a symlink) would pair every file
with itself.
"""

import dataclasses
import os
import re

from mixnet import errors

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3")

_ROLE_SUFFIX = re.compile(r"(?:[\s._-]+\(?|\s*\()(?:raw|dry|mix|mixed|wet)\)?$", re.IGNORECASE)


class PairingError(errors.MixnetError):
  """The folders cannot be paired: missing, empty, the same folder, or no matching name."""


@dataclasses.dataclass(frozen=True)
class Pair:
  """One raw take and its mix. `name` is the raw file's stem without a role suffix."""
  name: str
  raw_path: str
  mixed_path: str


@dataclasses.dataclass(frozen=True)
class PairingResult:
  """Outcome of `find_pairs`; every list is sorted.

  Attributes:
    pairs: matched `Pair`s, sorted by name.
    unpaired_raw: raw files (basenames) with no mix.
    unpaired_mixed: mix files (basenames) with no raw take.
    ambiguous: (folder role, [basenames]) for names several files of one folder share.
    ignored: basenames of non-audio files in either folder.
    subfolders: paths of the subfolders of either folder (not searched).
  """
  pairs: list
  unpaired_raw: list
  unpaired_mixed: list
  ambiguous: list
  ignored: list
  subfolders: list


def pair_key(filename):
  """Returns the matching key of a file name: lower-case stem without a role suffix."""
  stem = os.path.splitext(os.path.basename(filename))[0]
  return _ROLE_SUFFIX.sub("", stem).strip().lower() or stem.lower()


def _display_name(filename):
  stem = os.path.splitext(os.path.basename(filename))[0]
  return _ROLE_SUFFIX.sub("", stem).strip() or stem


def check_folder(folder, role):
  """Raises PairingError unless `folder` (the `role` folder, "raw" or "mixed") is a folder."""
  if not folder:
    raise PairingError(f"{role}_dir: no {role} folder given")
  if not os.path.exists(folder):
    raise PairingError(f"{folder}: {role} folder does not exist")
  if not os.path.isdir(folder):
    raise PairingError(f"{folder}: {role} folder is a file, not a folder")


def check_distinct(raw_dir, mixed_dir):
  """Raises PairingError if both names lead to the same folder (spelling, `..`, symlinks)."""
  if os.path.samefile(raw_dir, mixed_dir):
    same = "" if os.path.normpath(raw_dir) == os.path.normpath(mixed_dir) else (
        f" (as {mixed_dir})")
    raise PairingError(
        f"{raw_dir}: given as both the raw and the mixed folder{same}; every file would pair "
        "with itself. Put the raw takes and the mixes in two different folders")


def _scan(folder, role):
  """Returns ({key: [basenames]}, ignored basenames, subfolder paths) of `folder`."""
  check_folder(folder, role)
  by_key, ignored, subfolders = {}, [], []
  for entry in sorted(os.listdir(folder)):
    path = os.path.join(folder, entry)
    if entry.startswith("."):
      continue
    if os.path.isdir(path):
      subfolders.append(path)
      continue
    if not os.path.isfile(path):
      continue
    if not entry.lower().endswith(AUDIO_EXTENSIONS):
      ignored.append(entry)
      continue
    by_key.setdefault(pair_key(entry), []).append(entry)
  if not by_key:
    raise PairingError(
        f"{folder}: {role} folder contains no audio files "
        f"(looked for {', '.join(AUDIO_EXTENSIONS)})" + _subfolder_hint(subfolders))
  return by_key, ignored, subfolders


def _subfolder_hint(subfolders):
  if not subfolders:
    return ""
  return (f"; subfolders are not searched: {_preview([os.path.basename(d) for d in subfolders])}"
          " (move their files up to pair them)")


def find_pairs(raw_dir, mixed_dir):
  """Pairs `raw_dir/*` with `mixed_dir/*` by normalised file stem.

  Returns:
    A `PairingResult`.

  Raises:
    PairingError: a folder is missing, is not a folder, holds no audio, both names are one
      folder, or no name matches.
  """
  check_folder(raw_dir, "raw")
  check_folder(mixed_dir, "mixed")
  check_distinct(raw_dir, mixed_dir)
  raw_by_key, raw_ignored, raw_subfolders = _scan(raw_dir, "raw")
  mixed_by_key, mixed_ignored, mixed_subfolders = _scan(mixed_dir, "mixed")
  ambiguous = [("raw", names) for names in raw_by_key.values() if len(names) > 1]
  ambiguous += [("mixed", names) for names in mixed_by_key.values() if len(names) > 1]
  pairs, unpaired_raw = [], []
  for key, raw_names in raw_by_key.items():
    mixed_names = mixed_by_key.get(key, [])
    if len(raw_names) > 1 or len(mixed_names) > 1:
      continue
    if not mixed_names:
      unpaired_raw.append(raw_names[0])
      continue
    pairs.append(Pair(name=_display_name(raw_names[0]),
                      raw_path=os.path.join(raw_dir, raw_names[0]),
                      mixed_path=os.path.join(mixed_dir, mixed_names[0])))
  unpaired_mixed = [names[0] for key, names in mixed_by_key.items()
                    if key not in raw_by_key and len(names) == 1]
  if not pairs:
    raise PairingError(
        f"{raw_dir}: no raw file has a mix with a matching name in {mixed_dir} "
        f"(raw: {_preview(sum(raw_by_key.values(), []))}; "
        f"mixed: {_preview(sum(mixed_by_key.values(), []))}). Name each mix like its raw "
        "take, e.g. raw/song1.wav and mixed/song1.wav (suffixes _raw/_dry/_mix/_mixed/_wet "
        "are ignored)" + _subfolder_hint(raw_subfolders + mixed_subfolders))
  return PairingResult(pairs=sorted(pairs, key=lambda p: p.name.lower()),
                       unpaired_raw=sorted(unpaired_raw), unpaired_mixed=sorted(unpaired_mixed),
                       ambiguous=sorted(ambiguous), ignored=sorted(raw_ignored + mixed_ignored),
                       subfolders=raw_subfolders + mixed_subfolders)


def _preview(names, limit=5):
  names = sorted(names)
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more

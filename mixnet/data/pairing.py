"""Matches raw takes with their mixes by file name.

`raw_dir/Verse1.wav` pairs with `mixed_dir/verse1_mix.flac`: stems are compared
case-insensitively after removing one common role suffix (`_raw`, `_dry`, `_mix`, `_mixed`,
`_wet`, also written with `-`, `.`, a space or in parentheses). Files that are not audio
(by extension) and hidden files are ignored; files without a partner are reported, as are
names that two files of the same folder normalise to (those are left out, since mixnet cannot
know which one is meant).
"""

import dataclasses
import os
import re

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3")

_ROLE_SUFFIX = re.compile(r"(?:[\s._-]+\(?|\s*\()(?:raw|dry|mix|mixed|wet)\)?$", re.IGNORECASE)


class PairingError(ValueError):
  """The folders cannot be paired: missing, empty, or without a single matching name."""


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
  """
  pairs: list
  unpaired_raw: list
  unpaired_mixed: list
  ambiguous: list
  ignored: list


def pair_key(filename):
  """Returns the matching key of a file name: lower-case stem without a role suffix."""
  stem = os.path.splitext(os.path.basename(filename))[0]
  return _ROLE_SUFFIX.sub("", stem).strip().lower() or stem.lower()


def _display_name(filename):
  stem = os.path.splitext(os.path.basename(filename))[0]
  return _ROLE_SUFFIX.sub("", stem).strip() or stem


def _scan(folder, role):
  """Returns ({key: [basenames]}, ignored basenames) for the audio files in `folder`."""
  if not folder:
    raise PairingError(f"no {role} folder given")
  if not os.path.exists(folder):
    raise PairingError(f"{role} folder {folder} does not exist")
  if not os.path.isdir(folder):
    raise PairingError(f"{role} folder {folder} is a file, not a folder")
  by_key, ignored = {}, []
  for entry in sorted(os.listdir(folder)):
    if entry.startswith(".") or not os.path.isfile(os.path.join(folder, entry)):
      continue
    if not entry.lower().endswith(AUDIO_EXTENSIONS):
      ignored.append(entry)
      continue
    by_key.setdefault(pair_key(entry), []).append(entry)
  if not by_key:
    raise PairingError(
        f"{role} folder {folder} contains no audio files "
        f"(looked for {', '.join(AUDIO_EXTENSIONS)})")
  return by_key, ignored


def find_pairs(raw_dir, mixed_dir):
  """Pairs `raw_dir/*` with `mixed_dir/*` by normalised file stem.

  Returns:
    A `PairingResult`.

  Raises:
    PairingError: a folder is missing, is not a folder, holds no audio, or no name matches.
  """
  raw_by_key, raw_ignored = _scan(raw_dir, "raw")
  mixed_by_key, mixed_ignored = _scan(mixed_dir, "mixed")
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
        f"no raw file in {raw_dir} has a mix with a matching name in {mixed_dir} "
        f"(raw: {_preview(sum(raw_by_key.values(), []))}; "
        f"mixed: {_preview(sum(mixed_by_key.values(), []))}). Name each mix like its raw "
        "take, e.g. raw/song1.wav and mixed/song1.wav (suffixes _raw/_dry/_mix/_mixed/_wet "
        "are ignored)")
  return PairingResult(pairs=sorted(pairs, key=lambda p: p.name.lower()),
                       unpaired_raw=sorted(unpaired_raw), unpaired_mixed=sorted(unpaired_mixed),
                       ambiguous=sorted(ambiguous), ignored=sorted(raw_ignored + mixed_ignored))


def _preview(names, limit=5):
  names = sorted(names)
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more

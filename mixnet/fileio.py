"""Atomic file writes: a crash never leaves a half-written file under its final name.

Standard library only, so light modules (mixnet.colab) can use it too.
"""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path`; renames it over `path` if the block succeeds.

  The temporary file sits in the destination folder (same file system, so the rename is atomic)
  and keeps `path`'s extension (libraries that pick a format by extension still work). On an
  exception it is removed and `path` is left as it was.

  Raises:
    OSError: the folder does not exist or cannot be written.
  """
  folder = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_bytes(path, data):
  with atomic_path(path) as tmp, open(tmp, "wb") as f:
    f.write(data)


def write_text(path, text):
  with atomic_path(path) as tmp, open(tmp, "w") as f:
    f.write(text)


def write_json(path, obj):
  """Writes `obj` as indented JSON."""
  write_text(path, json.dumps(obj, indent=2) + "\n")

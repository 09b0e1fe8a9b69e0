"""Atomic file writes: a crash never leaves a half-written file under its final name.

Every write goes to a temporary file beside the destination, named
`.mixnet-tmp-<host>-<pid>-<random><ext>`, which is renamed over the final name when complete.
The temporary file is created with mode 0666 minus the umask, so the result has the permissions
any other new file in that folder would get (typically 0644), not `mkstemp`'s 0600.

A process killed mid-write (SIGKILL, power loss) cannot remove its temporary file. The first
atomic write of a process into a folder (and `remove_stale_temps`, which `mixnet.infer` calls on
its output folder at start) removes the ones such a run left: temporary files of this host whose
process is gone, and any older than `STALE_SECONDS`. A live writer's file is never touched, and
nothing but this exact name pattern is.

Standard library only, so light modules (mixnet.colab) can use it too.
"""

import contextlib
import errno
import json
import os
import re
import secrets
import socket
import time

PREFIX = ".mixnet-tmp-"
STALE_SECONDS = 24 * 3600  # a temp file untouched this long has no live writer, whatever its pid
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
_TEMP_RE = re.compile(re.escape(PREFIX) + r"(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[0-9a-f]{8}")
_cleaned_folders = set()


def _pid_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's live process
    return True
  return True


def _is_stale(folder, name, now):
  match = _TEMP_RE.match(name)
  if not match:
    return False
  try:
    age = now - os.lstat(os.path.join(folder, name)).st_mtime
  except FileNotFoundError:
    return False
  if age > STALE_SECONDS:
    return True
  pid = int(match.group("pid"))
  return match.group("host") == _HOST and pid != os.getpid() and not _pid_alive(pid)


def remove_stale_temps(folder):
  """Removes temporary files that killed writers left in `folder`; returns their paths.

  Only names of this module's pattern are candidates (see the module docstring).
  """
  folder = os.path.abspath(folder)
  try:
    names = os.listdir(folder)
  except OSError:
    return []
  _cleaned_folders.add(folder)
  now = time.time()
  removed = []
  for name in names:
    if _is_stale(folder, name, now):
      path = os.path.join(folder, name)
      with contextlib.suppress(FileNotFoundError):  # another process cleaned it first
        os.remove(path)
        removed.append(path)
  return removed


def _create_temp(folder, suffix):
  """Creates an empty temporary file (mode 0666 & ~umask) in `folder`; returns its path."""
  while True:
    name = f"{PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"
    path = os.path.join(folder, name)
    try:
      os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
      return path
    except FileExistsError:
      continue


def _publish(tmp, path, overwrite):
  """Renames `tmp` to `path`; with `overwrite=False` fails if `path` exists, atomically."""
  if overwrite:
    os.replace(tmp, path)
    return
  try:
    os.link(tmp, path)  # fails with FileExistsError rather than replacing
  except OSError as e:
    if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
      raise
    # A file system without hard links: check, then rename (not atomic against a racing writer).
    if os.path.lexists(path):
      raise FileExistsError(errno.EEXIST, "file exists", path) from e
    os.replace(tmp, path)
    return
  os.remove(tmp)


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
  """Yields a temporary path beside `path`; moves it to `path` if the block succeeds.

  The temporary file sits in the destination folder (same file system, so the rename is atomic)
  and keeps `path`'s extension (libraries that pick a format by extension still work). On an
  exception it is removed and `path` is left as it was.

  Args:
    path: the final file name.
    overwrite: replace an existing `path`; if False, an existing `path` raises
      `FileExistsError` (checked atomically at the rename) and is left untouched.

  Raises:
    OSError: the folder does not exist or cannot be written; FileExistsError (see above).
  """
  folder = os.path.dirname(os.path.abspath(path))
  if folder not in _cleaned_folders:
    remove_stale_temps(folder)
  tmp = _create_temp(folder, os.path.splitext(path)[1])
  try:
    yield tmp
    _publish(tmp, path, overwrite)
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

"""mixnet.fileio: atomic writes with normal permissions, no-replace writes, stale temp cleanup."""

import os
import subprocess
import time

import pytest

from mixnet import fileio


def _temp_name_of_this_process(folder):
  """The temporary name an atomic write of this process uses in `folder`."""
  with fileio.atomic_path(folder / "probe.txt") as tmp:
    name = os.path.basename(tmp)
  os.remove(folder / "probe.txt")
  return name


def _dead_pid():
  proc = subprocess.Popen(["true"])
  proc.wait()
  return proc.pid


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_get_the_umask_permissions(tmp_path, umask):
  old = os.umask(umask)
  try:
    fileio.write_text(tmp_path / "a.txt", "one")
    fileio.write_text(tmp_path / "a.txt", "two")  # replacing keeps normal permissions
  finally:
    os.umask(old)
  assert (tmp_path / "a.txt").read_text() == "two"
  assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o666 & ~umask


def test_no_replace_write_keeps_the_existing_file(tmp_path):
  path = tmp_path / "a.txt"
  path.write_text("mine")
  with pytest.raises(FileExistsError):
    with fileio.atomic_path(path, overwrite=False) as tmp, open(tmp, "w") as f:
      f.write("theirs")
  assert path.read_text() == "mine" and os.listdir(tmp_path) == ["a.txt"]


def test_a_failed_block_leaves_nothing(tmp_path):
  with pytest.raises(RuntimeError):
    with fileio.atomic_path(tmp_path / "a.txt") as tmp:
      open(tmp, "w").write("half")
      raise RuntimeError("crash")
  assert os.listdir(tmp_path) == []


def test_stale_temp_files_are_removed_and_live_or_foreign_ones_kept(tmp_path):
  name = _temp_name_of_this_process(tmp_path)
  host, pid = name[len(fileio.PREFIX):].split("-")[:2]
  assert pid == str(os.getpid())
  dead = f"{fileio.PREFIX}{host}-{_dead_pid()}-0123abcd.wav"
  live = f"{fileio.PREFIX}{host}-{os.getpid()}-0123abcd.wav"
  other_host_recent = f"{fileio.PREFIX}elsewhere-1-0123abcd.wav"
  other_host_old = f"{fileio.PREFIX}elsewhere-2-0123abcd.wav"
  keep = [live, other_host_recent, ".tmp-abcd1234.wav", "take.wav", "notes.mixnet-tmp-x"]
  for n in keep + [dead, other_host_old]:
    (tmp_path / n).write_bytes(b"x")
  old = time.time() - fileio.STALE_SECONDS - 60
  os.utime(tmp_path / other_host_old, (old, old))
  removed = fileio.remove_stale_temps(tmp_path)
  assert sorted(os.path.basename(p) for p in removed) == sorted([dead, other_host_old])
  assert sorted(os.listdir(tmp_path)) == sorted(keep)


def test_first_atomic_write_into_a_folder_cleans_it(tmp_path):
  folder = tmp_path / "fresh"
  folder.mkdir()
  host = _temp_name_of_this_process(tmp_path)[len(fileio.PREFIX):].split("-")[0]
  stale = folder / f"{fileio.PREFIX}{host}-{_dead_pid()}-0123abcd.json"
  stale.write_text("{")
  fileio.write_json(folder / "summary.json", {"ok": True})
  assert os.listdir(folder) == ["summary.json"]

"""Notebook files: uploads (audio and zips of audio) into a folder, trained models as zips.

Standard library only at module level (the install cell imports mixnet.colab before jax is right).
"""

import io
import os
import shutil
import tempfile
import zipfile

from mixnet import fileio  # standard library only
from mixnet.data.pairing import AUDIO_EXTENSIONS  # standard library only, like this module

MODEL_ZIP = "mixnet_model.zip"


def save_uploads(uploaded, folder):
  """Writes uploaded files into `folder`; audio inside .zip files is extracted (flattened).

  Args:
    uploaded: {file name: bytes}, as `google.colab.files.upload()` returns.
    folder: created if missing.

  Returns:
    (written, skipped): paths of the audio files written, and names that are not audio.

  Raises:
    ValueError: two uploaded files (or zip members) have the same name, or a zip is corrupt.
  """
  os.makedirs(folder, exist_ok=True)
  files = {}
  skipped = []

  def add(name, data):
    base = os.path.basename(name)
    if not base.lower().endswith(AUDIO_EXTENSIONS) or base.startswith("."):
      skipped.append(name)
    elif base in files:
      raise ValueError(f"two uploaded files are named {base!r}; rename one")
    else:
      files[base] = data

  for name, data in uploaded.items():
    if name.lower().endswith(".zip"):
      try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
          for member in z.infolist():
            if not member.is_dir() and "__MACOSX" not in member.filename:
              add(member.filename, z.read(member))
      except zipfile.BadZipFile as e:
        raise ValueError(f"{name}: not a readable zip file ({e})") from e
    else:
      add(name, data)
  written = []
  for base, data in sorted(files.items()):
    path = os.path.join(folder, base)
    fileio.write_bytes(path, data)
    written.append(path)
  return written, skipped


def archive_model(checkpoint, zip_path):
  """Zips the checkpoint inference would load from `checkpoint` (best, else latest step).

  The zip holds `<best|checkpoints>/<step>/...`: unzipped anywhere, that folder is a valid
  `checkpoint` argument for `mixnet.infer` and `mixnet.report` (see `unpack_model`).

  Returns:
    `zip_path`.
  """
  from mixnet import checkpoints

  located = checkpoints.resolve(checkpoint)
  return zip_folder(os.path.join(located.directory, str(located.step)), zip_path,
                    os.path.join(os.path.basename(located.directory), str(located.step)))


def zip_folder(folder, zip_path, prefix=""):
  """Writes every file under `folder` into `zip_path` (atomically), under `prefix/`.

  Returns:
    `zip_path`.
  """
  with fileio.atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for dirpath, dirnames, filenames in os.walk(folder):
      dirnames.sort()
      for name in sorted(filenames):
        path = os.path.join(dirpath, name)
        if os.path.abspath(path) not in (os.path.abspath(tmp), os.path.abspath(zip_path)):
          z.write(path, os.path.join(prefix, os.path.relpath(path, folder)))
  return zip_path


def unpack_model(zip_path, folder=None):
  """Extracts a zip made by `archive_model` and returns the folder to load the model from.

  Args:
    zip_path: the zip.
    folder: where to extract (created); default: a new temporary folder.

  Raises:
    mixnet.checkpoints.CheckpointError: the zip holds no checkpoint.
    ValueError: the file is not a zip.
  """
  from mixnet import checkpoints

  created = folder is None
  folder = folder or tempfile.mkdtemp(prefix="mixnet_model_")
  try:
    try:
      with zipfile.ZipFile(zip_path) as z:
        z.extractall(folder)  # extractall drops absolute and ".." parts of member names
    except zipfile.BadZipFile as e:
      raise ValueError(f"{zip_path}: not a readable zip file ({e})") from e
    try:
      checkpoints.resolve(folder)
    except checkpoints.CheckpointError as e:
      raise checkpoints.CheckpointError(
          f"{zip_path}: holds no mixnet checkpoint (make it with the training notebook's "
          f"download step or mixnet.colab.archive_model): {e}") from e
  except BaseException:
    if created:
      shutil.rmtree(folder, ignore_errors=True)
    raise
  return folder

"""Audio file I/O, resampling and channel conversion.

Every audio array in mixnet is float32 shaped `[time, channels]` (`audio_tc`), with samples
in [-1, 1] full scale, at a sample rate given alongside it in Hz. Files are read and written
with soundfile (libsndfile); resampling uses soxr (VHQ polyphase), which is far more accurate
than anything worth hand-writing.

Bad input raises `AudioError` with the file's path and the problem in the message, so a user
with hundreds of files knows which one to fix.
"""

import os

import numpy as np
import soundfile as sf
import soxr

from mixnet import fileio

MAX_CHANNELS = 2


class AudioError(ValueError):
  """An audio file is missing, unreadable or unusable; the message names the file."""


def load(path, sample_rate=None):
  """Reads an audio file.

  Args:
    path: file to read (any format libsndfile reads: WAV, FLAC, AIFF, OGG, ...).
    sample_rate: if given and different from the file's rate, resample to it (Hz).

  Returns:
    (audio_tc, sample_rate): float32 `[time, channels]` with 1 or 2 channels, and its rate in Hz.

  Raises:
    AudioError: the file is missing, a directory, not audio, truncated, empty, has NaN/inf
      samples or more than two channels.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise AudioError(f"{path}: is a directory, not an audio file")
  if not os.path.exists(path):
    raise AudioError(f"{path}: file not found")
  try:
    with sf.SoundFile(path) as f:
      expected = f.frames
      file_sr = f.samplerate
      header_log = f.extra_info
      audio_tc = f.read(dtype="float32", always_2d=True)
  except (sf.LibsndfileError, RuntimeError, TypeError) as e:
    raise AudioError(
        f"{path}: not a readable audio file (unknown format, truncated or corrupt: {e})") from e
  # libsndfile shortens a WAV/AIFF whose data chunk runs past the end of the file and only
  # notes it in its log ("data : 16000 (should be 7978)"): that is a truncated file.
  short_chunk = [ln for ln in header_log.splitlines()
                 if ln.startswith(("data", "SSND")) and "should be" in ln]
  if short_chunk:
    raise AudioError(
        f"{path}: truncated or corrupt: data chunk is shorter than its header says "
        f"({short_chunk[0].strip()})")
  if audio_tc.shape[0] < expected:
    raise AudioError(
        f"{path}: truncated or corrupt: header promises {expected} frames, "
        f"only {audio_tc.shape[0]} could be read")
  if audio_tc.shape[0] == 0:
    raise AudioError(f"{path}: contains no samples (zero length)")
  if audio_tc.shape[1] > MAX_CHANNELS:
    raise AudioError(
        f"{path}: has {audio_tc.shape[1]} channels; mixnet handles mono or stereo only")
  if not np.all(np.isfinite(audio_tc)):
    bad = int(np.sum(~np.isfinite(audio_tc)))
    raise AudioError(f"{path}: contains {bad} NaN or infinite samples")
  if sample_rate is not None and sample_rate != file_sr:
    audio_tc = resample(audio_tc, file_sr, sample_rate)
    file_sr = sample_rate
  return audio_tc, int(file_sr)


def save(path, audio_tc, sample_rate, subtype="PCM_24"):
  """Writes `audio_tc` ([time, channels] float32 at `sample_rate` Hz) atomically.

  The data goes to a temporary file in the destination folder, which is then renamed over
  `path`, so a crash never leaves a half-written file under the final name.

  Raises:
    AudioError: the array is empty, not finite, or has more than two channels, or the folder
      cannot be written.
  """
  path = os.fspath(path)
  audio_tc = np.asarray(audio_tc, dtype=np.float32)
  if audio_tc.ndim == 1:
    audio_tc = audio_tc[:, None]
  if audio_tc.ndim != 2 or audio_tc.shape[0] == 0:
    raise AudioError(f"{path}: refusing to write audio of shape {audio_tc.shape}")
  if audio_tc.shape[1] > MAX_CHANNELS:
    raise AudioError(f"{path}: refusing to write {audio_tc.shape[1]} channels")
  if not np.all(np.isfinite(audio_tc)):
    raise AudioError(f"{path}: refusing to write NaN or infinite samples")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise AudioError(f"{path}: output folder {folder} does not exist")
  try:
    with fileio.atomic_path(path) as tmp:
      sf.write(tmp, audio_tc, int(sample_rate), subtype=subtype, format=_format_for(path))
  except OSError as e:
    raise AudioError(f"{path}: cannot write to folder {folder} ({e.strerror or e})") from e


def _format_for(path):
  ext = os.path.splitext(path)[1].lower().lstrip(".")
  return {"wav": "WAV", "flac": "FLAC", "aif": "AIFF", "aiff": "AIFF"}.get(ext, "WAV")


def ensure_not_input(out_path, *in_paths):
  """Raises AudioError if `out_path` is (or links to) one of `in_paths`: never overwrite inputs."""
  out_real = os.path.realpath(out_path)
  for p in in_paths:
    if os.path.realpath(p) == out_real:
      raise AudioError(f"{out_path}: output path is the input file; refusing to overwrite it")


def resample(audio_tc, from_rate, to_rate):
  """Resamples `[time, channels]` audio from `from_rate` to `to_rate` Hz (soxr VHQ)."""
  if int(from_rate) == int(to_rate):
    return np.asarray(audio_tc, dtype=np.float32)
  out = soxr.resample(np.asarray(audio_tc, dtype=np.float32), int(from_rate), int(to_rate),
                      quality="VHQ")
  return np.ascontiguousarray(out.reshape(-1, audio_tc.shape[1]), dtype=np.float32)


def to_mono(audio_tc):
  """Averages channels: `[time, channels]` -> `[time, 1]`."""
  return np.mean(audio_tc, axis=1, keepdims=True, dtype=np.float32)


def to_channels(audio_tc, channels):
  """Converts `[time, c]` audio to `channels` channels (1 or 2).

  Stereo -> mono averages the channels; mono -> stereo copies the channel to both sides.
  """
  have = audio_tc.shape[1]
  if have == channels:
    return audio_tc
  if channels == 1:
    return to_mono(audio_tc)
  if have == 1:
    return np.repeat(audio_tc, channels, axis=1)
  raise ValueError(f"cannot convert {have} channels to {channels}")

"""Audio file I/O, resampling and channel conversion.

Every audio array in mixnet is float32 shaped `[time, channels]` (`audio_tc`), with samples
in [-1, 1] full scale, at a sample rate given alongside it in Hz. Files are read and written
with soundfile (libsndfile); resampling uses soxr (VHQ polyphase), which is far more accurate
than anything worth hand-writing.

Bad input raises `AudioError` with the file's path and the problem in the message, so a user
with hundreds of files knows which one to fix.

Output files are written in the format their extension names (`OUTPUT_FORMATS`: WAV, FLAC, AIFF,
Ogg Vorbis, MP3), where the libsndfile that soundfile loaded can write it; `output_format` says
which before any work is done, and refuses anything else.
"""

import os

import numpy as np
import soundfile as sf
import soxr

from mixnet import errors, fileio

MAX_CHANNELS = 2

# Extension -> (libsndfile format, default subtype). 24-bit PCM where the format has PCM.
OUTPUT_FORMATS = {
    ".wav": ("WAV", "PCM_24"),
    ".flac": ("FLAC", "PCM_24"),
    ".aif": ("AIFF", "PCM_24"),
    ".aiff": ("AIFF", "PCM_24"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


class AudioError(errors.MixnetError):
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


def writable_extensions():
  """The output extensions (of `OUTPUT_FORMATS`) that this soundfile/libsndfile can write."""
  return [ext for ext, (fmt, subtype) in OUTPUT_FORMATS.items()
          if fmt in sf.available_formats() and sf.check_format(fmt, subtype)]


def output_format(path, subtype=None):
  """(format, subtype) that `save` writes `path` in, from its extension.

  Args:
    path: the output file name.
    subtype: a libsndfile subtype (e.g. "PCM_16", "FLOAT"); default: the format's own.

  Raises:
    AudioError: the extension is not an audio format mixnet writes, this libsndfile cannot
      write it, or the format has no such subtype.
  """
  path = os.fspath(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in OUTPUT_FORMATS:
    raise AudioError(f"{path}: cannot write '{ext or 'no extension'}' files; the output name "
                     f"must end in one of {', '.join(writable_extensions())}")
  fmt, default_subtype = OUTPUT_FORMATS[ext]
  subtype = subtype or default_subtype
  if fmt not in sf.available_formats():
    raise AudioError(f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt} "
                     f"files; use one of {', '.join(writable_extensions())}")
  if not sf.check_format(fmt, subtype):
    raise AudioError(f"{path}: {fmt} files cannot hold subtype {subtype} "
                     f"(valid: {', '.join(sf.available_subtypes(fmt))})")
  return fmt, subtype


# (format, subtype) whose float -> integer conversion `_pcm_int32` does as libsndfile does; the
# file is the same to the bit (a test checks), and `save` is faster (3 minutes mono 24-bit:
# 0.09 s instead of libsndfile's 0.115 s).
_INT32_PCM = {(fmt, subtype) for fmt in ("WAV", "AIFF") for subtype in ("PCM_16", "PCM_24")}


def _pcm_int32(audio_tc):
  """float32 `[time, channels]` as the int32 samples libsndfile makes of it, in numpy.

  libsndfile (with the clipping soundfile turns on) scales by 2^31, rounds to nearest, clips
  to int32 and keeps the top bits; given int32 it keeps the same top bits. Scaling by a power
  of two is exact in float32; the clip's upper bound is the largest float32 below 2^31,
  which keeps the same top 24 bits as 2^31 - 1.
  """
  scaled = audio_tc * np.float32(2.0 ** 31)
  np.rint(scaled, out=scaled)
  np.clip(scaled, np.float32(-2.0 ** 31), np.float32(2.0 ** 31 - 128), out=scaled)
  return scaled.astype(np.int32)


def save(path, audio_tc, sample_rate, subtype=None, overwrite=True):
  """Writes `audio_tc` ([time, channels] float32 at `sample_rate` Hz) atomically.

  The format follows the extension (see `output_format`; 24-bit PCM by default). The data goes
  to a temporary file in the destination folder, which is then renamed to `path`, so a crash
  never leaves a half-written file under the final name; the file gets the umask's permissions.

  Args:
    path: output file.
    audio_tc: float32 `[time, channels]` (or `[time]`), samples in [-1, 1].
    sample_rate: Hz.
    subtype: libsndfile subtype; default: the format's (`OUTPUT_FORMATS`).
    overwrite: replace an existing file; if False, an existing `path` raises AudioError and
      is left untouched (checked atomically when the file is moved into place).

  Raises:
    AudioError: the array is empty, not finite, or has more than two channels; the format
      cannot be written (or not at this sample rate); the folder cannot be written; the file
      exists and `overwrite` is False.
  """
  path = os.fspath(path)
  fmt, subtype = output_format(path, subtype)
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
  data = _pcm_int32(audio_tc) if (fmt, subtype) in _INT32_PCM else audio_tc
  try:
    with fileio.atomic_path(path, overwrite=overwrite) as tmp:
      sf.write(tmp, data, int(sample_rate), subtype=subtype, format=fmt)
  except FileExistsError as e:
    raise AudioError(f"{path}: already exists; refusing to replace it") from e
  except sf.LibsndfileError as e:
    raise AudioError(f"{path}: libsndfile cannot write {fmt} ({subtype}) at {sample_rate} Hz "
                     f"with {audio_tc.shape[1]} channel(s): {e}") from e
  except OSError as e:
    raise AudioError(f"{path}: cannot write to folder {folder} ({e.strerror or e})") from e


def same_file(a, b):
  """Whether paths `a` and `b` name one file (also through symlinks, `..` or hard links)."""
  if os.path.realpath(a) == os.path.realpath(b):
    return True
  try:
    return os.path.samefile(a, b)
  except OSError:  # one of them does not exist: they cannot be the same existing file
    return False


def ensure_not_input(out_path, *in_paths):
  """Raises AudioError if `out_path` is (or links to) one of `in_paths`: never overwrite inputs."""
  for p in in_paths:
    if same_file(out_path, p):
      raise AudioError(
          f"{out_path}: output path is the input file {p}; an input is never replaced")


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

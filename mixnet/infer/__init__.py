r"""Processing raw vocals with a trained model, or with the DSP chain when there is none.

From Python:
  from mixnet import AudioProcessor
  processor = AudioProcessor()                                        # the DSP vocal chain
  processor = AudioProcessor(use_ml_model=True, model_path="models/best_model.mixnet")
  mixed = processor.process_vocal(audio, preset_config, sample_rate=44100)
  summary = infer.process_file("raw/take1.wav", "out/take1.wav", model_path="runs/base")

From the shell (`mixnet/infer/__main__.py`; its docstring gives the naming and overwrite rules):
  python -m mixnet.infer in1.wav in2.wav --out_dir=out [--checkpoint=M] [--preset=default]

`model_path` is a model file (`python -m mixnet.export`), a training workdir or a checkpoint
folder, all read by `mixnet.model_file.load_model`. The engines are `mixnet.engines`.

The model runs chunk by chunk (`mixnet.chunking`): any length, one compiled shape per batch
size, output equal to one pass over the whole file. Channels: a mono model processes each
channel of a stereo file separately (the stereo image is kept); a stereo model gets a mono file
copied to both sides and its output averaged back to mono. The output keeps the input's shape,
layout and sample rate.

Level: the model's receptive field (`mixnet.models.receptive_field`) sees phrases, not whole
songs, so it cannot know a take's overall loudness; by default (`config.infer.match_loudness`)
the model's output is scaled to the median integrated loudness of the training mixes, measured
when the data was prepared and saved with the checkpoint: the user's own delivery level.

Output safety: the model's output is DC-blocked and exact digital zero wherever the model saw
only digital silence (`mixnet.silence`); the result must be finite (a NaN is an error, never
silently zeroed) and goes through the true-peak limiter at `ceiling_db`. `process_file` never
writes over its input and never replaces an existing file unless asked to.
"""

import concurrent.futures
import os
import time

import numpy as np
from absl import logging

from mixnet import audio, checkpoints, dsp, engines, model_file
from mixnet.infer import settings

DEFAULT_SAMPLE_RATE = 44100
DEFAULT_MODEL_PATH = os.path.join("models", "best_model" + model_file.SUFFIX)


def _load_engine(model_path, strict, preset_name, **model_kwargs):
  """A ModelEngine for `model_path`, or (not strict) a DspEngine with one warning."""
  try:
    params, meta, source = model_file.load_model(model_path)
    return engines.ModelEngine(params, meta, source, **model_kwargs)
  except (model_file.ModelFileError, checkpoints.CheckpointError) as e:
    if strict:
      raise
    logging.warning("using the DSP vocal chain (preset '%s') instead of a model: %s",
                    preset_name, e)
    return engines.DspEngine(str(e))


class AudioProcessor:
  """Mixes raw vocals with a trained model, or with the DSP vocal chain.

  Args:
    use_ml_model: mix with the trained model at `model_path` (True) or the DSP chain (False).
    model_path: a model file, a training workdir or a checkpoint folder (a corrupt preferred
      step falls back to the newest intact one, with a warning). With `use_ml_model=True` and
      no path, `DEFAULT_MODEL_PATH` (`./models/best_model.mixnet`, relative to the working
      folder). Giving a path with `use_ml_model=False` is an error, never silently ignored.
    preset: the DSP chain: a preset name, a `.json` preset file or a `dsp.Preset`. It mixes
      when the DSP engine does the work (by choice or as the fallback); per call,
      `process_vocal`'s `preset_config` can override it.
    strict: raise `ModelFileError`/`CheckpointError` when the model cannot be loaded, instead of
      mixing with the DSP chain (the fallback logs one warning).
    chunk_seconds, batch_size, match_loudness: see `mixnet.engines.ModelEngine`.
    ceiling_db: true-peak ceiling of the model's output limiter, dBFS (a DSP preset has its own).

  Attributes (the same for both engines):
    engine: "model" or "dsp"; `backend` is the engine object (`mixnet.engines`).
    model_path: what the model was loaded from (a file or checkpoint step folder), else None.
    fallback_reason: why the DSP chain does the work, or None for a model.
    meta, sample_rate, channels, target_lufs: the model's (see `mixnet.engines`); {} or None
      for the DSP chain.
  """

  def __init__(self, use_ml_model=False, model_path=None, preset="default", strict=False,
               chunk_seconds=None, batch_size=None, match_loudness=None, ceiling_db=-1.0):
    if not isinstance(use_ml_model, bool):
      raise TypeError(f"use_ml_model must be True or False, got {use_ml_model!r}; the model "
                      "goes in model_path=")
    if model_path is not None and not use_ml_model:
      raise ValueError(f"model_path={os.fspath(model_path)!r} given with use_ml_model=False; "
                       "pass use_ml_model=True to mix with it")
    self.preset = dsp.get_preset(preset)
    self.preset_name = preset if isinstance(preset, str) else self.preset.name
    self.ceiling_db = ceiling_db
    if not use_ml_model:
      logging.info("mixing with the DSP vocal chain (preset '%s'): no checkpoint given",
                   self.preset_name)
      self.backend = engines.DspEngine("no checkpoint given")
      return
    self.backend = _load_engine(
        DEFAULT_MODEL_PATH if model_path is None else model_path, strict, self.preset_name,
        chunk_seconds=chunk_seconds, batch_size=batch_size, match_loudness=match_loudness,
        ceiling_db=ceiling_db)

  engine = property(lambda self: self.backend.name)
  model_path = property(lambda self: self.backend.source)
  fallback_reason = property(lambda self: self.backend.fallback_reason)
  meta = property(lambda self: self.backend.meta)
  sample_rate = property(lambda self: self.backend.sample_rate)
  channels = property(lambda self: self.backend.channels)
  target_lufs = property(lambda self: self.backend.target_lufs)
  style = property(lambda self: self.backend.style)

  def compile(self):
    """Compiles every shape a call can need now (otherwise calls compile as they go); seconds."""
    return self.backend.compile()

  def process_vocal(self, audio, preset_config=None, sample_rate=None):
    """Mixes a raw vocal; the result has the input's shape, layout, rate and float32 dtype.

    Args:
      audio: float samples, 1-D mono `[time]`, `[time, channels]` or `[channels, time]` with 1
        or 2 channels. A 2-D shape is read as the layout whose channel axis has 1 or 2 entries
        and whose time axis is longer; a shape such as (2, 2) fits both and is refused.
      preset_config: what to mix with (see `mixnet.infer.settings`): None, a preset name, a
        `.json` preset file, a `dsp.Preset`, or a dict of preset fields and `strength` (0: the
        raw take brought to the output loudness, 1: the full style).
      sample_rate: Hz; `DEFAULT_SAMPLE_RATE` (44100) when None, never guessed from the audio.

    Raises:
      ValueError: an audio shape or layout this cannot read, or NaN/inf samples.
      SettingsError, PresetError: an unusable `preset_config`.
    """
    x_tc, layout = _as_tc(audio)
    sample_rate = DEFAULT_SAMPLE_RATE if sample_rate is None else int(sample_rate)
    y_tc = self.backend.mix(x_tc, sample_rate, settings.resolve(preset_config, self.preset))
    return _restore_layout(y_tc, layout)


def _as_tc(samples):
  """(float32 `[time, channels]`, layout): layout is "t", "tc" or "ct"."""
  x = np.asarray(samples, np.float32)
  if x.ndim == 1:
    x_tc, layout = x[:, None], "t"
  elif x.ndim == 2 and x.shape[1] <= audio.MAX_CHANNELS and (
      x.shape[0] > x.shape[1] or x.shape == (1, 1)):
    x_tc, layout = x, "tc"
  elif x.ndim == 2 and x.shape[0] <= audio.MAX_CHANNELS and x.shape[1] > x.shape[0]:
    x_tc, layout = x.T, "ct"
  else:
    raise ValueError(f"expected audio [time], [time, channels] or [channels, time] with 1 or 2 "
                     f"channels and more samples than channels, got shape {x.shape}")
  if x_tc.shape[0] == 0:
    raise ValueError("expected audio with at least one sample, got an empty array")
  if not np.all(np.isfinite(x_tc)):
    raise ValueError("input audio contains NaN or infinite samples")
  return np.ascontiguousarray(x_tc), layout


def _restore_layout(y_tc, layout):
  """`[time, channels]` back to the input's layout."""
  if layout == "t":
    return y_tc[:, 0]
  return np.ascontiguousarray(y_tc.T) if layout == "ct" else y_tc


def check_output(out_path, in_path, overwrite=False):
  """Raises AudioError if `out_path` cannot take the mix of `in_path`: checked before any work.

  Refused: the input itself (also via a symlink, a relative path or a hard link), even with
  `overwrite`; an existing file unless `overwrite`; a folder; an extension whose format cannot
  be written (`audio.output_format`); a missing or read-only output folder.
  """
  audio.output_format(out_path)
  audio.ensure_not_input(out_path, in_path)
  if os.path.isdir(out_path):
    raise audio.AudioError(f"{out_path}: is a folder; expected an output file name")
  if os.path.lexists(out_path) and not overwrite:
    raise audio.AudioError(f"{out_path}: already exists; refusing to replace it "
                           "(overwrite=True / --overwrite replaces it)")
  out_dir = os.path.dirname(os.path.abspath(out_path))
  if not os.path.isdir(out_dir):
    raise audio.AudioError(f"{out_path}: output folder {out_dir} does not exist")
  if not os.access(out_dir, os.W_OK):
    raise audio.AudioError(f"{out_path}: output folder {out_dir} is not writable")


def save_and_measure(out_path, out_tc, sample_rate, overwrite):
  """`audio.save`s float32 `[time, channels]`; returns its integrated loudness (LUFS).

  The loudness is measured in a thread while the file is written: both spend their time in C
  code that releases the GIL.
  """
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    loudness = pool.submit(dsp.integrated_loudness, out_tc, sample_rate)
    audio.save(out_path, out_tc, sample_rate, overwrite=overwrite)
    return loudness.result()


def process_file(in_path, out_path, model_path=None, preset="default", strict=False,
                 sample_rate=None, channels=None, processor=None, overwrite=False,
                 **processor_kwargs):
  """Mixes one file and writes it atomically.

  Args:
    in_path: raw vocal (any format soundfile reads).
    out_path: where to write; the format follows the extension (`audio.OUTPUT_FORMATS`:
      .wav/.flac/.aiff 24-bit, .ogg Vorbis, .mp3 where libsndfile writes it).
    model_path, preset, strict: see `AudioProcessor` (ignored when `processor` is given); a
      `model_path` means the model engine.
    sample_rate, channels: output rate/channel count; default: the input's.
    processor: an `AudioProcessor` to reuse across files (loads and compiles once).
    overwrite: replace an existing `out_path` (never the input itself; see `check_output`).
    **processor_kwargs: more `AudioProcessor` arguments (chunk_seconds, batch_size, ceiling_db).
      The file is mixed with the processor's own preset.

  Returns:
    A summary dict: engine, model_path, preset, input, output, duration_s, seconds,
    realtime_factor, peak_dbfs, loudness_lufs, sample_rate, channels, fallback_reason.

  Raises:
    AudioError: unreadable/unusable input, an output refused by `check_output` (before any
      work), or one that appeared meanwhile (the final move never replaces it).
  """
  check_output(out_path, in_path, overwrite)
  raw_tc, sr = audio.load(in_path)
  if processor is None:
    processor = AudioProcessor(use_ml_model=model_path is not None, model_path=model_path,
                               preset=preset, strict=strict, **processor_kwargs)
  t0 = time.time()
  out_tc = processor.process_vocal(raw_tc, sample_rate=sr)
  if channels is not None:
    out_tc = audio.to_channels(out_tc, channels)
  out_sr = sr
  if sample_rate is not None and sample_rate != sr:
    out_tc = dsp.true_peak_limit(audio.resample(out_tc, sr, sample_rate), sample_rate,
                                 ceiling_db=processor.ceiling_db)
    out_sr = sample_rate
  seconds = time.time() - t0
  loudness_lufs = save_and_measure(out_path, out_tc, out_sr, overwrite)
  duration = raw_tc.shape[0] / sr
  peak = float(np.max(np.abs(out_tc)))
  return {
      "engine": processor.engine,
      "model_path": processor.model_path,
      "preset": processor.preset_name if processor.engine == "dsp" else None,
      "fallback_reason": processor.fallback_reason,
      "input": os.fspath(in_path),
      "output": os.fspath(out_path),
      "duration_s": duration,
      "seconds": seconds,
      "realtime_factor": duration / max(seconds, 1e-9),
      "peak_dbfs": 20 * np.log10(max(peak, 1e-10)),
      "loudness_lufs": loudness_lufs,
      "sample_rate": out_sr,
      "channels": out_tc.shape[1],
  }

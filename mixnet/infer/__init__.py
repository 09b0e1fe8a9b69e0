r"""Processing raw vocals with a trained model, or with the DSP chain when there is none.

From Python:
  from mixnet import infer
  summary = infer.process_file("raw/take1.wav", "out/take1.wav", checkpoint="/tmp/mixnet/tiny")
  processor = infer.AudioProcessor(checkpoint="/tmp/mixnet/tiny")   # or checkpoint=None: DSP
  mixed_tc = processor.process_vocal(raw_tc, sample_rate)

From the shell (`mixnet/infer/__main__.py`; its docstring gives the naming and overwrite rules):
  python -m mixnet.infer in1.wav in2.wav --out_dir=out [--checkpoint=WORKDIR] [--preset=default]

The model runs chunk by chunk (`mixnet.chunking`): any length, one compiled shape, output equal
to one pass over the whole file. Channels: a mono model processes each channel of a stereo file
separately (the stereo image is kept); a stereo model gets a mono file copied to both sides and
its output averaged back to mono. The output keeps the input's sample rate and channel count
unless `sample_rate`/`channels` ask otherwise.

Level: the model's receptive field (`mixnet.models.receptive_field`) sees phrases, not whole
songs, so it cannot know a take's overall loudness; by default (`config.infer.match_loudness`)
the model's output is scaled to the median integrated loudness of the training mixes, measured
when the data was prepared and saved with the checkpoint: the user's own delivery level.

Output safety: the model's output is DC-blocked and exact digital zero wherever the model saw
only digital silence (`mixnet.silence`); the result must be finite (a NaN is an error, never
silently zeroed) and goes through the true-peak limiter at `ceiling_db`. `process_file` never
writes over its input and never replaces an existing file unless asked to.
"""

import functools
import os
import time
import typing

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from mixnet import audio, checkpoints, chunking, dsp, models, silence


class _Loaded(typing.NamedTuple):
  """What one checkpoint step gives inference."""
  config: ml_collections.ConfigDict
  meta: dict
  model: typing.Any  # flax Module
  sample_rate: int
  channels: int
  plan: chunking.ChunkPlan
  batch_size: int
  params: typing.Any  # pytree of arrays


class AudioProcessor:
  """One object for every engine: a trained model when one loads, else the DSP vocal chain.

  Args:
    checkpoint: a training workdir or checkpoint folder (see `mixnet.checkpoints.candidates`:
      a corrupt preferred step falls back to the newest intact one, with a warning), or None
      for the DSP chain.
    preset: DSP preset used when the DSP chain does the work.
    strict: raise `CheckpointError` when the checkpoint cannot be loaded instead of falling back
      to the DSP chain (the fallback logs one warning).
    chunk_seconds, batch_size: new audio per chunk and chunks per call (default: the
      checkpoint's `config.infer`). Each chunk also carries the model's context on both sides.
    match_loudness: scale the model's output to the training mixes' median loudness (default:
      the checkpoint's `config.infer.match_loudness`; see the module docstring).
    ceiling_db: true-peak ceiling of the output limiter, dBFS.

  Attributes:
    engine: "model" or "dsp". `fallback_reason` says why the DSP chain is used, if it is.
  """

  def __init__(self, checkpoint=None, preset="default", strict=False, chunk_seconds=None,
               batch_size=None, ceiling_db=-1.0, match_loudness=None):
    self.preset = dsp.get_preset(preset) if isinstance(preset, str) else preset
    self.preset_name = preset if isinstance(preset, str) else "custom"
    self.ceiling_db = ceiling_db
    self.checkpoint = None
    self.fallback_reason = None
    self.engine = "dsp"
    if checkpoint is None:
      self.fallback_reason = "no checkpoint given"
      logging.info("mixing with the DSP vocal chain (preset '%s'): no checkpoint given",
                   self.preset_name)
      return
    try:
      located, loaded = checkpoints.load(checkpoint, functools.partial(
          self._restore, chunk_seconds=chunk_seconds, batch_size=batch_size))
    except checkpoints.CheckpointError as e:
      if strict:
        raise
      self.fallback_reason = str(e)
      logging.warning("using the DSP vocal chain (preset '%s') instead of a model: %s",
                      self.preset_name, e)
      return
    self.engine = "model"
    self.checkpoint = str(located)
    for field, value in loaded._asdict().items():
      setattr(self, field, value)
    self.context = models.context(self.config.model)
    self.target_lufs = self._loudness_target(match_loudness)
    self._apply = jax.jit(functools.partial(self.model.apply, {"params": self.params}))

  @staticmethod
  def _restore(located, chunk_seconds, batch_size):
    """Loads one checkpoint step (a `_Loaded`); CheckpointError if it is unusable."""
    meta = checkpoints.load_meta(located)
    try:
      config = ml_collections.ConfigDict(meta["config"])
      model = models.build(config.model)
      sample_rate, channels = int(meta["sample_rate"]), int(meta["channels"])
    except Exception as e:
      raise checkpoints.CheckpointError(
          f"{located}: saved config is not a usable mixnet model config "
          f"({type(e).__name__}: {e})") from e
    infer_config = config.get("infer", ml_collections.ConfigDict())
    plan = chunking.ChunkPlan.create(config.model, chunk_seconds or infer_config.get(
        "chunk_seconds", 8.0), sample_rate)
    batch_size = batch_size or infer_config.get("batch_size", 4)
    abstract = jax.eval_shape(
        lambda x: model.init(jax.random.key(0), x)["params"],
        jax.ShapeDtypeStruct((1, plan.chunk, channels), jnp.float32))
    params = checkpoints.load_params(located, abstract)
    return _Loaded(config, meta, model, sample_rate, channels, plan, batch_size, params)

  def _loudness_target(self, match_loudness):
    """The output loudness (LUFS) to match, or None to keep the model's own level."""
    if match_loudness is None:
      match_loudness = self.config.get("infer", {}).get("match_loudness", True)
    if not match_loudness:
      return None
    target = self.meta.get("data", {}).get("train_mixed_lufs_median")
    if target is None:
      logging.warning("%s: no training-mix loudness saved (data prepared by an older mixnet); "
                      "the output keeps the model's own level", self.checkpoint)
    return target

  def compile(self):
    """Compiles the model for the chunk shape now (otherwise the first call does); seconds."""
    if self.engine != "model":
      return 0.0
    t0 = time.time()
    jax.block_until_ready(self._apply(
        jnp.zeros((self.batch_size, self.plan.chunk, self.channels), jnp.float32)))
    return time.time() - t0

  def process_vocal(self, audio_tc, sample_rate, preset=None):
    """Mixes a raw vocal: float32 `[time, channels]` at `sample_rate` Hz -> same shape and rate.

    `preset` overrides the DSP preset for this call (used only by the DSP engine).
    """
    audio_tc = np.asarray(audio_tc, np.float32)
    if audio_tc.ndim != 2 or audio_tc.shape[0] == 0 or audio_tc.shape[1] > audio.MAX_CHANNELS:
      raise ValueError(f"expected audio [time, 1 or 2 channels], got shape {audio_tc.shape}")
    if not np.all(np.isfinite(audio_tc)):
      raise ValueError("input audio contains NaN or infinite samples")
    if self.engine == "dsp":
      return dsp.process(audio_tc, sample_rate, preset or self.preset)
    y = silence.dc_block(self._run_model(audio.resample(audio_tc, sample_rate,
                                                        self.sample_rate)), self.sample_rate)
    if not np.all(np.isfinite(y)):
      raise FloatingPointError(
          f"model {self.checkpoint} produced NaN/inf samples; refusing to write them")
    y = _fit_length(audio.resample(y, self.sample_rate, sample_rate), audio_tc.shape[0])
    y = silence.gate(y, audio_tc, sample_rate, self.sample_rate, self.context,
                     joint=self.channels > 1)
    if self.target_lufs is not None:
      y = dsp.normalize_loudness(y, sample_rate, self.target_lufs)
    return dsp.true_peak_limit(y, sample_rate, ceiling_db=self.ceiling_db)

  def _run_model(self, x_tc):
    """The model over float32 `[time, channels]` at its own rate; the input's channel count."""
    if self.channels == 1:
      # Each channel is its own mono signal.
      return np.concatenate([chunking.process_chunked(self._apply, x_tc[:, c:c + 1], self.plan,
                                                      self.batch_size)
                             for c in range(x_tc.shape[1])], axis=1)
    y = chunking.process_chunked(self._apply, audio.to_channels(x_tc, self.channels), self.plan,
                                 self.batch_size)
    return audio.to_channels(y, x_tc.shape[1])


def _fit_length(audio_tc, length):
  """Crops or zero-pads to `length` samples (resampling can be off by one)."""
  if audio_tc.shape[0] >= length:
    return audio_tc[:length]
  return np.pad(audio_tc, [(0, length - audio_tc.shape[0]), (0, 0)])


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


def process_file(in_path, out_path, checkpoint=None, preset="default", strict=False,
                 sample_rate=None, channels=None, processor=None, overwrite=False,
                 **processor_kwargs):
  """Mixes one file and writes it atomically.

  Args:
    in_path: raw vocal (any format soundfile reads).
    out_path: where to write; the format follows the extension (`audio.OUTPUT_FORMATS`:
      .wav/.flac/.aiff 24-bit, .ogg Vorbis, .mp3 where libsndfile writes it).
    checkpoint, preset, strict: see `AudioProcessor` (ignored when `processor` is given).
    sample_rate, channels: output rate/channel count; default: the input's.
    processor: an `AudioProcessor` to reuse across files (loads and compiles once).
    overwrite: replace an existing `out_path` (never the input itself; see `check_output`).
    **processor_kwargs: more `AudioProcessor` arguments (chunk_seconds, batch_size, ceiling_db).

  Returns:
    A summary dict: engine, checkpoint, preset, input, output, duration_s, seconds,
    realtime_factor, peak_dbfs, loudness_lufs, sample_rate, channels, fallback_reason.

  Raises:
    AudioError: unreadable/unusable input, an output refused by `check_output` (before any
      work), or one that appeared meanwhile (the final move never replaces it).
  """
  check_output(out_path, in_path, overwrite)
  raw_tc, sr = audio.load(in_path)
  if processor is None:
    processor = AudioProcessor(checkpoint, preset=preset, strict=strict, **processor_kwargs)
  t0 = time.time()
  out_tc = processor.process_vocal(raw_tc, sr)
  if channels is not None:
    out_tc = audio.to_channels(out_tc, channels)
  out_sr = sr
  if sample_rate is not None and sample_rate != sr:
    out_tc = dsp.true_peak_limit(audio.resample(out_tc, sr, sample_rate), sample_rate,
                                 ceiling_db=processor.ceiling_db)
    out_sr = sample_rate
  seconds = time.time() - t0
  audio.save(out_path, out_tc, out_sr, overwrite=overwrite)
  duration = raw_tc.shape[0] / sr
  peak = float(np.max(np.abs(out_tc)))
  return {
      "engine": processor.engine,
      "checkpoint": processor.checkpoint,
      "preset": processor.preset_name if processor.engine == "dsp" else None,
      "fallback_reason": processor.fallback_reason,
      "input": os.fspath(in_path),
      "output": os.fspath(out_path),
      "duration_s": duration,
      "seconds": seconds,
      "realtime_factor": duration / max(seconds, 1e-9),
      "peak_dbfs": 20 * np.log10(max(peak, 1e-10)),
      "loudness_lufs": dsp.integrated_loudness(out_tc, out_sr),
      "sample_rate": out_sr,
      "channels": out_tc.shape[1],
  }

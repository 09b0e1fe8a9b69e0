r"""Processing raw vocals with a trained model, or with the DSP chain when there is none.

From Python:
  from mixnet import infer
  summary = infer.process_file("raw/take1.wav", "out/take1.wav", checkpoint="/tmp/mixnet/tiny")
  processor = infer.AudioProcessor(checkpoint="/tmp/mixnet/tiny")   # or checkpoint=None: DSP
  mixed_tc = processor.process_vocal(raw_tc, sample_rate)

From the shell:
  python -m mixnet.infer in1.wav in2.wav --out_dir=out [--checkpoint=WORKDIR] [--preset=default]

Chunked inference: a file of any length is cut into chunks of one fixed shape
`[batch_size, chunk, channels]`, so the jitted model compiles once. Consecutive chunks overlap by
more than the model's receptive field: each chunk carries `context` samples of input on each side
that are computed but discarded, and the kept parts of neighbours overlap by a short crossfade.
Chunk starts sit on the model's alignment grid (its total stride / STFT hop), so every kept
sample sees exactly the input it would in one pass over the whole file: chunked output equals
unchunked output to float precision, with no seams.

Channels: a mono model processes each channel of a stereo file separately (the stereo image is
kept); a stereo model gets a mono file copied to both sides and its output averaged back to mono.
The output keeps the input's sample rate and channel count unless `sample_rate`/`channels` ask
otherwise. Level: the model's receptive field (about 1.5 s for the base config) sees phrases, not
whole songs, so it cannot know a take's overall loudness; by default (`config.infer.
match_loudness`) the model's output is scaled to the median integrated loudness of the training
mixes, measured when the data was prepared and saved with the checkpoint: the user's own delivery
level. Output safety: the result must be finite (a NaN is an error, never silently zeroed) and
goes through the true-peak limiter at `ceiling_db`.
"""

import dataclasses
import functools
import logging as py_logging
import os
import time
import warnings

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mixnet import audio, checkpoints, dsp, models

log = py_logging.getLogger(__name__)

_FADE = 1024  # crossfade between the kept parts of neighbouring chunks, samples


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
  """Geometry of chunked processing, all in samples at the model's rate."""
  chunk: int  # input samples per chunk (the compiled shape)
  context: int  # discarded input on each side of a chunk's kept part
  fade: int  # crossfade between kept parts of neighbouring chunks
  hop: int  # distance between chunk starts

  @classmethod
  def create(cls, model_config, chunk_seconds, sample_rate):
    """A plan whose chunks each contribute about `chunk_seconds` of new audio (the hop)."""
    align = models.alignment(model_config)
    left, right = models.context(model_config)
    context = _round_up(max(left, right), align)
    fade = _round_up(_FADE, align)
    # hop >= fade: only two neighbouring chunks ever overlap, so the ramps sum to one.
    hop = max(_round_up(chunk_seconds * sample_rate, align), fade)
    return cls(chunk=hop + 2 * context + fade, context=context, fade=fade, hop=hop)


def _round_up(n, multiple):
  return -(-int(n) // multiple) * multiple


def chunk_weights(plan, num_chunks):
  """Overlap-add weights of each chunk's output, `[num_chunks, chunk]`, summing to 1 over time.

  Chunk k's input starts at `k * hop - context`; its kept part starts `context` later. Inside
  the kept part it fades in over the first `fade` samples (except the first chunk) and out over
  the last `fade` (except the last), with raised-cosine ramps that sum to one.
  """
  ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(plan.fade) + 0.5) / plan.fade)
  w = np.zeros((num_chunks, plan.chunk), np.float32)
  kept = slice(plan.context, plan.chunk - plan.context)
  w[:, kept] = 1.0
  for k in range(num_chunks):
    if k > 0:
      w[k, plan.context:plan.context + plan.fade] = ramp
    if k < num_chunks - 1:
      w[k, plan.chunk - plan.context - plan.fade:plan.chunk - plan.context] = ramp[::-1]
  return w


def process_chunked(apply_fn, audio_tc, plan, batch_size):
  """Runs `apply_fn` (`[batch, chunk, channels] -> same`) over `audio_tc` chunk by chunk.

  Args:
    apply_fn: jitted model function of `[batch, plan.chunk, channels]`; batch is `batch_size`
      except for files shorter than `batch_size` chunks.
    audio_tc: float32 `[time, channels]` at the model's rate.
    plan: a ChunkPlan.
    batch_size: chunks per call.

  Returns:
    float32 `[time, channels]`, equal (to float precision) to one pass over the whole signal
    zero-padded by `plan.context` at both ends.
  """
  length, channels = audio_tc.shape
  num_chunks = max(1, -(-length // plan.hop))
  total = (num_chunks - 1) * plan.hop + plan.chunk
  padded = np.zeros((total, channels), np.float32)
  padded[plan.context:plan.context + length] = audio_tc
  starts = np.arange(num_chunks) * plan.hop
  weights = chunk_weights(plan, num_chunks)
  out = np.zeros((total, channels), np.float32)
  # Fewer chunks than a batch: a smaller batch (one more compile per size, at most
  # `batch_size` shapes) instead of padding a short file with whole chunks of silence.
  batch_size = min(batch_size, num_chunks)
  for b in range(0, num_chunks, batch_size):
    idx = starts[b:b + batch_size]
    batch = np.zeros((batch_size, plan.chunk, channels), np.float32)
    for j, s in enumerate(idx):
      batch[j] = padded[s:s + plan.chunk]
    pred = np.asarray(apply_fn(batch))
    for j, s in enumerate(idx):
      out[s:s + plan.chunk] += pred[j] * weights[b + j][:, None]
  return out[plan.context:plan.context + length]


class AudioProcessor:
  """One object for every engine: a trained model when one loads, else the DSP vocal chain.

  Args:
    checkpoint: a training workdir or checkpoint folder (see `mixnet.checkpoints.resolve`), or
      None for the DSP chain.
    preset: DSP preset used when the DSP chain does the work.
    strict: raise `CheckpointError` when the checkpoint cannot be loaded instead of falling back.
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
    else:
      try:
        self._load(checkpoint, chunk_seconds, batch_size, match_loudness)
        self.engine = "model"
      except checkpoints.CheckpointError as e:
        if strict:
          raise
        self.fallback_reason = str(e)
    if self.engine == "dsp":
      message = (f"mixnet: using the DSP vocal chain (preset '{self.preset_name}') instead of a "
                 f"model: {self.fallback_reason}")
      warnings.warn(message, stacklevel=2)
      log.warning(message)

  def _load(self, checkpoint, chunk_seconds, batch_size, match_loudness):
    located = checkpoints.resolve(checkpoint)
    meta = checkpoints.load_meta(located)
    try:
      config = ml_collections.ConfigDict(meta["config"])
      self.config, self.meta = config, meta
      self.model = models.build(config.model)
      self.sample_rate = int(meta["sample_rate"])
      self.channels = int(meta["channels"])
    except Exception as e:
      raise checkpoints.CheckpointError(
          f"{located.directory}/{located.step}: saved config is not a usable mixnet model "
          f"config ({type(e).__name__}: {e})") from e
    infer_config = config.get("infer", ml_collections.ConfigDict())
    self.plan = ChunkPlan.create(config.model, chunk_seconds or infer_config.get(
        "chunk_seconds", 8.0), self.sample_rate)
    self.batch_size = batch_size or infer_config.get("batch_size", 4)
    if match_loudness is None:
      match_loudness = infer_config.get("match_loudness", True)
    self.target_lufs = meta.get("data", {}).get("train_mixed_lufs_median")
    if match_loudness and self.target_lufs is None:
      log.warning("%s: no training-mix loudness saved (data prepared by an older mixnet); the "
                  "output keeps the model's own level", located.directory)
    if not match_loudness:
      self.target_lufs = None
    abstract = jax.eval_shape(
        lambda x: self.model.init(jax.random.key(0), x)["params"],
        jax.ShapeDtypeStruct((1, self.plan.chunk, self.channels), jnp.float32))
    self.params = checkpoints.load_params(located, abstract)
    self.checkpoint = f"{located.directory}/{located.step}"
    self._apply = jax.jit(functools.partial(self.model.apply, {"params": self.params}))

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
    x = audio.resample(audio_tc, sample_rate, self.sample_rate)
    if self.channels == 1:
      # Each channel is its own mono signal: chunks of all channels share the batches.
      y = np.concatenate([process_chunked(self._apply, x[:, c:c + 1], self.plan, self.batch_size)
                          for c in range(x.shape[1])], axis=1)
    else:
      y = process_chunked(self._apply, audio.to_channels(x, self.channels), self.plan,
                          self.batch_size)
      y = audio.to_channels(y, audio_tc.shape[1])
    if not np.all(np.isfinite(y)):
      raise FloatingPointError(
          f"model {self.checkpoint} produced NaN/inf samples; refusing to write them")
    y = _fit_length(audio.resample(y, self.sample_rate, sample_rate), audio_tc.shape[0])
    if self.target_lufs is not None:
      y = dsp.normalize_loudness(y, sample_rate, self.target_lufs)
    return dsp.true_peak_limit(y, sample_rate, ceiling_db=self.ceiling_db)


def _fit_length(audio_tc, length):
  """Crops or zero-pads to `length` samples (resampling can be off by one)."""
  if audio_tc.shape[0] >= length:
    return audio_tc[:length]
  return np.pad(audio_tc, [(0, length - audio_tc.shape[0]), (0, 0)])


def process_file(in_path, out_path, checkpoint=None, preset="default", strict=False,
                 sample_rate=None, channels=None, processor=None, **processor_kwargs):
  """Mixes one file and writes it atomically.

  Args:
    in_path: raw vocal (any format soundfile reads).
    out_path: where to write (format from the extension, 24-bit); never the input itself.
    checkpoint, preset, strict: see `AudioProcessor` (ignored when `processor` is given).
    sample_rate, channels: output rate/channel count; default: the input's.
    processor: an `AudioProcessor` to reuse across files (loads and compiles once).
    **processor_kwargs: more `AudioProcessor` arguments (chunk_seconds, batch_size, ceiling_db).

  Returns:
    A summary dict: engine, checkpoint, preset, input, output, duration_s, seconds,
    realtime_factor, peak_dbfs, loudness_lufs, sample_rate, channels, fallback_reason.

  Raises:
    AudioError: unreadable/unusable input, output equal to the input, unwritable output folder.
  """
  audio.ensure_not_input(out_path, in_path)
  out_dir = os.path.dirname(os.path.abspath(out_path))
  if not os.path.isdir(out_dir):
    raise audio.AudioError(f"{out_path}: output folder {out_dir} does not exist")
  if not os.access(out_dir, os.W_OK):
    raise audio.AudioError(f"{out_path}: output folder {out_dir} is not writable")
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
  audio.save(out_path, out_tc, out_sr)
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


def main(argv):
  """`python -m mixnet.infer IN [IN ...] --out_dir=DIR`: one line per file, then a total."""
  import tqdm
  from absl import flags

  f = flags.FLAGS
  inputs = argv[1:]
  if not inputs:
    raise SystemExit("usage: python -m mixnet.infer IN [IN ...] --out_dir=DIR "
                     "[--checkpoint=WORKDIR] [--preset=default] [--strict]")
  os.makedirs(f.out_dir, exist_ok=True)
  processor = AudioProcessor(f.checkpoint, preset=f.preset, strict=f.strict,
                             ceiling_db=f.ceiling_db)
  failures = 0
  for path in tqdm.tqdm(inputs, desc="mixing", unit="file"):
    out_path = os.path.join(f.out_dir, os.path.splitext(os.path.basename(path))[0] + ".wav")
    try:
      s = process_file(path, out_path, processor=processor)
    except (audio.AudioError, ValueError) as e:
      failures += 1
      tqdm.tqdm.write(f"FAILED {path}: {e}")
      continue
    tqdm.tqdm.write(
        f"{s['output']}  engine={s['engine']}  {s['duration_s']:.1f} s audio in "
        f"{s['seconds']:.2f} s ({s['realtime_factor']:.0f}x real time)  peak "
        f"{s['peak_dbfs']:.1f} dBFS  {s['loudness_lufs']:.1f} LUFS")
  print(f"{len(inputs) - failures}/{len(inputs)} files written to {f.out_dir}")
  if failures:
    raise SystemExit(1)


if __name__ == "__main__":
  from absl import app, flags

  flags.DEFINE_string("out_dir", None, "Folder for the mixed files (same names, .wav).")
  flags.DEFINE_string("checkpoint", None, "Training workdir or checkpoint folder; without it "
                      "the DSP chain does the work.")
  flags.DEFINE_string("preset", "default", f"DSP preset: one of {sorted(dsp.PRESETS)}.")
  flags.DEFINE_bool("strict", False, "Fail instead of falling back to DSP when the checkpoint "
                    "cannot be loaded.")
  flags.DEFINE_float("ceiling_db", -1.0, "True-peak ceiling of the output limiter, dBFS.")
  flags.mark_flag_as_required("out_dir")
  app.run(main)

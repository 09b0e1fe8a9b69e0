"""The two engines behind `mixnet.infer.AudioProcessor`: the DSP vocal chain and a trained model.

Both have one interface, so the processor never asks which engine it holds:
  name           "dsp" or "model" (for reports and logs)
  source         what was loaded (a model file or checkpoint step folder); None for DSP
  meta           the model's saved metadata (config, step, training data facts); {} for DSP
  sample_rate    the rate the model works at, Hz; None for DSP (it works at any rate)
  channels       the model's channel count; None for DSP (it takes mono or stereo)
  target_lufs    the model's default output loudness; None for DSP (each preset sets its own)
  style          a learned chain's settings (`mixnet.models.style_card`); None for DSP and for
                 models without a chain
  compile()      compiles every shape a call can need; seconds (0 for DSP)
  mix(x_tc, sample_rate, settings): float32 `[time, channels]` at `sample_rate` Hz -> the same
                 shape and rate, true-peak limited.

`Settings` is what one call's `preset_config` asks for (`mixnet.infer.settings`). `strength`
below 1 blends the full style with the gain-staged raw take: the raw take brought to the
loudness of the full-style output, so the blend changes the sound, not the level.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mixnet import audio, chunking, dsp, models, silence
from mixnet.diffdsp import gain


@dataclasses.dataclass(frozen=True)
class Settings:
  """One call's mixing settings.

  Attributes:
    preset: the DSP chain (`mixnet.dsp.Preset`), used by the DSP engine.
    output_lufs: the model's output loudness; None keeps the model's default (`target_lufs`).
    ceiling_db: the model's true-peak ceiling, dBFS; None keeps the processor's `ceiling_db`.
    strength: 0 (the gain-staged raw take) to 1 (the full style).
  """
  preset: dsp.Preset
  output_lufs: float | None = None
  ceiling_db: float | None = None
  strength: float = 1.0


def blend(x_tc, full_tc, sample_rate, strength, ceiling_db):
  """`strength` of the full style `full_tc` over the raw `x_tc` brought to its loudness.

  Strength 1 returns `full_tc` itself; otherwise the blend goes through the true-peak limiter
  at `ceiling_db`. All arrays are float32 `[time, channels]` at `sample_rate` Hz.
  """
  if strength >= 1.0:
    return full_tc
  staged_tc = dsp.normalize_loudness(x_tc, sample_rate,
                                     dsp.integrated_loudness(full_tc, sample_rate))
  mixed_tc = np.float32(strength) * full_tc + np.float32(1.0 - strength) * staged_tc
  return dsp.true_peak_limit(mixed_tc, sample_rate, ceiling_db=ceiling_db)


class DspEngine:
  """The numpy/scipy vocal chain (`mixnet.dsp`): no model, any rate, mono or stereo.

  Args:
    fallback_reason: why the DSP chain does the work ("no checkpoint given", or the load error).
  """
  name = "dsp"
  source = None
  sample_rate = None
  channels = None
  target_lufs = None
  style = None

  def __init__(self, fallback_reason):
    self.fallback_reason = fallback_reason
    self.meta = {}

  def compile(self):
    """Nothing to compile; 0 seconds."""
    return 0.0

  def mix(self, x_tc, sample_rate, settings):
    """The chain of `settings.preset` over `x_tc`, blended by `settings.strength`."""
    full_tc = dsp.process(x_tc, sample_rate, settings.preset)
    return blend(x_tc, full_tc, sample_rate, settings.strength, settings.preset.ceiling_db)


class ModelEngine:
  """A trained model run chunk by chunk (`mixnet.chunking`) at its own rate and channel count.

  Attributes: `stages` (`Stage`s run in series), `context` (the whole model's (left, right)
  samples, for the silence gate), and those of the module docstring.

  Args:
    params: the model's parameters (nested dict of arrays), e.g. from `model_file.load_model`.
    meta: its saved metadata (resolved config, sample rate, channels, training data facts).
    source: what was loaded, for messages and reports.
    chunk_seconds, batch_size: new audio per full chunk and most chunks per call. By default
      the config's `infer` group's, lengthened for a model with a long context
      (`chunking.chunk_sizes`); given here, they are used as they are. Each chunk also carries
      the model's context on the side it needs it, and a hybrid runs as its two models in
      series (`model_stages`), each chunked for its own context.
    match_loudness: scale the output to the training mixes' median loudness (default: the
      config's `infer.match_loudness`); when off, or when no such loudness was saved, the
      output keeps the model's own level.
    ceiling_db: default true-peak ceiling of the output limiter, dBFS.
  """
  name = "model"
  fallback_reason = None

  def __init__(self, params, meta, source, chunk_seconds=None, batch_size=None,
               match_loudness=None, ceiling_db=-1.0):
    self.meta, self.source, self.ceiling_db = meta, source, ceiling_db
    config = ml_collections.ConfigDict(meta["config"])
    infer_config = config.get("infer", ml_collections.ConfigDict())
    self.sample_rate, self.channels = int(meta["sample_rate"]), int(meta["channels"])
    self.context = models.context(config.model)
    self.stages = []
    for stage_config, stage_params in model_stages(config.model, params):
      hop_seconds, batch = chunking.chunk_sizes(
          models.context(stage_config), self.sample_rate,
          infer_config.get("chunk_seconds", 8.0), infer_config.get("batch_size", 4))
      self.stages.append(Stage.create(stage_config, stage_params, self.sample_rate,
                                      chunk_seconds or hop_seconds, batch_size or batch))
    self.input_lufs = models.chain.input_lufs(config.model)
    if match_loudness is None:
      match_loudness = infer_config.get("match_loudness", True)
    self.target_lufs = (meta.get("data", {}).get("train_mixed_lufs_median")
                        if match_loudness else None)
    self.style = models.style_card(config.model, params)

  def compile(self):
    """Compiles every stage for every shape a call can run (`Stage.shapes`); seconds."""
    t0 = time.perf_counter()
    for stage in self.stages:
      for chunks, samples in stage.shapes():
        jax.block_until_ready(stage.apply(jnp.zeros((chunks, samples, self.channels),
                                                    jnp.float32)))
    return time.perf_counter() - t0

  def mix(self, x_tc, sample_rate, settings):
    """The model over `x_tc`: DC-blocked, silence kept silent, at the settings' loudness.

    Raises:
      FloatingPointError: the model produced NaN/inf samples (never silently zeroed).
    """
    y_tc = silence.dc_block(self._run(audio.resample(x_tc, sample_rate, self.sample_rate)),
                            self.sample_rate)
    if not np.all(np.isfinite(y_tc)):
      raise FloatingPointError(
          f"model {self.source} produced NaN/inf samples; refusing to return them")
    y_tc = _fit_length(audio.resample(y_tc, self.sample_rate, sample_rate), x_tc.shape[0])
    y_tc = silence.gate(y_tc, x_tc, sample_rate, self.sample_rate, self.context,
                        joint=self.channels > 1)
    target = settings.output_lufs if settings.output_lufs is not None else self.target_lufs
    if target is not None:
      y_tc = dsp.normalize_loudness(y_tc, sample_rate, target)
    ceiling_db = self.ceiling_db if settings.ceiling_db is None else settings.ceiling_db
    y_tc = dsp.true_peak_limit(y_tc, sample_rate, ceiling_db=ceiling_db)
    return blend(x_tc, y_tc, sample_rate, settings.strength, ceiling_db)

  def _run(self, x_tc):
    """The model over float32 `[time, channels]` at its own rate; the input's channel count.

    A chain model's input is first staged to its `input_lufs`, by one gain for the whole take
    measured as training measured it: on the take in the model's channel count.
    """
    if self.input_lufs is not None:
      gain_db = gain.staging_gain_db(audio.to_channels(x_tc, self.channels), self.sample_rate,
                                     self.input_lufs)
      x_tc = (x_tc * 10.0 ** (gain_db / 20.0)).astype(np.float32)
    if self.channels == 1:
      # Each channel is its own mono signal (the stereo image is kept).
      return np.concatenate([run_stages(self.stages, x_tc[:, c:c + 1])
                             for c in range(x_tc.shape[1])], axis=1)
    y_tc = run_stages(self.stages, audio.to_channels(x_tc, self.channels))
    return audio.to_channels(y_tc, x_tc.shape[1])


@dataclasses.dataclass(frozen=True)
class Stage:
  """One model of a series, jitted with its parameters, and how its input is chunked."""
  apply: object  # `[chunks, samples, channels] -> same`, jitted
  plan: chunking.ChunkPlan
  batch_size: int

  @classmethod
  def create(cls, model_config, params, sample_rate, chunk_seconds, batch_size):
    """The jitted model of `model_config`: `chunk_seconds` of new audio per full chunk."""
    apply = jax.jit(models.inference_fn(model_config, jax.tree.map(jnp.asarray, params)))
    return cls(apply, chunking.ChunkPlan.create(model_config, chunk_seconds, sample_rate),
               batch_size)

  def shapes(self):
    """Every `(chunks, samples)` a call can run the model on (channels are the model's)."""
    full = [(b, self.plan.chunk) for b in range(1, self.batch_size + 1)]
    return full + [(1, self.plan.length(hop)) for hop in self.plan.hops[1:]]


def model_stages(model_config, params):
  """`[(model config, params)]`: the registry models a model runs as, in order.

  A `hybrid` is its chain followed by its U-Net residual (`mixnet.models.hybrid`). Run as two
  models, each is chunked with its own context, so the U-Net, which costs the most per sample,
  does not recompute the chain's seconds of reverb and compressor context. Any other model
  is one stage.
  """
  if model_config.name != "hybrid":
    return [(model_config, params)]
  return [(ml_collections.ConfigDict({"name": name, "channels": model_config.channels,
                                      name: model_config.hybrid[name]}), params[key])
          for name, key in (("chain", "chain"), ("time_unet", "residual"))]


def run_stages(stages, x_tc):
  """`stages` in series over float32 `[time, channels]`, chunked; the same shape.

  The take is extended by the later stages' right contexts, so each stage also produces what
  the next reads past the end of the take (a reverb tail): the result equals one pass of the
  whole series.
  """
  length = x_tc.shape[0]
  x_tc = _fit_length(x_tc, length + sum(stage.plan.right for stage in stages[1:]))
  for stage in stages:
    x_tc = chunking.process_chunked(stage.apply, x_tc, stage.plan, stage.batch_size)
  return x_tc[:length]


def _fit_length(audio_tc, length):
  """Crops or zero-pads `[time, channels]` audio to `length` samples."""
  if audio_tc.shape[0] >= length:
    return audio_tc[:length]
  return np.pad(audio_tc, [(0, length - audio_tc.shape[0]), (0, 0)])

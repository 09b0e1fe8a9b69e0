"""Model registry: build a model from `config.model` and describe it (receptive field, size, cost).

Every model is a flax.linen Module used as
  params = model.init(rng, audio_btc)["params"]
  mixed_btc = model.apply({"params": params}, audio_btc)
with float32 audio `[batch, time, channels]`; the output has the input's shape for any length.
Models hold parameters only (no batch statistics, no dropout), so `apply` needs no rngs and no
mutable collections.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mixnet import errors
from mixnet.models import chain, hybrid, spectral_unet, time_unet

# The time-domain U-Net under the name the first design of mixnet gave it; "time_unet" in configs.
AudioUNet = time_unet.TimeUNet

# name -> (Module class, library with its `context(module)` and `alignment(module)`).
_MODELS = {
    "time_unet": (time_unet.TimeUNet, time_unet),
    "spectral_unet": (spectral_unet.SpectralUNet, spectral_unet),
    "chain": (chain.VocalChain, chain),
    "hybrid": (hybrid.HybridChain, hybrid),
}


def _lookup(model_config):
  if model_config.name not in _MODELS:
    raise errors.MixnetError(f"config.model.name: unknown model {model_config.name!r}; expected "
                             f"one of {', '.join(sorted(_MODELS))}")
  return _MODELS[model_config.name]


def build(model_config):
  """Returns the flax Module named by `model_config.name` ("time_unet" | "spectral_unet").

  Hyper-parameters come from `model_config[model_config.name]` plus `model_config.channels`.
  """
  module_class, _ = _lookup(model_config)
  hparams = model_config[model_config.name].to_dict()
  hparams = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
  return module_class(channels=model_config.channels, **hparams)


def init_variables(model, rng, audio_btc):
  """`model.init(rng, audio_btc)`, compiled as one program, with jax's non-partitionable threefry.

  An eager init compiles each of its ops on its own (hundreds of tiny programs). Under the
  partitionable threefry (jax's default) XLA compiles a U-Net's init 2-3x slower on CPU (tiny
  time_unet: 12.6 s against 4.2 s on 2 cores); it only matters for parameters created sharded
  across devices, and mixnet replicates them. The draw has the same distributions, other bits.
  """
  with jax.threefry_partitionable(False):
    return jax.jit(model.init)(rng, audio_btc)


def learned_chain(model_config, params):
  """(VocalChain module, its parameters) inside a `chain` or `hybrid` model; None otherwise."""
  model = build(model_config)
  if model_config.name == "chain":
    return model, params
  if model_config.name == "hybrid":
    return hybrid.chain_of(model), params["chain"]
  return None


def inference_fn(model_config, params):
  """`audio_btc -> mixed_btc` of the model with fixed `params` (to be jitted for inference).

  Equal to `build(model_config).apply({"params": params}, audio_btc)`; a model whose library
  has `inference_fn(module, params)` computes there, once, what depends on its parameters
  alone (the chain's EQ FIR and reverb response).
  """
  model = build(model_config)
  library = _lookup(model_config)[1]
  if hasattr(library, "inference_fn"):
    return library.inference_fn(model, params)
  return lambda audio_btc: model.apply({"params": params}, audio_btc)


def style_card(model_config, params):
  """A learned chain's settings in physical units, `[{stage, name, value, unit}]`; else None.

  What a user reads to see the learned style (the service's /v1/info shows it); `value` is a
  float, or a list of floats for per-band settings (reverb decay times and levels).
  """
  found = learned_chain(model_config, params)
  if found is None:
    return None
  module, chain_params = found
  learned = chain.physical(module, chain_params)
  return [{"stage": p.stage, "name": p.name, "unit": p.unit,
           "value": np.asarray(learned[p.stage][p.name], np.float64).tolist()}
          for p in chain.params_table(module)]


def context(model_config):
  """(left, right): input samples before / after an output sample that can change it.

  Chunked inference that feeds each chunk this much real audio on each side of the samples it
  keeps, with chunk starts at multiples of `alignment`, reproduces whole-file output exactly.
  """
  return _lookup(model_config)[1].context(build(model_config))


def alignment(model_config):
  """Shift granularity in samples: the model commutes with input shifts by multiples of this.

  Strided layers (and STFT framing) see a signal differently depending on where it sits on
  their grid; shifting by a multiple of the total stride leaves every output sample unchanged.
  Chunked inference starts chunks on this grid so chunked and one-pass outputs are equal.
  """
  return _lookup(model_config)[1].alignment(build(model_config))


def receptive_field(model_config):
  """Total span in samples of the input that affects one output sample: left + 1 + right."""
  left, right = context(model_config)
  return left + 1 + right


def _abstract_params(model, length, channels):
  audio = jax.ShapeDtypeStruct((1, length, channels), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x)["params"], audio)


def param_groups(model_config):
  """Names of the model's top-level parameter groups (what `config.opt.hold` can name)."""
  return sorted(_abstract_params(build(model_config), 4096, model_config.channels))


def param_count(model_config):
  """Number of trainable scalars."""
  params = _abstract_params(build(model_config), 4096, model_config.channels)
  return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params)))


def flops_per_second(model_config, sample_rate):
  """Floating-point operations of one forward pass per second of audio (XLA's cost analysis).

  Measured on a 4 s input (edge padding amortised) without running it.
  """
  model = build(model_config)
  length = int(4 * sample_rate)
  params = _abstract_params(model, length, model_config.channels)
  audio = jax.ShapeDtypeStruct((1, length, model_config.channels), jnp.float32)
  lowered = jax.jit(lambda p, x: model.apply({"params": p}, x)).lower(params, audio)
  cost = lowered.cost_analysis()
  if isinstance(cost, list):
    cost = cost[0]
  return float(cost["flops"]) / 4.0


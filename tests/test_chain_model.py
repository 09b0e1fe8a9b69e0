"""`chain` and `hybrid` models: shapes, gradients of every parameter, chunked inference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import base
from experiments import chain as chain_config
from experiments import hybrid as hybrid_config
from mixnet import chunking, models
from mixnet.models import chain

SR = 16000


def _config(name="chain", channels=1):
  """A small chain at 16 kHz: 0.3 s reverb tail, releases up to 100 ms."""
  config = (chain_config if name == "chain" else hybrid_config).get_config("tiny")
  config.sample_rate = SR
  hparams = config.model.chain if name == "chain" else config.model.hybrid.chain
  hparams.ir_seconds = 0.3
  hparams.max_release_ms = 100.0
  if name == "hybrid":
    hparams.ir_seconds = 0.15
    hparams.max_release_ms = 30.0
    config.model.hybrid.time_unet.bottleneck_dilations = (1, 2)
  config.model.channels = channels
  return config.model


def _vocalish(seconds, channels=1, seed=0):
  """A gliding harmonic tone with syllables and a noise floor, `[1, time, channels]` at 16 kHz."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * SR)) / SR
  phase = 2 * np.pi * np.cumsum(180.0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / SR
  tone = sum(np.sin(k * phase) / k for k in range(1, 8))
  x = 0.3 * tone * np.clip(np.sin(2 * np.pi * 4 * t + 0.5), 0, None)
  x = x[None, :, None] + 0.01 * rng.standard_normal((1, t.size, channels))
  return x.astype(np.float32)


def _init(model_config, audio):
  model = models.build(model_config)
  variables = jax.jit(model.init)(jax.random.key(0), jnp.asarray(audio))
  assert list(variables) == ["params"]
  return model, variables["params"]


@pytest.mark.parametrize("channels", [1, 2])
def test_chain_keeps_shape_and_has_few_parameters(channels):
  config = _config(channels=channels)
  model, params = _init(config, _vocalish(0.1, channels))
  out = jax.jit(lambda x: model.apply({"params": params}, x))(_vocalish(0.2, channels))
  assert out.shape == (1, int(0.2 * SR), channels) and np.all(np.isfinite(out))
  assert 20 < models.param_count(config) < 300
  with pytest.raises(ValueError, match="built for"):
    model.apply({"params": params}, _vocalish(0.1, 3 - channels))


def test_initial_settings_are_the_documented_ones():
  model = models.build(_config())
  _, params = _init(_config(), _vocalish(0.05))
  settings = chain.physical(model, params)
  assert float(settings["compressor"]["threshold_db"]) == pytest.approx(-20.0, abs=1e-3)
  assert float(settings["eq"]["highpass_hz"]) == pytest.approx(20.0, rel=1e-4)
  assert float(settings["reverb"]["send_db"]) == pytest.approx(-20.0, abs=1e-3)
  for p in chain.params_table(model):
    value = np.asarray(settings[p.stage][p.name])
    assert np.all((value > p.low - 1e-6 * abs(p.low)) & (value < p.high * (1 + 1e-6))), p.key


def test_every_parameter_gets_a_finite_nonzero_gradient():
  """At a random setting (at the initial one, 0 dB peaks give their frequency no gradient)."""
  config = _config()
  audio = _vocalish(0.6)
  model, params = _init(config, audio[:, :100])
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda p: p + jnp.asarray(rng.normal(0, 1, p.shape), jnp.float32), params)
  target = jnp.asarray(np.roll(audio, 40, axis=1) * 0.7)
  grads = jax.jit(jax.grad(
      lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, jnp.asarray(audio)) - target))))(params)
  for key, g in grads.items():
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g) != 0.0), key


@pytest.mark.parametrize("name", ["chain", "hybrid"])
def test_chunked_inference_equals_one_pass(name):
  config = _config(name)
  left, right = models.context(config)
  hparams = config.chain if name == "chain" else config.hybrid.chain
  # At least the reverb tail and the compressor memory.
  assert left > int(hparams.ir_seconds * SR) + int(12 * hparams.max_release_ms * 1e-3 * SR)
  audio = _vocalish(2.5 * left / SR + 0.5, seed=2)
  model, params = _init(config, audio[:, :512])
  apply = jax.jit(lambda x: model.apply({"params": params}, x))
  plan = chunking.ChunkPlan.create(config, left / SR, SR)
  chunked = chunking.process_chunked(apply, audio[0], plan, batch_size=2)
  padded = np.pad(audio, ((0, 0), (plan.context, plan.context), (0, 0)))
  whole = np.asarray(apply(padded))[0, plan.context:plan.context + audio.shape[1]]
  np.testing.assert_allclose(chunked, whole, atol=1e-4)
  assert np.max(np.abs(whole)) > 0.05
  if name == "hybrid":
    # The U-Net residual starts near zero: the untrained hybrid is its chain.
    chain_config_small = _config()
    chain_config_small.chain.ir_seconds = 0.15
    chain_config_small.chain.max_release_ms = 30.0
    alone = jax.jit(models.build(chain_config_small).apply)({"params": params["chain"]}, padded)
    assert np.linalg.norm(whole - alone[0, plan.context:plan.context + audio.shape[1]]) < (
        0.05 * np.linalg.norm(whole))
    assert models.alignment(config) == 256


def test_input_staging_loudness_is_known_per_model():
  assert chain.input_lufs(_config()) == -20.0
  assert chain.input_lufs(_config("hybrid")) == -20.0
  assert chain.input_lufs(base.get_config("tiny").model) is None

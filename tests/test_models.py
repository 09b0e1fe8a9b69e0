"""Models: shapes, gradients, fitting a fixed EQ + gain, receptive field, chunking, registry."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.signal

from experiments import base
from mixnet import errors, losses, models
from mixnet.models import time_unet

SR = 44100
NAMES = ("time_unet", "spectral_unet")


def _model_config(name, preset="tiny", channels=1):
  config = base.get_config(preset).model
  config.name = name
  config.channels = channels
  return config


def _vocalish(length, channels=1, seed=0):
  """A gliding harmonic tone with a syllable envelope plus a noise floor: `[1, time, channels]`."""
  rng = np.random.default_rng(seed)
  t = np.arange(length) / SR
  phase = 2 * np.pi * np.cumsum(180.0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / SR
  tone = sum(np.sin(k * phase) / k for k in range(1, 8))
  x = 0.3 * tone * np.clip(np.sin(2 * np.pi * 4 * t + 0.5), 0, None)
  x = x[None, :, None] + 0.01 * rng.standard_normal((1, length, channels))
  return x.astype(np.float32)


_VARIABLES = {}  # config (as JSON) -> its initial variables


def _init(config, audio):
  """(model, params) for `config`, whose channel count `audio` has.

  Initial parameters depend on the config and the key, not on the audio's length, so each
  config is initialised once for the whole file, as one compiled program (an eager init
  compiles each of its ops, and a jitted one compiles anew for every input length), by
  `models.init_variables`. What these tests check (shapes, near-identity at init, fitting,
  context) holds for any draw.
  """
  model = models.build(config)
  key = config.to_json()
  if key not in _VARIABLES:
    dummy = jnp.zeros((1, models.alignment(config), audio.shape[-1]), jnp.float32)
    _VARIABLES[key] = models.init_variables(model, jax.random.PRNGKey(0), dummy)
  variables = _VARIABLES[key]
  assert list(variables) == ["params"], "models must hold parameters only"
  return model, variables["params"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 2])
def test_output_shape_equals_input_shape(name, channels):
  model, params = _init(_model_config(name, channels=channels), _vocalish(1000, channels))
  apply = jax.jit(lambda x: model.apply({"params": params}, x))
  shapes = [(2, 1), (1, 4097), (1, SR + 3)] if channels == 1 else [(2, 7)]
  for batch, length in shapes:
    audio = np.repeat(_vocalish(length, channels, seed=length), batch, axis=0)
    out = apply(audio)
    assert out.shape == audio.shape and out.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(out)))
  # The untrained model is close to the identity (training starts from "leave it dry").
  assert np.mean(np.abs(out - audio)) < 0.1 * np.mean(np.abs(audio))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_count_raises(name):
  model, params = _init(_model_config(name, channels=1), _vocalish(512))
  with pytest.raises(ValueError, match="built for 1 channels"):
    model.apply({"params": params}, _vocalish(512, channels=2))


def test_registry_errors_and_counts():
  config = _model_config("time_unet")
  config.name = "wavenet"
  with pytest.raises(errors.MixnetError, match="unknown model 'wavenet'; expected one of .*unet"):
    models.build(config)
  assert models.AudioUNet is time_unet.TimeUNet
  for name in NAMES:
    config = _model_config(name)
    _, params = _init(config, _vocalish(512))
    assert models.param_count(config) == sum(p.size for p in jax.tree.leaves(params))
    assert models.param_count(_model_config(name, "base")) > models.param_count(config)
    assert 0 < models.flops_per_second(config, SR) < models.flops_per_second(
        _model_config(name, "base"), SR)


def _fixed_eq_and_gain(audio):
  """The mapping to learn: +6 dB above 2 kHz, then -6 dB overall."""
  b, a = scipy.signal.butter(2, 2000.0, "highpass", fs=SR)
  high = scipy.signal.lfilter(b, a, audio, axis=1)
  return (0.5 * (audio + (10 ** (6 / 20) - 1) * high)).astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_fits_a_fixed_eq_and_gain(name):
  config = base.get_config("tiny")
  config.model.name = name
  audio = _vocalish(8192)
  target = _fixed_eq_and_gain(audio)
  model, params = _init(config.model, audio)
  optimizer = optax.adam(3e-3)

  def loss_fn(params):
    return losses.combined_loss(model.apply({"params": params}, audio), target, config.loss)[0]

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, grads

  opt_state = optimizer.init(params)
  params, opt_state, first_loss, grads = step(params, opt_state)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert float(optax.tree.norm(grads)) > 0
  for _ in range(300):
    params, opt_state, loss, _ = step(params, opt_state)
  assert float(loss) < float(first_loss) / 10, (float(first_loss), float(loss))


def _probe_context(model, params, length, positions):
  """(left, right) context measured by pushing unit impulses through the linearised model.

  Forward-mode derivatives are exact (no cancellation in `f(x + d) - f(x)`), so every output
  sample an input impulse can reach shows up as non-zero.
  """
  audio = jnp.asarray(np.random.default_rng(0).standard_normal((1, length, 1)) * 0.1,
                      jnp.float32)

  def extent(position):
    tangent = jnp.zeros_like(audio).at[0, position, 0].set(1.0)
    _, response = jax.jvp(lambda x: model.apply({"params": params}, x), (audio,), (tangent,))
    index = jnp.arange(length)
    reached = response[0, :, 0] != 0
    first = jnp.min(jnp.where(reached, index, length))
    last = jnp.max(jnp.where(reached, index, -1))
    return last - position, position - first

  lefts, rights = jax.jit(lambda p: jax.lax.map(extent, p, batch_size=8))(jnp.asarray(positions))
  return int(lefts.max()), int(rights.max())


def test_time_unet_context_matches_impulse_probe():
  config = _model_config("time_unet")
  left, right = models.context(config)
  grid = models.alignment(config)
  length = (left + right) // grid * grid + 4 * grid
  model, params = _init(config, _vocalish(grid))
  # Every phase of the stride grid: the maximum over phases is exactly the computed context.
  start = (left // grid + 1) * grid
  assert _probe_context(model, params, length, start + np.arange(grid)) == (left, right)


def test_base_time_unet_sees_half_a_second():
  config = _model_config("time_unet", "base")
  left, right = models.context(config)
  assert models.receptive_field(config) == left + 1 + right
  assert min(left, right) >= 0.5 * SR
  # Widths do not change which samples connect: probe the base layout with narrow layers.
  config.time_unet.base_width, config.time_unet.max_width = 4, 8
  grid = models.alignment(config)
  length = (left + right) // grid * grid + 4 * grid
  model, params = _init(config, _vocalish(grid))
  start = (left // grid + 1) * grid
  probe_left, probe_right = _probe_context(model, params, length, [start, start + grid - 1])
  assert left - grid < probe_left <= left and right - grid < probe_right <= right


def test_spectral_unet_context_matches_impulse_probe():
  config = _model_config("spectral_unet")
  left, right = models.context(config)
  hop = config.spectral_unet.hop_size
  grid = models.alignment(config)
  length = (left + right) // grid * grid + 4 * grid
  model, params = _init(config, _vocalish(grid))
  start = (left // grid + 1) * grid
  # The extremes come from the first / last non-zero sample of a frame's Hann window, at every
  # frame phase of the stride grid.
  positions = [start + frame * hop + offset for frame in range(grid // hop) for offset in (1, -1)]
  assert _probe_context(model, params, length, positions) == (left, right)


@pytest.mark.parametrize("name", NAMES)
def test_chunk_with_context_reproduces_whole_signal(name):
  config = _model_config(name)
  left, right = models.context(config)
  grid = models.alignment(config)
  audio = _vocalish(left + right + 6 * grid, seed=3)
  model, params = _init(config, audio[:, :grid])
  apply = jax.jit(lambda x: model.apply({"params": params}, x))
  whole = apply(audio)
  keep_start = -(-left // grid) * grid
  keep_stop = keep_start + 2 * grid
  chunk_start = keep_start - -(-left // grid) * grid
  chunk = audio[:, chunk_start:keep_stop + right]
  out = apply(chunk)
  np.testing.assert_allclose(out[:, keep_start - chunk_start:keep_stop - chunk_start],
                             whole[:, keep_start:keep_stop], atol=1e-5)

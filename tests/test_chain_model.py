"""`chain` and `hybrid` models: shapes, gradients of every parameter, chunked inference."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.signal

from experiments import base
from experiments import chain as chain_config
from experiments import hybrid as hybrid_config
from mixnet import chunking, dsp, engines, losses, models
from mixnet.data import synthetic
from mixnet.diffdsp import core, filters, gain
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
    # A two-level U-Net: what is tested is how the parts combine, and it compiles quickly.
    config.model.hybrid.time_unet.strides = (4, 4)
    config.model.hybrid.time_unet.bottleneck_dilations = (1,)
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
  # A few dozen settings, and the reverb's learned noise: one value per tap and channel.
  assert params[chain.NOISE_KEY].shape == (channels, int(0.3 * SR))
  assert 20 < models.param_count(config) - params[chain.NOISE_KEY].size < 300
  config.chain.learn_noise = False
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


def test_the_untrained_eq_passes_the_whole_band_and_its_lowpass_can_open():
  # Most mixes have no low-pass: the chain starts with its own open and may keep it so.
  model = models.build(_config())
  _, params = _init(_config(), _vocalish(0.05))
  eq = chain.physical(model, params)["eq"]
  freqs = np.array([1000.0, 0.4 * SR, 0.45 * SR, 0.48 * SR])
  response = np.abs(np.asarray(filters.eq_response(eq, SR, 1 << 14)))
  response_db = 20 * np.log10(np.interp(freqs, np.arange((1 << 14) // 2 + 1) * SR / (1 << 14),
                                        response))
  np.testing.assert_allclose(response_db, 0.0, atol=0.02)
  (lowpass,) = [p for p in chain.params_table(model) if p.name == "lowpass_hz"]
  assert lowpass.high == pytest.approx(chain.OPEN_LOWPASS * SR) and lowpass.high < SR / 2
  # The exported chain keeps such a low-pass, and the numpy chain runs it as the jnp one does.
  band = dsp.EqBand("lowpass", 0.47 * SR)
  assert [name for name, _ in dsp.chain.stages(dsp.Preset(name="lp", eq=(band,)), SR)][:2] == [
      "input_level", "eq"]


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
    assert np.all(np.isfinite(g)), key
    if key == chain.NOISE_KEY:  # every tap but the fade's last, which is multiplied by 0
      assert np.all(np.asarray(g)[:, :-1] != 0.0)
    else:
      assert np.all(np.asarray(g) != 0.0), key


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
  padded = np.pad(audio, ((0, 0), (plan.left, plan.right), (0, 0)))
  whole = np.asarray(apply(padded))[0, plan.left:plan.left + audio.shape[1]]
  np.testing.assert_allclose(chunked, whole, atol=1e-4)
  assert np.max(np.abs(whole)) > 0.05
  if name == "hybrid":
    # The U-Net residual starts near zero: the untrained hybrid is its chain.
    chain_config_small = _config()
    chain_config_small.chain.ir_seconds = 0.15
    chain_config_small.chain.max_release_ms = 30.0
    alone = jax.jit(models.build(chain_config_small).apply)({"params": params["chain"]}, padded)
    assert np.linalg.norm(whole - alone[0, plan.left:plan.left + audio.shape[1]]) < (
        0.05 * np.linalg.norm(whole))
    assert models.alignment(config) == 16  # lcm(control period 8, total stride 16)


@pytest.mark.parametrize("name", ["chain", "hybrid"])
def test_inference_fn_equals_apply(name, monkeypatch):
  """The chain's responses, computed once for fixed parameters, give `apply`'s output.

  The hybrid runs as inference runs it: its stages (chain, then U-Net) in series.
  """
  config = _config(name)
  # A short signal, with the partitioned convolution's threshold lowered so that it takes it.
  monkeypatch.setattr(core, "PARTITIONED_MIN", 2 * core.BLOCK)
  audio = _vocalish(3 * core.BLOCK / SR, seed=3)
  model, params = _init(config, audio[:, :512])
  want = np.asarray(jax.jit(lambda x: model.apply({"params": params}, x))(audio))
  got = audio
  for stage_config, stage_params in engines.model_stages(config, params):
    got = jax.jit(models.inference_fn(stage_config, stage_params))(got)
  got = np.asarray(got)
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert np.max(np.abs(want)) > 0.05


def test_input_staging_loudness_is_known_per_model():
  assert chain.input_lufs(_config()) == -20.0
  assert chain.input_lufs(_config("hybrid")) == -20.0
  assert chain.input_lufs(base.get_config("tiny").model) is None


def test_chain_recovers_a_known_preset():
  """Pairs mixed by a non-built-in numpy preset (EQ + 4:1 compressor + loudness + limiter).

  An EQ that is g dB louder overall with a threshold g dB higher and g dB less make-up gives the
  same output, so the pairs determine the EQ's shape (its curve with the mean offset removed)
  and the threshold relative to the EQ's level (the threshold less that offset), not where
  training lands along that direction.
  """
  style = dsp.Preset(name="test_style", output_lufs=-16.0,
                     eq=(dsp.EqBand("highpass", 150.0), dsp.EqBand("peaking", 1000.0, 6.0, 1.0),
                         dsp.EqBand("high_shelf", 4000.0, -4.0)),
                     compressor=dsp.CompressorParams(threshold_db=-26.0, ratio=4.0, knee_db=6.0,
                                                     attack_ms=5.0, release_ms=80.0))
  config = _config()
  config.chain.ir_seconds = 0.2
  model = models.build(config)
  raws, mixes = [], []
  for i in range(3):
    raw = synthetic.synth_vocal(2.0, SR, seed=(5, i))
    raws.append(raw * np.float32(10 ** (gain.staging_gain_db(raw, SR, -20.0) / 20)))
    mixes.append(dsp.process(raw, SR, style))
  x, y = jnp.asarray(np.stack(raws)), jnp.asarray(np.stack(mixes))
  params = jax.jit(model.init)(jax.random.key(0), x[:, :256])["params"]
  tx, loss_config = optax.adam(3e-2), base.get_config().loss

  def loss_fn(p):
    return losses.combined_loss(model.apply({"params": p}, x), y, loss_config)[0]

  @jax.jit
  def step(params, opt_state):
    updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  opt_state = tx.init(params)
  for _ in range(150):
    params, opt_state = step(params, opt_state)
  learned = jax.tree.map(np.asarray, chain.physical(model, params))
  freqs = np.geomspace(100, 6000, 100)
  sos = np.concatenate([dsp.filters.band_sos(SR, b) for b in style.eq])
  want_db = 20 * np.log10(np.abs(scipy.signal.sosfreqz(sos, freqs, fs=SR)[1]))
  size = 1 << 15
  response = np.abs(np.asarray(filters.eq_response(learned["eq"], SR, size)))
  error_db = 20 * np.log10(np.interp(freqs, np.arange(size // 2 + 1) * SR / size, response)) - (
      want_db)
  assert np.sqrt(np.mean((error_db - error_db.mean()) ** 2)) < 1.5
  assert abs(float(learned["compressor"]["threshold_db"]) - error_db.mean() + 26.0) < 3.0
  assert abs(float(learned["compressor"]["ratio"]) / 4.0 - 1.0) < 0.3
  out = np.asarray(jax.jit(model.apply)({"params": params}, x))
  level_lu = [dsp.integrated_loudness(o, SR) - dsp.integrated_loudness(m, SR)
              for o, m in zip(out, mixes, strict=True)]
  assert abs(np.mean(level_lu)) < 0.5

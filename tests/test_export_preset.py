"""Learned chain -> mixnet.dsp preset (JSON + impulse response) -> numpy chain, and the CLI."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import base
from experiments import chain as chain_config
from mixnet import audio, checkpoints, dsp, infer, metrics, models
from mixnet.data import synthetic
from mixnet.diffdsp import reverberation
from mixnet.models import chain

SR = 16000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config():
  config = chain_config.get_config("tiny")
  config.sample_rate = SR
  config.model.chain.ir_seconds = 0.8
  return config


@pytest.fixture(scope="module")
def learned():
  """(config, module, params): the chain at a random setting inside its ranges."""
  config = _config()
  model = models.build(config.model)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 256, 1)))["params"]
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda p: p + jnp.asarray(rng.normal(0, 0.7, p.shape), jnp.float32),
                        params)
  return config, model, params


def _write(module, params, folder, name="style", output_lufs=-16.0):
  preset, ir_tc = chain.to_preset(module, params, name, f"{name}_ir.wav", output_lufs)
  audio.save(os.path.join(folder, f"{name}_ir.wav"), ir_tc, SR, subtype="FLOAT")
  dsp.save_preset(preset, os.path.join(folder, f"{name}.json"))
  return os.path.join(folder, f"{name}.json")


def _jnp_chain(module, params, raw_tc, input_lufs):
  staged_tc = dsp.normalize_loudness(raw_tc, SR, input_lufs)
  return np.asarray(jax.jit(module.apply)({"params": params}, jnp.asarray(staged_tc[None])))[0]


def test_numpy_preset_matches_jnp_chain(learned, tmp_path):
  _, module, params = learned
  path = _write(module, params, str(tmp_path))
  raw_tc = synthetic.synth_vocal(3.0, SR, seed=5)
  want = _jnp_chain(module, params, raw_tc, module.input_lufs)
  by_dsp = dsp.process(raw_tc, SR, path)
  assert metrics.si_sdr(by_dsp, want) >= 30.0
  processor = infer.AudioProcessor(preset=path)
  assert processor.engine == "dsp"
  np.testing.assert_allclose(processor.process_vocal(raw_tc, sample_rate=SR), by_dsp, atol=1e-6)
  assert dsp.integrated_loudness(by_dsp, SR) == pytest.approx(-16.0, abs=0.5)


def test_a_learned_reverb_noise_exports_in_the_response(tmp_path):
  """`learn_noise`: the response built from the learned noise is what the preset plays."""
  config = _config()
  config.model.chain.learn_noise = True
  config.model.chain.ir_seconds = 0.4
  module = models.build(config.model)
  params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 256, 1)))["params"]
  assert params[chain.NOISE_KEY].shape == (1, int(0.4 * SR))
  rng = np.random.default_rng(4)
  # A reverb loud enough to hear, and a noise that is not the seed's.
  params = dict(params, reverb_send_db=jnp.float32(3.0), reverb_noise=jnp.asarray(
      rng.standard_normal(params[chain.NOISE_KEY].shape), jnp.float32))
  path = _write(module, params, str(tmp_path))
  raw_tc = synthetic.synth_vocal(2.0, SR, seed=6)
  want = _jnp_chain(module, params, raw_tc, module.input_lufs)
  assert metrics.si_sdr(dsp.process(raw_tc, SR, path), want) >= 30.0
  # The learned noise, not the seed's, is in the exported sound.
  seed_noise = dict(params, reverb_noise=jnp.asarray(reverberation.white_noise(
      int(0.4 * SR), 1, config.model.chain.noise_seed)))
  assert metrics.si_sdr(_jnp_chain(module, seed_noise, raw_tc, module.input_lufs), want) < 20.0
  with open(path) as f:
    assert "noise" not in f.read()


def test_edited_json_changes_the_sound(learned, tmp_path):
  _, module, params = learned
  path = _write(module, params, str(tmp_path))
  raw_tc = synthetic.synth_vocal(2.0, SR, seed=6)
  before = dsp.process(raw_tc, SR, path)
  with open(path) as f:
    data = json.load(f)
  data["eq"][2]["gain_db"] = 12.0
  data["convolution_reverb"]["send_db"] = 0.0
  with open(path, "w") as f:
    json.dump(data, f)
  after = dsp.process(raw_tc, SR, path)
  assert metrics.si_sdr(after, before) < 20.0
  data["convolution_reverb"] = None
  with open(path, "w") as f:
    json.dump(data, f)
  assert dsp.load_preset(path).convolution_reverb is None


def test_preset_file_errors_name_the_file_and_problem(learned, tmp_path):
  _, module, params = learned
  path = _write(module, params, str(tmp_path))
  with open(path) as f:
    data = json.load(f)
  cases = {
      "unknown fields \\['treshold_db'\\]": lambda d: d["compressor"].update(treshold_db=-20),
      "compressor.ratio must be a number": lambda d: d["compressor"].update(ratio="4"),
      "eq must be a list": lambda d: d.update(eq={}),
  }
  for message, edit in cases.items():
    broken = json.loads(json.dumps(data))
    edit(broken)
    with open(path, "w") as f:
      json.dump(broken, f)
    with pytest.raises(dsp.PresetError, match=f"{path}: .*{message}"):
      dsp.get_preset(path)
  with open(path, "w") as f:
    json.dump(data, f)
  os.remove(os.path.join(str(tmp_path), "style_ir.wav"))
  with pytest.raises(dsp.PresetError, match="style_ir.wav does not exist"):
    dsp.load_preset(path)
  with open(path, "w") as f:
    f.write("{not json")
  with pytest.raises(dsp.PresetError, match="not valid JSON"):
    dsp.load_preset(path)
  with pytest.raises(dsp.PresetError, match="cannot read preset file"):
    dsp.load_preset(str(tmp_path / "missing.json"))


def test_builtin_presets_survive_a_json_round_trip(tmp_path):
  for preset in dsp.PRESETS.values():
    path = str(tmp_path / f"{preset.name}.json")
    dsp.save_preset(preset, path)
    assert dsp.load_preset(path) == preset


def _save_checkpoint(workdir, config, params):
  run = checkpoints.RunCheckpoints(str(workdir))
  run.save_best(1, params, checkpoints.make_meta(
      config, 1, 0.5, data={"train_mixed_lufs_median": -18.0}), 0.5)
  run.wait()
  run.close()


def _export(*args):
  return subprocess.run([sys.executable, "-m", "mixnet.export_preset", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_cli_exports_a_checkpoint_and_refuses_a_model_without_chain(learned, tmp_path):
  config, module, params = learned
  _save_checkpoint(tmp_path / "run", config, params)
  out = str(tmp_path / "my_style.json")
  result = _export(f"--checkpoint={tmp_path / 'run'}", f"--out={out}")
  assert result.returncode == 0, result.stderr
  assert "threshold_db" in result.stdout and os.path.exists(tmp_path / "my_style_ir.wav")
  preset = dsp.load_preset(out)
  assert preset.output_lufs == -18.0 and preset.input_lufs == module.input_lufs
  expected, _ = chain.to_preset(module, params, "my_style", preset.convolution_reverb.ir_file,
                                -18.0)
  assert dataclasses.replace(preset, convolution_reverb=None) == dataclasses.replace(
      expected, convolution_reverb=None)

  unet_config = base.get_config("tiny")
  unet_config.sample_rate = SR
  unet = models.build(unet_config.model)
  unet_params = models.init_variables(unet, jax.random.key(0), jnp.zeros((1, 256, 1)))["params"]
  _save_checkpoint(tmp_path / "unet", unet_config, unet_params)
  result = _export(f"--checkpoint={tmp_path / 'unet'}", f"--out={tmp_path / 'x.json'}")
  assert result.returncode == 2
  assert "error:" in result.stderr and "has no learned chain" in result.stderr
  assert not os.path.exists(tmp_path / "x.json")


def test_style_card_of_a_learned_chain(learned, tmp_path):
  """A chain model (here from its model file) shows its settings with units; others have none."""
  config, module, params = learned
  _save_checkpoint(tmp_path / "run", config, params)
  processor = infer.AudioProcessor(
      use_ml_model=True, model_path=str(tmp_path / "run" / "best_model.mixnet"), strict=True)
  card = {(row["stage"], row["name"]): row for row in processor.style}
  learned_settings = chain.physical(module, params)
  assert len(card) == len(chain.params_table(module))
  threshold = card[("compressor", "threshold_db")]
  assert threshold["unit"] == "dBFS"
  np.testing.assert_allclose(threshold["value"],
                             float(learned_settings["compressor"]["threshold_db"]), rtol=1e-6)
  assert isinstance(card[("reverb", "rt60_s")]["value"], list)
  assert infer.AudioProcessor().style is None


def test_the_model_stages_each_take_like_its_exported_preset(learned, tmp_path):
  """A take recorded 20 dB quieter gets the same mix: the chain sees the take at `input_lufs`."""
  config, module, params = learned
  _save_checkpoint(tmp_path / "run", config, params)
  processor = infer.AudioProcessor(
      use_ml_model=True, model_path=str(tmp_path / "run" / "best_model.mixnet"), strict=True)
  raw_t = synthetic.synth_vocal(3.0, SR, seed=6)[:, 0]
  mixed_t = processor.process_vocal(raw_t, sample_rate=SR)
  np.testing.assert_allclose(processor.process_vocal(0.1 * raw_t, sample_rate=SR), mixed_t,
                             atol=1e-4)
  by_preset_tc = dsp.process(raw_t[:, None], SR, _write(module, params, str(tmp_path), "take",
                                                        output_lufs=-18.0))
  assert metrics.si_sdr(mixed_t[:, None], by_preset_tc) >= 30.0

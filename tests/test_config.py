"""experiments/: presets load, overrides work, the sample rate is shared, variants import base."""

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from experiments import base, chain, hybrid, spectral
from mixnet import errors, train_config

_GROUPS = ("data", "model", "loss", "opt", "train", "infer")


def _structure(config):
  """Nested key structure (not values) of a ConfigDict."""
  return {k: _structure(v) if isinstance(v, ml_collections.ConfigDict) else type(v).__name__
          for k, v in config.items()}


@pytest.mark.parametrize("preset", ["base", "tiny"])
def test_presets_have_all_groups_and_same_structure(preset):
  config = base.get_config(preset)
  for group in _GROUPS:
    assert isinstance(config[group], ml_collections.ConfigDict), group
  assert _structure(config) == _structure(base.get_config())


def test_tiny_is_smaller_than_base():
  tiny, full = base.get_config("tiny"), base.get_config()
  assert tiny.model.time_unet.base_width < full.model.time_unet.base_width
  assert tiny.train.num_steps < full.train.num_steps


def test_unknown_preset():
  with pytest.raises(ValueError, match="unknown preset 'huge'"):
    base.get_config("huge")


def test_sample_rate_is_one_field_reference():
  config = base.get_config()
  assert config.data.sample_rate == 44100
  config.sample_rate = 48000
  assert config.data.sample_rate == 48000


def test_spectral_variant():
  assert spectral.get_config().model.name == "spectral_unet"
  assert spectral.get_config("tiny").model.time_unet == base.get_config("tiny").model.time_unet


def _parse(argv):
  """Parses argv as `python -m mixnet.train` does (override flags are found from argv)."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=True,
                                  sys_argv=argv)
  flag_values(argv)
  return flag_values


def test_config_file_flag_with_preset_and_overrides():
  flag_values = _parse([
      "prog", "--config=experiments/base.py:tiny", "--config.train.num_steps=7",
      "--config.model.name=spectral_unet", "--config.sample_rate=22050",
  ])
  config = flag_values.config
  assert config.train.num_steps == 7
  assert config.model.name == "spectral_unet"
  assert config.data.sample_rate == 22050
  assert config.train.per_device_batch == base.get_config("tiny").train.per_device_batch


def test_locked_config_rejects_unknown_field():
  with pytest.raises(Exception, match="no_such_field"):
    _parse(["prog", "--config=experiments/base.py", "--config.train.no_such_field=1"])


@pytest.mark.parametrize("module,preset", [(base, "base"), (base, "tiny"), (spectral, "base"),
                                           (spectral, "tiny")])
def test_shipped_configs_pass_the_training_checks(module, preset):
  assert train_config.problems(module.get_config(preset)) == []


def test_training_config_problems_are_one_line_each():
  config = base.get_config("tiny")
  config.train.num_steps = -1
  config.train.checkpoint_every = 0
  config.train.eval_every = 0
  config.train.per_device_batch = 0
  config.opt.learning_rate = -1e-3
  config.opt.schedule = "linear"
  config.data.segment_seconds = 0.0
  config.model.channels = 2
  found = train_config.problems(config)
  assert found == [
      "config.train.num_steps=-1: must be a whole number >= 1",
      "config.train.per_device_batch=0: must be a whole number >= 1",
      "config.train.eval_every=0: must be a whole number >= 1",
      "config.train.checkpoint_every=0: must be a whole number >= 1",
      "config.opt.learning_rate=-0.001: must be a number > 0",
      "config.opt.schedule='linear': must be one of cosine, plateau",
      "config.data.segment_seconds=0.0: must be a number > 0",
      "config.model.channels=2: must equal config.data.channels=1",
  ]
  with pytest.raises(train_config.ConfigError, match="8 problem") as raised:
    train_config.check(config)
  assert isinstance(raised.value, errors.MixnetError)
  assert str(raised.value).count("\n") == 8


def test_chain_configs_pass_the_checks_and_their_own_rules_are_checked():
  for module in (chain, hybrid):
    assert train_config.problems(module.get_config("tiny")) == []
  config = hybrid.get_config("tiny")
  config.data.gain_db = 3.0
  config.opt.hold = ml_collections.ConfigDict({"residual": 1.0, "unet": 0.2})
  config.opt.group_learning_rate = ml_collections.ConfigDict({"residual": 0.0, "reverb": 1e-3})
  assert train_config.problems(config) == [
      "config.data.gain_db=3.0: must be 0 for a hybrid model, whose input is staged to a fixed "
      "loudness per take (a random gain would undo it)",
      "config.opt.hold.residual=1.0: must be in [0, 1)",
      "config.opt.group_learning_rate.residual=0.0: must be a number > 0",
      "config.opt.hold.unet: not a parameter group of hybrid (its groups: chain, residual)",
      "config.opt.group_learning_rate.reverb: not a parameter group of hybrid (its groups: "
      "chain, residual)",
  ]


def test_unknown_model_name_is_a_config_problem():
  config = base.get_config("tiny")
  config.model.name = "wavenet"
  (problem,) = train_config.problems(config)
  assert problem.startswith("config.model.name: unknown model 'wavenet'")
  assert "time_unet" in problem

"""Checks a training config before any data work, so a bad value costs a second, not a run.

`check(config)` collects every problem (one line each, naming the field and its value) and
raises one `ConfigError` with all of them. The checks cover what the training loop, the
optimizer, the input pipeline and the model registry need of `experiments/base.py`'s groups.
"""

import math

from mixnet import errors, input_pipeline, models, optimizer


class ConfigError(errors.MixnetError):
  """The training config has values training cannot run with; one line per problem."""


def _number(v):
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(low):
  return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,
          f"must be a whole number >= {low}")


def _between(low, high, high_open=True, low_open=False):
  def ok(v):
    return (_number(v) and (v > low if low_open else v >= low)
            and (v < high if high_open else v <= high))
  return ok, (f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


def _one_of(options):
  return (lambda v: v in options), f"must be one of {', '.join(map(str, options))}"


_POSITIVE = ((lambda v: _number(v) and v > 0), "must be a number > 0")
_NON_NEGATIVE = ((lambda v: _number(v) and v >= 0), "must be a number >= 0")

_FIELDS = {
    "train.num_steps": _whole(1), "train.per_device_batch": _whole(1),
    "train.eval_every": _whole(1), "train.checkpoint_every": _whole(1),
    "train.log_every": _whole(1), "train.eval_batches": _whole(1),
    "train.keep_checkpoints": _whole(1), "train.num_audio_summaries": _whole(0),
    "train.seed": _whole(0),
    "opt.learning_rate": _POSITIVE, "opt.warmup_steps": _whole(0),
    "opt.schedule": _one_of(optimizer.SCHEDULES), "opt.end_lr_factor": _between(0, 1, False),
    "opt.b1": _between(0, 1), "opt.b2": _between(0, 1), "opt.weight_decay": _NON_NEGATIVE,
    "opt.grad_clip_norm": _POSITIVE, "opt.ema_decay": _between(0, 1),
    "opt.plateau_patience": _whole(1), "opt.plateau_factor": _between(0, 1, low_open=True),
    "data.sample_rate": _whole(1), "data.channels": _one_of((1, 2)),
    "data.segment_seconds": _POSITIVE, "data.context_seconds": _NON_NEGATIVE,
    "data.val_fraction": _between(0, 1),
    "data.gain_db": _NON_NEGATIVE, "data.gain_mode": _one_of(input_pipeline.GAIN_MODES),
    "data.shift_ms": _NON_NEGATIVE, "data.max_shift_ms": _POSITIVE,
    "loss.l1_weight": _NON_NEGATIVE, "loss.stft_weight": _NON_NEGATIVE,
    "loss.envelope_weight": _NON_NEGATIVE,
}


def _get(config, dotted):
  for key in dotted.split("."):
    config = config[key]
  return config


def problems(config):
  """Every problem with `config`, one line each (empty when training can run with it)."""
  found = []
  for field, (ok, rule) in _FIELDS.items():
    value = _get(config, field)
    if not ok(value):
      found.append(f"config.{field}={value!r}: {rule}")
  if config.model.channels != config.data.channels:
    found.append(f"config.model.channels={config.model.channels!r}: must equal "
                 f"config.data.channels={config.data.channels!r}")
  weights = [config.loss[k] for k in ("l1_weight", "stft_weight", "envelope_weight")]
  if all(_number(w) for w in weights) and not any(w > 0 for w in weights):
    found.append("config.loss: l1_weight, stft_weight and envelope_weight are all 0; nothing "
                 "would be learned")
  lengths = {k: len(config.loss[k]) for k in ("fft_sizes", "hop_sizes", "win_lengths")}
  if len(set(lengths.values())) != 1:
    found.append(f"config.loss: fft_sizes, hop_sizes and win_lengths must have equal lengths "
                 f"(got {lengths})")
  if (models.chain.input_lufs(config.model) is not None and _number(config.data.gain_db)
      and config.data.gain_db > 0):
    found.append(f"config.data.gain_db={config.data.gain_db!r}: must be 0 for a "
                 f"{config.model.name} model, whose input is staged to a fixed loudness per "
                 "take (a random gain would undo it)")
  try:
    models.build(config.model)
  except errors.MixnetError as e:  # The registry's message names the field.
    found.append(str(e))
  except (ValueError, TypeError) as e:
    found.append(f"config.model.{config.model.name}: {e}")
  else:
    found += _hold_problems(config)
  return found


def _hold_problems(config):
  hold = dict(config.opt.get("hold", {}))
  rates = dict(config.opt.get("group_learning_rate", {}))
  found = [f"config.opt.hold.{k}={v!r}: must be in [0, 1)" for k, v in hold.items()
           if not (_number(v) and 0 <= v < 1)]
  found += [f"config.opt.group_learning_rate.{k}={v!r}: must be a number > 0"
            for k, v in rates.items() if not (_number(v) and v > 0)]
  groups = models.param_groups(config.model) if hold or rates else []
  for field, named in (("hold", hold), ("group_learning_rate", rates)):
    found += [f"config.opt.{field}.{k}: not a parameter group of {config.model.name} (its "
              f"groups: {', '.join(groups)})" for k in named if k not in groups]
  return found


def check(config):
  """Raises ConfigError listing every problem of `config` (see `problems`)."""
  found = problems(config)
  if found:
    raise ConfigError(f"the training config has {len(found)} problem(s):\n  "
                      + "\n  ".join(found))

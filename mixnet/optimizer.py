"""The optimizer and its learning-rate schedules (optax).

AdamW with global-norm gradient clipping. The learning rate warms up linearly from 0 over
`config.opt.warmup_steps`, then follows `config.opt.schedule`:
  cosine   cosine decay to `end_lr_factor * learning_rate` at `num_steps`;
  plateau  constant, scaled down by `optax.contrib.reduce_on_plateau` whenever the training loss
           (passed to `tx.update` as `value`) stops improving for `plateau_patience` updates of
           `accumulation_size` steps each.

`config.opt.hold` ({parameter group: fraction}) keeps top-level parameter groups at their
initial values for the first `fraction * num_steps` steps, then trains them with an optimizer of
their own that starts there (fresh Adam moments; warm-up and cosine over the remaining steps).
`hybrid` uses it to train its chain first and its residual U-Net after (`experiments/hybrid.py`).
`config.opt.group_learning_rate` ({parameter group: peak learning rate}) gives a group its own
peak rate (same warm-up and schedule shape); `hybrid` trains its residual U-Net at the U-Net's
own rate beside the chain's larger one. A group that is held or has its own rate clips its own
gradient norm; without either the clipping is global.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mixnet import errors

SCHEDULES = ("cosine", "plateau")


def create_learning_rate_fn(opt_config, num_steps):
  """Returns step -> learning rate: linear warmup, then the configured schedule."""
  warmup = optax.linear_schedule(0.0, opt_config.learning_rate, max(1, opt_config.warmup_steps))
  if opt_config.schedule == "cosine":
    after = optax.cosine_decay_schedule(
        opt_config.learning_rate, max(1, num_steps - opt_config.warmup_steps),
        alpha=opt_config.end_lr_factor)
  elif opt_config.schedule == "plateau":
    after = optax.constant_schedule(opt_config.learning_rate)
  else:
    raise ValueError(f"config.opt.schedule={opt_config.schedule!r}; expected one of {SCHEDULES}")
  return optax.join_schedules([warmup, after], [opt_config.warmup_steps])


class HoldState(NamedTuple):
  count: jax.Array
  inner: optax.OptState


def hold_then(inner, hold_steps):
  """`inner`, except that for its first `hold_steps` updates it returns zeros and keeps its state.

  After those, `inner` runs as if its first update were the current one.
  """
  def init(params):
    return HoldState(count=jnp.zeros([], jnp.int32), inner=inner.init(params))

  def update(updates, state, params=None):
    new_updates, new_inner = inner.update(updates, state.inner, params)
    active = state.count >= hold_steps
    return (jax.tree.map(lambda u: jnp.where(active, u, jnp.zeros_like(u)), new_updates),
            HoldState(count=state.count + 1,
                      inner=jax.tree.map(lambda n, o: jnp.where(active, n, o), new_inner,
                                         state.inner)))

  return optax.GradientTransformation(init, update)


def hold_steps(opt_config, num_steps):
  """{parameter group: steps it is held} from `opt_config.hold` (fractions of `num_steps`)."""
  return {k: int(round(float(v) * num_steps))
          for k, v in dict(opt_config.get("hold", {})).items() if float(v) > 0}


def _adamw(opt_config, lr_fn):
  return [optax.clip_by_global_norm(opt_config.grad_clip_norm),
          optax.adamw(lr_fn, b1=opt_config.b1, b2=opt_config.b2,
                      weight_decay=opt_config.weight_decay)]


def _label(group, held):
  return f"hold:{group}" if group in held else f"rate:{group}"


def _group_labels(own, held):
  """params -> the same tree of labels: `_label` for groups in `own`, "train" for the rest."""
  def labels(params):
    missing = sorted(set(own) - set(params))
    if missing:
      raise errors.MixnetError(
          f"config.opt: {', '.join(missing)} is not a parameter group of the model "
          f"(its groups: {', '.join(sorted(params))})")
    return {k: jax.tree.map(lambda _, k=k: _label(k, held) if k in own else "train", v)
            for k, v in params.items()}
  return labels


def group_learning_rates(opt_config):
  """{parameter group: its own peak learning rate} from `opt_config.group_learning_rate`."""
  return {k: float(v) for k, v in dict(opt_config.get("group_learning_rate", {})).items()}


def create_optimizer(opt_config, num_steps, plateau_accumulation=1):
  """AdamW with gradient-norm clipping, the configured schedule, held groups and group rates.

  Args:
    opt_config: `config.opt`.
    num_steps: length of the run (the cosine schedule ends there).
    plateau_accumulation: training steps whose losses reduce-on-plateau averages into one
      observation (the training loop passes its logging interval).

  Returns:
    (tx, lr_fn): the optax transformation and the schedule (of the groups that are neither held
    nor have their own rate) before any plateau scaling.
  """
  lr_fn = create_learning_rate_fn(opt_config, num_steps)
  held = hold_steps(opt_config, num_steps)
  rates = group_learning_rates(opt_config)
  own = sorted(set(held) | set(rates))
  if not own:
    parts = _adamw(opt_config, lr_fn)
  else:
    transforms = {"train": optax.chain(*_adamw(opt_config, lr_fn))}
    for group in own:
      group_config = opt_config.copy_and_resolve_references()
      group_config.learning_rate = rates.get(group, opt_config.learning_rate)
      steps = held.get(group, 0)
      inner = optax.chain(*_adamw(group_config, create_learning_rate_fn(
          group_config, max(1, num_steps - steps))))
      transforms[_label(group, held)] = hold_then(inner, steps) if steps else inner
    parts = [optax.multi_transform(transforms, _group_labels(own, held))]
  if opt_config.schedule == "plateau":
    parts.append(optax.contrib.reduce_on_plateau(
        factor=opt_config.plateau_factor, patience=opt_config.plateau_patience,
        accumulation_size=plateau_accumulation))
  return optax.chain(*parts), lr_fn


def plateau_scale(opt_state):
  """The reduce-on-plateau multiplier in `opt_state` (1.0 without that schedule)."""
  scale = optax.tree_utils.tree_get(opt_state, "scale", default=None)
  return 1.0 if scale is None else float(jax.device_get(scale))

"""The optimizer and its learning-rate schedules (optax).

AdamW with global-norm gradient clipping. The learning rate warms up linearly from 0 over
`config.opt.warmup_steps`, then follows `config.opt.schedule`:
  cosine   cosine decay to `end_lr_factor * learning_rate` at `num_steps`;
  plateau  constant, scaled down by `optax.contrib.reduce_on_plateau` whenever the training loss
           (passed to `tx.update` as `value`) stops improving for `plateau_patience` updates of
           `accumulation_size` steps each.
"""

import jax
import optax

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


def create_optimizer(opt_config, num_steps, plateau_accumulation=1):
  """AdamW with global-norm clipping and the configured schedule.

  Args:
    opt_config: `config.opt`.
    num_steps: length of the run (the cosine schedule ends there).
    plateau_accumulation: training steps whose losses reduce-on-plateau averages into one
      observation (the training loop passes its logging interval).

  Returns:
    (tx, lr_fn): the optax transformation and the schedule before any plateau scaling.
  """
  lr_fn = create_learning_rate_fn(opt_config, num_steps)
  parts = [
      optax.clip_by_global_norm(opt_config.grad_clip_norm),
      optax.adamw(lr_fn, b1=opt_config.b1, b2=opt_config.b2,
                  weight_decay=opt_config.weight_decay),
  ]
  if opt_config.schedule == "plateau":
    parts.append(optax.contrib.reduce_on_plateau(
        factor=opt_config.plateau_factor, patience=opt_config.plateau_patience,
        accumulation_size=plateau_accumulation))
  return optax.chain(*parts), lr_fn


def plateau_scale(opt_state):
  """The reduce-on-plateau multiplier in `opt_state` (1.0 without that schedule)."""
  scale = optax.tree_utils.tree_get(opt_state, "scale", default=None)
  return 1.0 if scale is None else float(jax.device_get(scale))

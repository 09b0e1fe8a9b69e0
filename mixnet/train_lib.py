"""Training: the train state, the pure train and eval steps, and the loop.

Data parallelism (`mixnet.parallel`): each device runs `train_step` on its slice of the global
batch, gradients are averaged with `lax.pmean` over the data axis, and every device applies the
same update to its replica of the state. The global batch is `per_device_batch *
jax.device_count()`; each process feeds `per_device_batch * jax.local_device_count()` examples.

Audio batches are dicts {"raw": [batch, time, channels], "mixed": same}, float32 at
`config.data.sample_rate` Hz.

`train_step` and `eval_step` are pure module-level functions so tests call them directly. The
models are deterministic (no dropout), so the step takes no random key; the run's randomness is
the parameter init (from `config.train.seed`) and the input pipeline's augmentation (a function
of the same seed and the step), so the same seed gives the same run, resumed or not.
"""

import functools
import os
import time
import types

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
import tensorflow_datasets as tfds
from absl import logging
from clu import metric_writers
from jax.sharding import PartitionSpec as P

from mixnet import (
  checkpoints,
  fileio,
  input_pipeline,
  losses,
  models,
  monitor,
  optimizer,
  parallel,
  train_config,
  validation,
)
from mixnet.data.prepare import training as prepare_training


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training; a plain pytree so Orbax saves it as is."""
  step: jax.Array
  params: flax.core.FrozenDict
  opt_state: optax.OptState
  # Exponential moving average of params (None when config.opt.ema_decay == 0).
  ema_params: flax.core.FrozenDict | None

  def export_params(self):
    """The parameters used for evaluation and inference: the EMA if kept, else the raw ones."""
    return self.params if self.ema_params is None else self.ema_params


def create_train_state(config, model, tx, rng):
  """Initialises params (from `rng`), optimizer state and EMA for `config`'s input shape."""
  dummy = jnp.zeros((1, input_pipeline.segment_length(config.data), config.model.channels),
                    jnp.float32)
  params = models.init_variables(model, rng, dummy)["params"]
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=tx.init(params),
      # A copy: the step donates the state's buffers, and one buffer cannot be donated twice.
      ema_params=jax.tree.map(jnp.copy, params) if config.opt.ema_decay > 0 else None)


def train_step(state, batch, *, model, tx, loss_config, ema_decay, context=0):
  """One optimisation step on this device's slice of the batch; call inside `shard_map`.

  The model runs on the whole crop; the loss scores its samples from `context` on (the first
  `context` samples only warm the model up: `data.context_seconds`).

  Gradients and metrics are averaged over the data axis, so every device applies the same
  update. A non-finite loss or gradient leaves the state untouched (nothing trains on NaN) and
  is reported as `metrics["finite"] == 0` for the loop to stop on.

  Returns:
    (new_state, metrics): metrics are scalars averaged over all devices.
  """
  def loss_fn(params):
    pred = model.apply({"params": params}, batch["raw"])
    return losses.combined_loss(pred[:, context:], batch["mixed"][:, context:], loss_config)

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, parallel.DATA_AXIS)
  loss, terms = jax.lax.pmean((loss, terms), parallel.DATA_AXIS)
  grad_norm = optax.tree.norm(grads)
  updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
  params = optax.apply_updates(state.params, updates)
  ema = state.ema_params
  if ema is not None:
    # Warm the EMA up so early evaluations do not average in the random init.
    decay = jnp.minimum(ema_decay, (1.0 + state.step) / (10.0 + state.step))
    ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            ema_params=ema)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  new_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_state, state)
  out = {"loss": loss, "grad_norm": grad_norm, "finite": finite.astype(jnp.float32), **terms}
  return new_state, out


def eval_step(params, raw_btc, *, model):
  """The model's prediction for this device's slice of a batch: `[batch, time, channels]`."""
  return model.apply({"params": params}, raw_btc)


def make_parallel_steps(mesh, model, tx, config):
  """Jit-compiled, shard_mapped `train_step` (state donated) and `eval_step` for `mesh`."""
  step = functools.partial(train_step, model=model, tx=tx, loss_config=config.loss,
                           ema_decay=config.opt.ema_decay,
                           context=input_pipeline.context_length(config.data))
  p_train = parallel.data_parallel(step, mesh, out_specs=(P(), P()), donate_state=True)
  p_eval = parallel.data_parallel(functools.partial(eval_step, model=model), mesh,
                                  out_specs=P(parallel.DATA_AXIS))
  return p_train, p_eval


def train_iterator(data_config, data_dir, batch_size, seed, start_step=0, shard_index=0,
                   num_shards=1, input_lufs=None):
  """Host-local numpy training batches, starting with the batch of step `start_step + 1`.

  A step's batch is a function of (seed, host, step) (see `mixnet.input_pipeline`), so a
  resumed run starts at once and sees exactly the batches an uninterrupted run would.
  """
  ds = input_pipeline.create_train_dataset(data_config, data_dir, batch_size, seed,
                                           shard_index=shard_index, num_shards=num_shards,
                                           start_step=start_step, input_lufs=input_lufs)
  return iter(tfds.as_numpy(ds))


def _restore_or_init(config, model, tx, mesh, ckpts, console, workdir):
  """The latest checkpoint's train state, else a fresh one; replicated over `mesh`."""
  rng = jax.random.key(config.train.seed)
  abstract = jax.eval_shape(functools.partial(create_train_state, config, model, tx), rng)
  if ckpts.latest_step() is None:
    return parallel.replicate(mesh, create_train_state(config, model, tx, rng))
  state = ckpts.restore_state(parallel.replicated_abstract(mesh, abstract))
  console.say(f"Resumed from step {int(state.step)} of {workdir}")
  return state


def _warn_if_no_validation(config, data_dir, facts):
  """Says once, loudly, when 'best' will be chosen on training data; records it in `facts`."""
  builder = input_pipeline.open_dataset(config.data, data_dir)
  facts["best_chosen_on"] = "validation" if input_pipeline.has_validation(builder) else "train"
  if facts["best_chosen_on"] == "train" and parallel.is_primary():
    logging.warning(
        "%s has no validation pairs: the 'best' checkpoint is chosen on TRAINING data, which "
        "says little about new takes. Add pairs or raise config.data.val_fraction (now %s).",
        data_dir, config.data.val_fraction)


def _log_window(run, step, state, window):
  scalars = window.summary(run.audio_seconds_per_step)
  scalars["train/learning_rate"] = (float(run.lr_fn(step))
                                    * optimizer.plateau_scale(state.opt_state))
  run.writer.write_scalars(step, scalars)
  terms = ", ".join(f"{name} {scalars['train/' + name]:.4f}"
                    for name in ("l1", "mr_stft", "envelope") if "train/" + name in scalars)
  logging.info(
      "step %d/%d  loss %.4f (%s)  lr %.2e  %.2f steps/s  %.1f s audio/s  input wait %.0f%%",
      step, run.num_steps, scalars["train/loss"], terms, scalars["train/learning_rate"],
      scalars["perf/steps_per_sec"], scalars["perf/audio_seconds_per_sec"],
      100 * scalars["perf/input_wait_fraction"])
  return scalars["train/loss"]


def _validate(run, step, state):
  """Validation metrics and summaries at `step`; offers the step as the best checkpoint."""
  averages, clips = validation.run_validation(
      run.p_eval, state.export_params(), run.eval_ds_fn(), run.mesh, run.config,
      run.local_batch)
  if not averages:
    return
  run.writer.write_scalars(step, {f"eval/{k}": v for k, v in averages.items()})
  if parallel.is_primary():
    validation.write_summaries(run.writer, step, clips, run.config.data.sample_rate)
  run.console.say(
      f"eval at step {step}: val_loss {averages['val_loss']:.4f} (mr_stft "
      f"{averages['mr_stft']:.4f}, l1 {averages['l1']:.4f}, si_sdr {averages['si_sdr']:.1f} dB, "
      f"loudness error {averages['loudness_error_lu']:.2f} LU)")
  run.ckpts.save_best(step, state.export_params(), run.make_meta(step, averages["val_loss"]),
                      averages["val_loss"])


def _set_up(config, workdir, show_progress):
  """Checks the config, prepares the data and builds everything the loop needs."""
  train_config.check(config)
  os.makedirs(workdir, exist_ok=True)
  data_dir, facts = prepare_training.prepare_data(config, workdir)
  _warn_if_no_validation(config, data_dir, facts)
  # The pieces the loop's helpers share.
  run = types.SimpleNamespace(config=config, workdir=workdir, data_dir=data_dir,
                              num_steps=config.train.num_steps, mesh=parallel.make_mesh())
  run.local_batch = config.train.per_device_batch * jax.local_device_count()
  run.audio_seconds_per_step = (config.train.per_device_batch * jax.device_count()
                                * config.data.segment_seconds)
  run.make_meta = functools.partial(checkpoints.make_meta, config, data=facts)
  model = models.build(config.model)
  tx, run.lr_fn = optimizer.create_optimizer(config.opt, run.num_steps,
                                             plateau_accumulation=config.train.log_every)
  run.ckpts = checkpoints.RunCheckpoints(workdir, keep=config.train.keep_checkpoints)
  start = run.ckpts.latest_step() or 0
  run.console = monitor.Console(show_progress, run.num_steps, start)
  run.state = _restore_or_init(config, model, tx, run.mesh, run.ckpts, run.console, workdir)
  run.writer = metric_writers.create_default_writer(workdir,
                                                    just_logging=not parallel.is_primary())
  if int(run.state.step) == 0:
    run.writer.write_hparams(validation.flat_hparams(config))
  if parallel.is_primary():
    fileio.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  run.p_train, run.p_eval = make_parallel_steps(run.mesh, model, tx, config)
  run.eval_ds_fn = functools.partial(
      input_pipeline.create_eval_dataset, config.data, data_dir, run.local_batch,
      shard_index=jax.process_index(), num_shards=jax.process_count(),
      input_lufs=models.chain.input_lufs(config.model))
  return run


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, show_progress=False):
  """Trains `config` in `workdir`, resuming from its latest checkpoint if there is one.

  Args:
    config: an experiments/ config (checked first: `train_config.ConfigError` lists problems).
    workdir: checkpoints, TensorBoard events and `config.json` go here.
    show_progress: show a progress bar and the eval results on the terminal (the CLI does).

  Returns:
    The final TrainState (replicated over the mesh).
  """
  run = _set_up(config, workdir, show_progress)
  state, train = run.state, config.train
  start_step = int(state.step)
  batches = train_iterator(config.data, run.data_dir, run.local_batch, seed=train.seed,
                           start_step=start_step, shard_index=jax.process_index(),
                           num_shards=jax.process_count(),
                           input_lufs=models.chain.input_lufs(config.model))
  window = monitor.MetricsWindow(last_saved=start_step)
  try:
    for step in range(start_step + 1, run.num_steps + 1):
      t0 = time.time()
      batch = next(batches)
      state, step_metrics = run.p_train(state, parallel.shard_batch(run.mesh, batch))
      window.add(step, step_metrics, time.time() - t0)
      is_last = step == run.num_steps
      loss = None
      if step % train.log_every == 0 or is_last:
        loss = _log_window(run, step, state, window)
      if step % train.eval_every == 0 or is_last:
        _validate(run, step, state)
      if step % train.checkpoint_every == 0 or is_last:
        window.drain()
        run.ckpts.save_latest(step, state, state.export_params(), run.make_meta(step))
        window.last_saved = step
      run.console.progress(loss)
  finally:
    run.console.close()
    run.ckpts.wait()
    run.ckpts.close()
    run.writer.flush()
  return state

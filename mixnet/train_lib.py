"""Training library: train state, the data-parallel train step, evaluation and the main loop.

Data parallelism is pmap-style, written with `jax.shard_map` over a 1-D `data` mesh of every
device in every process (the supported successor of `jax.pmap`): each device runs `train_step`
on its slice of the global batch, gradients are averaged with `lax.pmean` over `data`, and every
device applies the same update to its replica of the state. The global batch is
`per_device_batch * jax.device_count()`; each process feeds `per_device_batch *
jax.local_device_count()` examples of it.

Audio batches are dicts {"raw": [batch, time, channels], "mixed": same}, float32 at
`config.data.sample_rate` Hz.

`train_step` and `eval_step` are pure module-level functions so tests call them directly. The
models are deterministic (no dropout), so the step takes no random key; the run's randomness is
the parameter init (from `config.train.seed`) and the input pipeline's augmentation (seeded from
the same seed), so the same seed gives the same run.
"""

import functools
import os
import time

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow_datasets as tfds
from absl import logging
from clu import metric_writers, periodic_actions
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mixnet import checkpoints, fileio, input_pipeline, losses, metrics, models, plots
from mixnet.data import prepare

DATA_AXIS = "data"


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


def create_learning_rate_fn(opt_config, num_steps):
  """Linear warmup, then cosine decay to `end_lr_factor * learning_rate` (or constant for the
  "plateau" schedule, where `reduce_on_plateau` scales it)."""
  warmup = optax.linear_schedule(0.0, opt_config.learning_rate, max(1, opt_config.warmup_steps))
  if opt_config.schedule == "cosine":
    after = optax.cosine_decay_schedule(
        opt_config.learning_rate, max(1, num_steps - opt_config.warmup_steps),
        alpha=opt_config.end_lr_factor)
  elif opt_config.schedule == "plateau":
    after = optax.constant_schedule(opt_config.learning_rate)
  else:
    raise ValueError(f"config.opt.schedule={opt_config.schedule!r}; expected cosine or plateau")
  return optax.join_schedules([warmup, after], [opt_config.warmup_steps])


def create_optimizer(opt_config, num_steps, plateau_accumulation=1):
  """AdamW with global-norm clipping and the configured schedule. Returns (tx, lr_fn)."""
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


def segment_samples(config):
  return int(round(config.data.segment_seconds * config.data.sample_rate))


def create_train_state(config, model, tx, rng):
  """Initialises params (from `rng`), optimizer state and EMA for `config`'s input shape."""
  dummy = jnp.zeros((1, segment_samples(config), config.model.channels), jnp.float32)
  params = model.init(rng, dummy)["params"]
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=tx.init(params),
      # A copy: the step donates the state's buffers, and one buffer cannot be donated twice.
      ema_params=jax.tree.map(jnp.copy, params) if config.opt.ema_decay > 0 else None)


def train_step(state, batch, *, model, tx, loss_config, ema_decay):
  """One optimisation step on this device's slice of the batch; call inside `shard_map`.

  Gradients and metrics are averaged over the `data` axis, so every device applies the same
  update. A non-finite loss or gradient leaves the state untouched (nothing trains on NaN) and
  is reported as `metrics["finite"] == 0` for the loop to stop on.

  Returns:
    (new_state, metrics): metrics are scalars averaged over all devices.
  """
  def loss_fn(params):
    pred = model.apply({"params": params}, batch["raw"])
    return losses.combined_loss(pred, batch["mixed"], loss_config)

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, DATA_AXIS)
  loss, terms = jax.lax.pmean((loss, terms), DATA_AXIS)
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


def make_mesh():
  """A 1-D mesh named `data` over every device of every process."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,))


def make_parallel_steps(mesh, model, tx, config):
  """Jit-compiled, shard_mapped `train_step` and `eval_step` for `mesh`.

  The state is replicated (`P()`), batches are split along their first axis (`P("data")`).
  """
  step = functools.partial(train_step, model=model, tx=tx, loss_config=config.loss,
                           ema_decay=config.opt.ema_decay)
  p_train = jax.jit(
      jax.shard_map(step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=(P(), P())),
      donate_argnums=(0,))
  p_eval = jax.jit(jax.shard_map(
      functools.partial(eval_step, model=model), mesh=mesh,
      in_specs=(P(), P(DATA_AXIS)), out_specs=P(DATA_AXIS)))
  return p_train, p_eval


def shard_batch(mesh, local_batch):
  """Host-local numpy batch (leading axis = local examples) -> global arrays split over `data`."""
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def replicate(mesh, tree):
  """Places a pytree on every device of `mesh` (replicated)."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def _to_host(x):
  """A global (possibly multi-process) array as numpy on every process."""
  if jax.process_count() == 1:
    return np.asarray(x)
  from jax.experimental import multihost_utils

  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def evaluate(p_eval, params, eval_ds, mesh, config, local_batch):
  """Runs the model over up to `config.train.eval_batches` validation batches.

  Every process runs the same number of steps (a process whose windows ran out feeds an empty,
  masked batch), so multi-host evaluation never deadlocks. Windows whose target is pure digital
  silence are skipped: every metric is degenerate there.

  Returns:
    (averages, clips): metric averages over all windows (see mixnet.metrics, plus `val_loss`, the
    training loss's weighted combination), and the first `num_audio_summaries` windows as
    (raw, target, prediction) numpy triples for audio and spectrogram summaries.
  """
  rows, clips = [], []
  shape = (local_batch, segment_samples(config), config.model.channels)
  it = iter(eval_ds)
  for _ in range(config.train.eval_batches):
    batch = next(it, None)
    if batch is None and jax.process_count() == 1:
      break
    if batch is None:
      batch = {"raw": np.zeros((0,) + shape[1:], np.float32)}
      batch["mixed"] = batch["raw"]
    n = batch["raw"].shape[0]
    padded = {k: np.pad(batch[k], [(0, local_batch - n), (0, 0), (0, 0)])
              for k in ("raw", "mixed")}
    padded["valid"] = np.arange(local_batch) < n
    batch = shard_batch(mesh, padded)
    pred = p_eval(params, batch["raw"])
    raw, target, valid, pred = (_to_host(x) for x in (batch["raw"], batch["mixed"],
                                                     batch["valid"], pred))
    for i in np.flatnonzero(valid):
      if np.max(np.abs(target[i])) == 0:
        continue
      rows.append(metrics.compute(pred[i], target[i], config.data.sample_rate))
      if len(clips) < config.train.num_audio_summaries:
        clips.append((raw[i], target[i], pred[i]))
  averages = metrics.average(rows)
  if averages:
    averages["val_loss"] = (config.loss.l1_weight * averages["l1"]
                            + config.loss.stft_weight * averages["mr_stft"])
  return averages, clips


def write_eval_summaries(writer, step, clips, sample_rate):
  """Audio (raw, target, prediction) and a spectrogram image of each clip."""
  if not clips:
    return
  for name, idx in (("raw", 0), ("target", 1), ("prediction", 2)):
    writer.write_audios(step, {f"audio/{name}": np.stack([np.clip(c[idx], -1, 1) for c in clips])},
                        sample_rate=sample_rate)
  images = [plots.figure_to_array(plots.spectrogram_figure(
      [("raw", c[0]), ("target (your mix)", c[1]), ("prediction", c[2])], sample_rate))
      for c in clips]
  writer.write_images(step, {"spectrograms": np.stack(images)})


def train_iterator(data_config, data_dir, batch_size, seed, start_step=0, shard_index=0,
                   num_shards=1):
  """Host-local numpy training batches, starting with the batch of step `start_step + 1`.

  The input pipeline is a deterministic function of the seed, so skipping the batches already
  trained on makes a resumed run see exactly the batches an uninterrupted run would (the
  skipped batches are produced and dropped inside tf.data: cheap next to training on them).
  """
  ds = input_pipeline.create_train_dataset(data_config, data_dir, batch_size, seed,
                                           shard_index=shard_index, num_shards=num_shards)
  if start_step:
    logging.info("Fast-forwarding the input pipeline past %d batches for an exact resume",
                 start_step)
  return iter(tfds.as_numpy(ds.skip(start_step)))


def _flat_hparams(config):
  flat = {}

  def visit(prefix, node):
    for k, v in node.items():
      key = f"{prefix}{k}"
      if isinstance(v, dict):
        visit(key + ".", v)
      else:
        flat[key] = v if isinstance(v, (int, float, str, bool)) else str(v)

  visit("", config.to_dict())
  return flat


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN/inf loss or gradient; the message names the step."""


def prepare_data(config, workdir):
  """Builds (or reuses) the TFDS shards for `config.data`.

  Returns:
    (data_dir, facts): facts are the source folders and pair/second counts (process 0 only;
    saved with every checkpoint so evaluation knows which pairs were held out).

  Process 0 builds; the others wait at a barrier. In multi-host runs `data_dir` must be on
  storage every host sees.
  """
  data_dir = config.data.data_dir or os.path.join(workdir, "data")
  facts = {}
  if jax.process_index() == 0:
    summary = prepare.prepare_from_config(config.data, data_dir,
                                          os.path.join(workdir, "demo_pairs"))
    facts = {"raw_dir": summary["settings"]["raw_dir"],
             "mixed_dir": summary["settings"]["mixed_dir"], **summary["totals"]}
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("mixnet data prepared")
  return data_dir, facts


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config` in `workdir`, resuming from its latest checkpoint if there is one.

  Returns:
    The final TrainState (replicated over the mesh).
  """
  os.makedirs(workdir, exist_ok=True)
  data_dir, data_facts = prepare_data(config, workdir)
  make_meta = functools.partial(checkpoints.make_meta, config, data=data_facts)
  mesh = make_mesh()
  local_batch = config.train.per_device_batch * jax.local_device_count()
  global_batch = config.train.per_device_batch * jax.device_count()
  num_steps = config.train.num_steps

  model = models.build(config.model)
  tx, lr_fn = create_optimizer(config.opt, num_steps, plateau_accumulation=config.train.log_every)
  rng = jax.random.key(config.train.seed)
  state = jax.eval_shape(functools.partial(create_train_state, config, model, tx), rng)
  ckpts = checkpoints.RunCheckpoints(workdir, keep=config.train.keep_checkpoints)
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, P())), state)
  if ckpts.latest_step() is not None:
    state = ckpts.restore_state(abstract)
    logging.info("Resumed from step %d of %s", int(state.step), workdir)
  else:
    state = replicate(mesh, create_train_state(config, model, tx, rng))
  start_step = int(state.step)

  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
  if start_step == 0:
    writer.write_hparams(_flat_hparams(config))
  if jax.process_index() == 0:
    fileio.write_json(os.path.join(workdir, "config.json"), config.to_dict())

  p_train, p_eval = make_parallel_steps(mesh, model, tx, config)
  train_iter = train_iterator(
      config.data, data_dir, local_batch, seed=config.train.seed, start_step=start_step,
      shard_index=jax.process_index(), num_shards=jax.process_count())
  eval_ds_fn = functools.partial(
      input_pipeline.create_eval_dataset, config.data, data_dir, local_batch,
      shard_index=jax.process_index(), num_shards=jax.process_count())

  report = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                           every_secs=30.0)
  audio_s_per_step = global_batch * config.data.segment_seconds
  acc, wait_s, t_window, steps_in_window = [], 0.0, time.time(), 0
  pending = None  # metrics of the previous step, read one step late to keep the device busy
  last_saved = start_step

  def check(pending):
    step_no, m = pending
    m = jax.device_get(m)
    if not m["finite"]:
      ckpts.wait()
      raise NonFiniteLossError(
          f"non-finite loss at step {step_no} (loss={m['loss']}, grad_norm={m['grad_norm']}); "
          f"training stopped without applying it. The last good checkpoint (step {last_saved}) "
          "is intact. Check the data for NaN/inf samples or lower config.opt.learning_rate.")
    return m

  for step in range(start_step + 1, num_steps + 1):
    t0 = time.time()
    batch = next(train_iter)
    wait_s += time.time() - t0
    state, step_metrics = p_train(state, shard_batch(mesh, batch))
    if pending is not None:
      acc.append(check(pending))
    pending = (step, step_metrics)
    report(step)
    steps_in_window += 1

    is_last = step == num_steps
    if step % config.train.log_every == 0 or is_last:
      acc.append(check(pending))
      pending = None
      elapsed = time.time() - t_window
      scalars = {f"train/{k}": float(np.mean([a[k] for a in acc])) for k in acc[0]
                 if k != "finite"}
      scalars["train/learning_rate"] = float(lr_fn(step)) * _plateau_scale(state)
      scalars["perf/steps_per_sec"] = steps_in_window / elapsed
      scalars["perf/audio_seconds_per_sec"] = steps_in_window * audio_s_per_step / elapsed
      scalars["perf/input_wait_fraction"] = wait_s / elapsed
      writer.write_scalars(step, scalars)
      logging.info(
          "step %d/%d  loss %.4f (l1 %.4f, mr_stft %.4f)  lr %.2e  %.2f steps/s  "
          "%.1f s audio/s  input wait %.0f%%", step, num_steps, scalars["train/loss"],
          scalars["train/l1"], scalars["train/mr_stft"], scalars["train/learning_rate"],
          scalars["perf/steps_per_sec"], scalars["perf/audio_seconds_per_sec"],
          100 * scalars["perf/input_wait_fraction"])
      acc, wait_s, t_window, steps_in_window = [], 0.0, time.time(), 0

    if step % config.train.eval_every == 0 or is_last:
      with report.timed("eval"):
        averages, clips = evaluate(p_eval, state.export_params(), eval_ds_fn(), mesh, config,
                                   local_batch)
      if averages:
        writer.write_scalars(step, {f"eval/{k}": v for k, v in averages.items()})
        write_eval_summaries(writer, step, clips, config.data.sample_rate)
        logging.info("eval at step %d: %s", step,
                     ", ".join(f"{k} {v:.4f}" for k, v in sorted(averages.items())))
        ckpts.save_best(step, state.export_params(),
                        make_meta(step, averages["val_loss"]),
                        averages["val_loss"])

    if step % config.train.checkpoint_every == 0 or is_last:
      if pending is not None:
        acc.append(check(pending))
        pending = None
      ckpts.save_latest(step, state, state.export_params(), make_meta(step))
      last_saved = step

  ckpts.wait()
  ckpts.close()
  writer.flush()
  return state


def _plateau_scale(state):
  """The reduce-on-plateau multiplier in the optimizer state (1.0 without that schedule)."""
  scale = optax.tree_utils.tree_get(state.opt_state, "scale", default=None)
  return 1.0 if scale is None else float(jax.device_get(scale))

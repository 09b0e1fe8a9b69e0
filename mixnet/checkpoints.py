"""Orbax checkpoints of a training run, and finding/loading them for inference.

A training workdir holds two Orbax `CheckpointManager` folders:

  WORKDIR/checkpoints/STEP/  the latest `keep_checkpoints` steps: `state` (the full train state:
                             step, params, optimizer state, EMA), `params` (the export parameters:
                             EMA if enabled, else raw) and `meta` (JSON, below).
  WORKDIR/best/STEP/         the single step with the lowest validation loss seen so far:
                             `params` and `meta` only. This is the original design's
                             "best_model.pt".

`meta` is everything inference needs besides the weights: the resolved config (model
hyper-parameters, sample rate, channels), the step and the validation loss. Orbax writes each
step into a temporary folder and renames it when complete, so a run killed mid-save never leaves a
half-written checkpoint that a restore could pick up.

Inference resolves a user-supplied path with `resolve`: a workdir (best, else latest), one of the
two manager folders (its best/latest step), or a single step folder.
"""

import dataclasses
import os

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

LATEST = "checkpoints"
BEST = "best"


class CheckpointError(ValueError):
  """A checkpoint path holds no usable checkpoint; the message names the path and the problem."""


def _manager(directory, item_names, max_to_keep, best=False, read_only=False):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep,
      create=not read_only,
      read_only=read_only,
      best_fn=(lambda m: m["val_loss"]) if best else None,
      best_mode="min",
      keep_checkpoints_without_metrics=False if best else True,
      cleanup_tmp_directories=not read_only,
  )
  return ocp.CheckpointManager(directory, options=options, item_names=item_names)


class RunCheckpoints:
  """The latest and best checkpoint managers of one training workdir."""

  def __init__(self, workdir, keep=3):
    workdir = os.path.abspath(workdir)  # Orbax (tensorstore) wants absolute paths.
    self.latest = _manager(os.path.join(workdir, LATEST), ("state", "params", "meta"), keep)
    self.best = _manager(os.path.join(workdir, BEST), ("params", "meta"), 1, best=True)

  def latest_step(self):
    return self.latest.latest_step()

  def restore_state(self, abstract_state):
    """Restores the latest full train state into the structure/shardings of `abstract_state`."""
    step = self.latest.latest_step()
    restored = self.latest.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored.state

  def save_latest(self, step, state, export_params, meta):
    self.latest.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        params=ocp.args.StandardSave(export_params),
        meta=ocp.args.JsonSave(meta)))

  def save_best(self, step, export_params, meta, val_loss):
    """Offers this step as best; Orbax keeps it only if `val_loss` beats the kept one."""
    self.best.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(export_params),
        meta=ocp.args.JsonSave(meta)), metrics={"val_loss": float(val_loss)})

  def wait(self):
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self):
    self.latest.close()
    self.best.close()


def make_meta(config, step, val_loss=None, data=None):
  """JSON-able facts saved beside the weights: the resolved config, step, validation loss and
  the training data's facts (`data`: source folders, pair counts)."""
  return {
      "data": data or {},
      "config": config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config,
      "sample_rate": int(config.data.sample_rate),
      "channels": int(config.model.channels),
      "model": config.model.name,
      "step": int(step),
      "val_loss": None if val_loss is None else float(val_loss),
  }


@dataclasses.dataclass(frozen=True)
class Located:
  """A resolved checkpoint: the manager folder and the step in it."""
  directory: str
  step: int


def _steps_in(directory):
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory)
                if d.isdigit() and os.path.isdir(os.path.join(directory, d)))


def resolve(path):
  """Finds the checkpoint that `path` names.

  Args:
    path: a training workdir (its best checkpoint, else its latest), a `best`/`checkpoints`
      manager folder (its best or latest step), or one step folder inside such a folder.

  Raises:
    CheckpointError: nothing usable is there.
  """
  path = os.path.abspath(os.fspath(path))
  if not os.path.exists(path):
    raise CheckpointError(f"{path}: checkpoint path does not exist")
  if not os.path.isdir(path):
    raise CheckpointError(f"{path}: is a file; expected a training workdir or checkpoint folder")
  for sub in (BEST, LATEST):
    steps = _steps_in(os.path.join(path, sub))
    if steps:
      return Located(os.path.join(path, sub), _pick(os.path.join(path, sub), steps))
  steps = _steps_in(path)
  if steps:
    return Located(path, _pick(path, steps))
  name = os.path.basename(path)
  if name.isdigit():
    return Located(os.path.dirname(path), int(name))
  raise CheckpointError(
      f"{path}: no checkpoint found (expected a training workdir with '{BEST}/' or '{LATEST}/', "
      "or a checkpoint folder with numbered steps)")


def _pick(directory, steps):
  if os.path.basename(directory) != BEST:
    return steps[-1]
  mngr = _manager(directory, ("params", "meta"), 1, best=True, read_only=True)
  best = mngr.best_step()
  mngr.close()
  return steps[-1] if best is None else best


def load_meta(located):
  """The `meta` JSON saved with a checkpoint."""
  mngr = _manager(located.directory, ("params", "meta"), None, read_only=True)
  try:
    return mngr.restore(located.step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
  except Exception as e:
    raise CheckpointError(
        f"{located.directory}/{located.step}: cannot read checkpoint metadata ({e})") from e
  finally:
    mngr.close()


def load_params(located, abstract_params):
  """Restores the export parameters into the structure of `abstract_params`.

  Args:
    located: from `resolve`.
    abstract_params: a pytree of `jax.ShapeDtypeStruct` (e.g. from `jax.eval_shape` of the
      model's init); arrays land on the default device unless the structs carry shardings.

  Raises:
    CheckpointError: the files are missing/corrupt, or the saved parameters do not match the
      model's structure or shapes.
  """
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract_params = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding or device),
      abstract_params)
  mngr = _manager(located.directory, ("params", "meta"), None, read_only=True)
  try:
    restored = mngr.restore(
        located.step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params)))
  except Exception as e:
    raise CheckpointError(
        f"{located.directory}/{located.step}: cannot restore parameters ({type(e).__name__}: {e})"
    ) from e
  finally:
    mngr.close()
  params = restored.params
  want = jax.tree.map(lambda x: x.shape, abstract_params)
  got = jax.tree.map(lambda x: np.shape(x), params)
  if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
    raise CheckpointError(
        f"{located.directory}/{located.step}: saved parameters do not match the model "
        "built from the saved config")
  return params

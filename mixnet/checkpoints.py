"""Orbax checkpoints of a training run, and finding/loading them for inference.

A training workdir holds two Orbax `CheckpointManager` folders:

  WORKDIR/checkpoints/STEP/  the latest `keep_checkpoints` steps: `state` (the full train state:
                             step, params, optimizer state, EMA), `params` (the export parameters:
                             EMA if enabled, else raw) and `meta` (JSON, below).
  WORKDIR/best/STEP/         the single step with the lowest validation loss seen so far:
                             `params` and `meta` only: the model a user exports.
  WORKDIR/best_model.mixnet  the same best step as one self-describing file
                             (`mixnet.model_file`), rewritten (atomically) whenever it improves.

`meta` is everything inference needs besides the weights: the resolved config (model
hyper-parameters, sample rate, channels), the step and the validation loss. Orbax writes each
step into a temporary folder and renames it when complete, so a run killed mid-save never leaves a
half-written checkpoint that a restore could pick up.

Inference names a checkpoint by a user-supplied path: a workdir (best, else latest), one of the
two manager folders (its best/latest step), or a single step folder. `candidates` lists the
steps such a path offers, preferred first; `load` tries them in that order, so a corrupt `best/`
step falls back to the newest intact one (with one warning saying which). Reading is quiet
(`mixnet.orbax_quiet`): a failed restore becomes one `CheckpointError` line.
"""

import dataclasses
import gc
import os

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from mixnet import errors, orbax_quiet

LATEST = "checkpoints"
BEST = "best"
BEST_MODEL_FILE = "best_model.mixnet"


class CheckpointError(errors.MixnetError):
  """A checkpoint path holds no usable checkpoint; the message names the path and the problem."""


def _manager(directory, item_names, max_to_keep, best=False, read_only=False):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=None if read_only else max_to_keep,
      save_interval_steps=0 if read_only else 1,
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
    self.model_file = os.path.join(workdir, BEST_MODEL_FILE)
    self._model_file_loss = None

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
    if jax.process_index() == 0:
      self._update_model_file(export_params, meta, float(val_loss))

  def _update_model_file(self, export_params, meta, val_loss):
    """Rewrites `best_model.mixnet` when `val_loss` beats the one it holds (kept over resumes)."""
    from mixnet import model_file

    if self._model_file_loss is None:
      self._model_file_loss = float("inf")
      if os.path.exists(self.model_file):
        try:
          self._model_file_loss = model_file.load(self.model_file)[1]["val_loss"]
        except model_file.ModelFileError:
          pass  # A damaged file (e.g. edited by hand) is replaced by the next best step.
    if val_loss < self._model_file_loss:
      host = jax.tree.map(
          lambda x: np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x),
          export_params)
      model_file.save(self.model_file, host, meta)
      self._model_file_loss = val_loss

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

  def __str__(self):
    return os.path.join(self.directory, str(self.step))


def _steps_in(directory):
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory)
                if d.isdigit() and os.path.isdir(os.path.join(directory, d)))


def candidates(path):
  """The checkpoint steps that `path` offers, preferred first.

  Args:
    path: a training workdir (its best step, then the other `best/` steps and the `checkpoints/`
      steps, newest first), a `best`/`checkpoints` manager folder (its best or latest step, then
      its other steps, newest first), or one step folder inside such a folder (that step only).

  Returns:
    A non-empty list of `Located`.

  Raises:
    CheckpointError: nothing usable is there.
  """
  path = os.path.abspath(os.fspath(path))
  if not os.path.exists(path):
    raise CheckpointError(f"{path}: checkpoint path does not exist")
  if not os.path.isdir(path):
    raise CheckpointError(f"{path}: is a file; expected a training workdir or checkpoint folder")
  managers = [os.path.join(path, sub) for sub in (BEST, LATEST)
              if _steps_in(os.path.join(path, sub))]
  if not managers and _steps_in(path):
    managers = [path]
  found = []
  for directory in managers:
    steps = _steps_in(directory)
    first = _pick(directory, steps)
    found += [Located(directory, s) for s in [first] + [s for s in steps[::-1] if s != first]]
  if found:
    return found
  name = os.path.basename(path)
  if name.isdigit():
    return [Located(os.path.dirname(path), int(name))]
  raise CheckpointError(
      f"{path}: no checkpoint found (expected a training workdir with '{BEST}/' or '{LATEST}/', "
      "or a checkpoint folder with numbered steps)")


def resolve(path):
  """The preferred checkpoint step of `path` (see `candidates`); raises CheckpointError."""
  return candidates(path)[0]


def load(path, restore_fn):
  """Restores the first of `candidates(path)` that `restore_fn` can load.

  Args:
    path: see `candidates`.
    restore_fn: `Located -> result`; raises `CheckpointError` for a step it cannot use.

  Returns:
    (located, result) of the step used. If preferred steps were skipped, one warning names
    them, why, and the step used instead.

  Raises:
    CheckpointError: no step loads; the message is the preferred step's problem.
  """
  tried = candidates(path)
  problems = []
  for located in tried:
    try:
      result = restore_fn(located)
    except CheckpointError as e:
      problems.append(str(e))
      continue
    if problems:
      logging.warning("%s; using %s instead", "; ".join(problems), located)
    return located, result
  others = f" (and {len(tried) - 1} other step(s) failed too)" if len(tried) > 1 else ""
  raise CheckpointError(problems[0] + others)


def _pick(directory, steps):
  if os.path.basename(directory) != BEST:
    return steps[-1]
  with orbax_quiet.quiet():
    mngr = _manager(directory, ("params", "meta"), 1, best=True, read_only=True)
    best = mngr.best_step()
    mngr.close()
  return steps[-1] if best is None or best not in steps else best


def load_meta(located):
  """The `meta` JSON saved with a checkpoint."""
  with orbax_quiet.quiet():
    mngr = _manager(located.directory, ("params", "meta"), None, read_only=True)
    try:
      return mngr.restore(
          located.step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:
      raise CheckpointError(
          f"{located}: cannot read checkpoint metadata ({orbax_quiet.reason(e)})") from e
    finally:
      mngr.close()


def load_params(located, abstract_params):
  """Restores the export parameters into the structure of `abstract_params`.

  Args:
    located: from `resolve` or `candidates`.
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
  with orbax_quiet.quiet():
    mngr = _manager(located.directory, ("params", "meta"), None, read_only=True)
    try:
      restored = mngr.restore(
          located.step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params)))
    except Exception as e:
      gc.collect()  # finalizes the abandoned reads now, under the hook above
      raise CheckpointError(
          f"{located}: cannot restore parameters, the files are corrupt or do not match the "
          f"saved config ({orbax_quiet.reason(e)})") from e
    finally:
      mngr.close()
  params = restored.params
  want = jax.tree.map(lambda x: x.shape, abstract_params)
  got = jax.tree.map(lambda x: np.shape(x), params)
  if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
    raise CheckpointError(
        f"{located}: saved parameters do not match the model built from the saved config")
  return params

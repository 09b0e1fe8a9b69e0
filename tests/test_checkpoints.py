"""mixnet.checkpoints: which steps a path offers, falling back past a broken one, quiet errors."""

import os

import jax
import numpy as np
import pytest

from mixnet import checkpoints, errors

_PARAMS = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A workdir with latest steps 1, 2, 3 and best step 2 (small parameters)."""
  path = str(tmp_path_factory.mktemp("run"))
  ckpts = checkpoints.RunCheckpoints(path, keep=3)
  meta = {"step": 0}
  for step, val_loss in ((1, 0.5), (2, 0.1), (3, 0.3)):
    params = jax.tree.map(lambda x, s=step: x * s, _PARAMS)
    ckpts.save_latest(step, {"params": params}, params, meta)
    ckpts.save_best(step, params, meta, val_loss)
  ckpts.wait()
  ckpts.close()
  return path


def _abstract():
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _PARAMS)


def test_candidates_preferred_first(workdir):
  found = [str(c) for c in checkpoints.candidates(workdir)]
  assert found == [os.path.join(workdir, *p) for p in
                   (("best", "2"), ("checkpoints", "3"), ("checkpoints", "2"),
                    ("checkpoints", "1"))]
  latest = os.path.join(workdir, "checkpoints")
  assert [c.step for c in checkpoints.candidates(latest)] == [3, 2, 1]
  assert [str(c) for c in checkpoints.candidates(os.path.join(latest, "2"))] == [
      os.path.join(latest, "2")]
  assert checkpoints.resolve(workdir) == checkpoints.candidates(workdir)[0]


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_no_checkpoint_is_a_one_line_mixnet_error(tmp_path, kind):
  path = tmp_path / "x"
  if kind == "file":
    path.write_text("not a folder")
  elif kind == "empty":
    path.mkdir()
  with pytest.raises(errors.MixnetError, match=str(path)) as raised:
    checkpoints.candidates(path)
  assert isinstance(raised.value, checkpoints.CheckpointError) and "\n" not in str(raised.value)


def test_load_uses_the_first_step_that_restores_and_says_so(workdir, caplog):
  def restore(located):
    if located.directory.endswith("best"):
      raise checkpoints.CheckpointError(f"{located}: broken")
    return checkpoints.load_params(located, _abstract())

  located, params = checkpoints.load(workdir, restore)
  assert str(located) == os.path.join(workdir, "checkpoints", "3")
  np.testing.assert_array_equal(params["w"], 3 * _PARAMS["w"])
  [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert warning == (f"{os.path.join(workdir, 'best', '2')}: broken; using "
                     f"{os.path.join(workdir, 'checkpoints', '3')} instead")


def test_load_fails_with_the_preferred_steps_problem(workdir):
  def restore(located):
    raise checkpoints.CheckpointError(f"{located}: broken")

  with pytest.raises(checkpoints.CheckpointError,
                     match=r"best/2: broken \(and 3 other step\(s\) failed too\)"):
    checkpoints.load(workdir, restore)


def test_corrupt_parameters_give_one_short_line_and_no_orbax_chatter(workdir, tmp_path, caplog):
  import shutil

  bad = tmp_path / "bad"
  shutil.copytree(os.path.join(workdir, "best"), bad)
  for root, _, files in os.walk(bad):
    for f in files:
      if os.path.basename(root) == "d":
        with open(os.path.join(root, f), "wb") as fh:
          fh.write(b"garbage")
  caplog.set_level("INFO")
  with pytest.raises(checkpoints.CheckpointError, match="cannot restore parameters") as raised:
    checkpoints.load_params(checkpoints.Located(str(bad), 2), _abstract())
  message = str(raised.value)
  assert message.startswith(f"{bad}/2: ") and "\n" not in message and len(message) < 500
  assert not [r for r in caplog.records if f"{os.sep}orbax{os.sep}" in r.pathname]

"""Training: the real train_and_evaluate on tiny data with 2 simulated devices, resume, NaN stop."""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from experiments import base
from mixnet import checkpoints, errors, losses, models, monitor, optimizer, parallel, train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _structure(config):
  return {k: _structure(v) if hasattr(v, "items") else type(v).__name__
          for k, v in config.items()}


def test_test_config_has_the_real_config_structure(tiny_config):
  # A config change that breaks training must break these tests too.
  assert _structure(tiny_config()) == _structure(
      base.get_config())


def _config(tiny_config, num_steps, **train):
  """The tiny test config for a run of `num_steps`, all of them inside the warmup.

  The learning rate then does not depend on `num_steps` (the cosine decay is never reached), so
  a run stopped at step 2 and resumed to 4 must equal a straight run to 4, and runs of any
  length here compile the same train step (conftest's compilation cache compiles it once).
  """
  config = tiny_config(num_steps=num_steps, **train)
  assert config.opt.warmup_steps >= num_steps
  return config


@pytest.fixture(scope="module")
def two_step_run(tiny_config, tmp_path_factory):
  """(workdir, final state) of a 2-step run: a checkpoint at each step, an eval at the last."""
  workdir = tmp_path_factory.mktemp("two_steps")
  state = train_lib.train_and_evaluate(_config(tiny_config, 2, eval_every=2, checkpoint_every=1),
                                       str(workdir))
  return workdir, state


def test_two_step_run_writes_events_and_checkpoints(two_step_run):
  assert jax.device_count() == 2
  workdir, state = two_step_run
  assert int(state.step) == 2

  events = glob.glob(str(workdir / "events.out.tfevents.*"))
  assert events, os.listdir(workdir)
  acc = event_accumulator.EventAccumulator(str(workdir), size_guidance={"tensors": 0})
  acc.Reload()
  tags = set(acc.Tags()["tensors"])
  for tag in ("train/loss", "train/l1", "train/mr_stft", "train/learning_rate",
              "train/grad_norm", "perf/steps_per_sec", "perf/audio_seconds_per_sec",
              "eval/mr_stft", "eval/si_sdr", "eval/loudness_error_lu", "eval/val_loss",
              "audio/raw", "audio/target", "audio/prediction", "spectrograms"):
    assert tag in tags, (tag, sorted(tags))
  loss = [tensor_util.make_ndarray(e.tensor_proto) for e in acc.Tensors("train/loss")]
  assert len(loss) == 2 and np.all(np.isfinite(loss))

  assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]
  assert os.listdir(workdir / "best") == ["2"]
  meta = checkpoints.load_meta(checkpoints.resolve(str(workdir)))
  assert meta["step"] == 2 and meta["sample_rate"] == 16000 and meta["model"] == "time_unet"
  assert np.isfinite(meta["val_loss"])
  assert os.path.exists(workdir / "config.json")


def _params(state):
  return jax.tree.map(np.asarray, jax.device_get(state.params))


def test_resume_matches_uninterrupted_run(tiny_config, two_step_run, tmp_path):
  straight = train_lib.train_and_evaluate(_config(tiny_config, 4, eval_every=100,
                                                  checkpoint_every=2), str(tmp_path / "straight"))
  # The 2-step run, stopped there, resumed to step 4 (in a copy: other tests read the original).
  shutil.copytree(two_step_run[0], tmp_path / "resumed")
  resumed = train_lib.train_and_evaluate(_config(tiny_config, 4, eval_every=100,
                                                 checkpoint_every=2), str(tmp_path / "resumed"))
  assert int(resumed.step) == 4
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=0),
               _params(straight), _params(resumed))


def test_nan_in_data_stops_with_clear_message(tiny_config, tmp_path, monkeypatch):
  real = train_lib.train_iterator

  def poisoned(*args, **kwargs):
    for i, batch in enumerate(real(*args, **kwargs)):
      if i == 2:  # the batch of step 3
        batch = dict(batch, raw=np.full_like(batch["raw"], np.nan))
      yield batch

  monkeypatch.setattr(train_lib, "train_iterator", poisoned)
  config = _config(tiny_config, 4, eval_every=100)
  with pytest.raises(monitor.NonFiniteLossError, match="non-finite loss at step 3"):
    train_lib.train_and_evaluate(config, str(tmp_path))
  # The last good checkpoint is intact and restorable; nothing after it was written.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  model = models.build(config.model)
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x)["params"],
                            jax.ShapeDtypeStruct((1, 8000, 1), np.float32))
  params = checkpoints.load_params(checkpoints.Located(str(tmp_path / "checkpoints"), 2),
                                   abstract)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


def _global_batch(n, length=8000, seed=0):
  rng = np.random.default_rng(seed)
  # Items of very different levels: a loss that pooled over the batch would differ per device.
  level = np.geomspace(0.01, 0.3, n)[:, None, None]
  raw = (level * rng.standard_normal((n, length, 1))).astype(np.float32)
  return {"raw": raw, "mixed": (0.5 * raw + 0.05 * np.roll(raw, 3, axis=1)).astype(np.float32)}


def test_train_step_same_update_on_one_and_two_devices(tiny_config):
  config = tiny_config()
  model = models.build(config.model)
  tx, _ = optimizer.create_optimizer(config.opt, config.train.num_steps)
  batch = _global_batch(4)
  results = []
  for n in (1, 2):
    mesh = parallel.make_mesh(jax.devices()[:n])
    state = parallel.replicate(mesh, train_lib.create_train_state(
        config, model, tx, jax.random.key(0)))
    p_train, _ = train_lib.make_parallel_steps(mesh, model, tx, config)
    # Two steps: the warmup's learning rate is 0 at the first, so only the second moves params.
    for _ in range(2):
      state, step_metrics = p_train(state, parallel.shard_batch(mesh, batch))
    results.append((_params(state), jax.device_get(step_metrics)))
  (p1, m1), (p2, m2) = results
  np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5), p1, p2)
  assert m1["finite"] == 1.0
  init = _params(train_lib.create_train_state(config, model, tx, jax.random.key(0)))
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(init), jax.tree.leaves(p1),
                                                     strict=True))


def test_train_step_scores_only_the_segment_after_the_context(tiny_config):
  """`data.context_seconds`: the warm-up samples feed the model but not the loss."""
  config = tiny_config()
  config.data.context_seconds = 0.125
  # A two-level U-Net: what is tested is where the loss starts, and it compiles quickly.
  config.model.time_unet.strides = (4, 4)
  config.model.time_unet.bottleneck_dilations = (1,)
  context = int(0.125 * config.data.sample_rate)
  model = models.build(config.model)
  tx, _ = optimizer.create_optimizer(config.opt, config.train.num_steps)
  mesh = parallel.make_mesh(jax.devices()[:1])
  p_train, _ = train_lib.make_parallel_steps(mesh, model, tx, config)
  batch = _global_batch(2, length=4000)
  init = train_lib.create_train_state(config, model, tx, jax.random.key(0))
  want, _ = jax.jit(lambda p, x, y: losses.combined_loss(
      model.apply({"params": p}, x)[:, context:], y[:, context:], config.loss))(
          init.params, batch["raw"], batch["mixed"])

  def loss_of(b):
    state = parallel.replicate(mesh, jax.tree.map(jnp.copy, init))
    return float(jax.device_get(p_train(state, parallel.shard_batch(mesh, b))[1]["loss"]))

  assert loss_of(batch) == pytest.approx(float(want), rel=1e-5)
  noisy = np.random.default_rng(1).standard_normal(batch["mixed"].shape).astype(np.float32)
  in_context = dict(batch, mixed=np.where(np.arange(4000)[None, :, None] < context, noisy,
                                          batch["mixed"]))
  assert loss_of(in_context) == pytest.approx(loss_of(batch), rel=1e-6)
  in_segment = dict(batch, mixed=np.where(np.arange(4000)[None, :, None] >= context, noisy,
                                          batch["mixed"]))
  assert loss_of(in_segment) > 2 * loss_of(batch)


def test_sigkill_mid_training_resumes(demo_pairs, prepared_data_dir, tmp_path):
  workdir = tmp_path / "run"
  raw_dir, mixed_dir = demo_pairs
  args = [sys.executable, "-m", "mixnet.train", "--config=experiments/base.py:tiny",
          f"--workdir={workdir}", "--config.sample_rate=16000",
          f"--config.data.raw_dir={raw_dir}", f"--config.data.mixed_dir={mixed_dir}",
          f"--config.data.data_dir={prepared_data_dir}", "--config.data.segment_seconds=0.5",
          "--config.model.time_unet.base_width=4", "--config.model.time_unet.max_width=16",
          "--config.train.per_device_batch=2", "--config.train.checkpoint_every=2",
          "--config.train.eval_every=1000", "--config.train.log_every=1"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  # Inside the tiny preset's warmup (50 steps), as every run here: the same train step compiles
  # for both runs and for the tests above (conftest's compilation cache), so most of this test
  # is the kill and the resume. The run must still be going when it is killed (checked below).
  proc = subprocess.Popen(args + ["--config.train.num_steps=50"], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt_dir = workdir / "checkpoints"
  deadline = time.time() + 240
  try:
    while time.time() < deadline:
      steps = [d for d in os.listdir(ckpt_dir) if d.isdigit()] if ckpt_dir.exists() else []
      if any(int(s) >= 4 for s in steps) or proc.poll() is not None:
        break
      time.sleep(0.2)
    else:
      pytest.fail("no checkpoint at step >= 4 within 240 s")
  finally:
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert running, f"the run ended (exit status {proc.returncode}) before it could be killed"
  saved = checkpoints.RunCheckpoints(str(workdir)).latest_step()
  assert 4 <= saved < 50
  resume_to = saved + 2
  out = subprocess.run(args + [f"--config.train.num_steps={resume_to}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"Resumed from step {saved}" in out.stdout
  assert checkpoints.RunCheckpoints(str(workdir)).latest_step() == resume_to
  # The terminal shows what a person needs; library chatter went to the log file.
  assert f"Done at step {resume_to}" in out.stdout and "eval at step" in out.stdout
  assert f"{resume_to}/{resume_to}" in out.stderr  # The progress line.
  console = out.stdout + out.stderr
  assert "orbax" not in console.lower() and "FeatureConnector" not in console
  assert len(out.stdout.splitlines()) <= 6
  assert "Resumed from step" in open(workdir / "train.INFO").read()


def test_learning_rate_schedules(tiny_config):
  opt = tiny_config().opt
  opt.learning_rate, opt.warmup_steps, opt.end_lr_factor = 1e-3, 10, 0.01
  lr = optimizer.create_learning_rate_fn(opt, num_steps=110)
  assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(5e-4)
  assert float(lr(10)) == pytest.approx(1e-3)
  assert float(lr(60)) == pytest.approx(0.5 * (1e-3 + 1e-5), rel=1e-3)  # half way down
  assert float(lr(110)) == pytest.approx(1e-5, rel=1e-3)
  opt.schedule = "bogus"
  with pytest.raises(ValueError, match="bogus"):
    optimizer.create_learning_rate_fn(opt, 100)


def test_held_group_keeps_its_values_then_starts_a_fresh_optimizer(tiny_config):
  """`opt.hold`: chain first, residual after; the residual's first update is a fresh Adam's."""
  opt = tiny_config().opt
  opt.update(warmup_steps=0, weight_decay=0.1, learning_rate=1e-2)
  opt.hold = ml_collections.ConfigDict({"residual": 0.5})
  tx, _ = optimizer.create_optimizer(opt, num_steps=8)
  params = {"chain": {"w": np.ones(3, np.float32)}, "residual": {"v": np.ones(2, np.float32)}}
  grads = jax.tree.map(lambda p: np.full_like(p, 0.3), params)
  state, history = tx.init(params), []
  for _ in range(5):
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    history.append(jax.tree.map(np.asarray, params))
  assert not np.allclose(history[0]["chain"]["w"], 1.0)
  for held in history[:4]:
    np.testing.assert_array_equal(held["residual"]["v"], 1.0)  # no step, no weight decay
  fresh = optax.chain(*optimizer._adamw(opt, optimizer.create_learning_rate_fn(opt, 4)))
  first, _ = fresh.update({"v": grads["residual"]["v"]}, fresh.init({"v": np.ones(2)}),
                          {"v": np.ones(2, np.float32)})
  np.testing.assert_allclose(history[4]["residual"]["v"], 1.0 + np.asarray(first["v"]),
                             rtol=1e-6)
  with pytest.raises(errors.MixnetError, match="config.opt: residual is not a parameter group"):
    tx.init({"chain": params["chain"]})


def test_group_learning_rate_scales_only_that_groups_updates(tiny_config):
  """`opt.group_learning_rate`: a group's Adam steps follow its own peak rate."""
  opt = tiny_config().opt
  opt.update(warmup_steps=0, weight_decay=0.0, learning_rate=1e-2)
  params = {"chain": {"w": np.ones(3, np.float32)}, "residual": {"v": np.ones(2, np.float32)}}
  grads = jax.tree.map(lambda p: np.full_like(p, 0.3), params)
  plain, _ = optimizer.create_optimizer(opt, num_steps=8)
  opt.group_learning_rate = ml_collections.ConfigDict({"residual": 1e-3})
  tx, _ = optimizer.create_optimizer(opt, num_steps=8)
  reference, _ = plain.update(grads, plain.init(params), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["chain"]["w"], reference["chain"]["w"], rtol=1e-6)
  np.testing.assert_allclose(updates["residual"]["v"], 0.1 * reference["residual"]["v"],
                             rtol=1e-5)
  assert abs(float(updates["residual"]["v"][0])) > 0


def test_reduce_on_plateau_scales_updates_when_loss_stalls(tiny_config):
  opt = tiny_config().opt
  opt.update(schedule="plateau", warmup_steps=1, plateau_patience=3, plateau_factor=0.5)
  tx, _ = optimizer.create_optimizer(opt, num_steps=100)
  params = {"w": np.ones(3, np.float32)}
  state = tx.init(params)
  grads = {"w": np.full(3, 0.1, np.float32)}
  scales = []
  for _ in range(12):
    _, state = tx.update(grads, state, params, value=np.float32(1.0))  # a loss that never moves
    scales.append(optimizer.plateau_scale(state))
  assert scales[0] == 1.0 and scales[-1] < 1.0
  assert all(b <= a for a, b in zip(scales, scales[1:], strict=False))


def test_cli_reports_every_config_problem_before_any_data_work(tmp_path):
  workdir = tmp_path / "run"
  out = subprocess.run(
      [sys.executable, "-m", "mixnet.train", "--config=experiments/base.py:tiny",
       f"--workdir={workdir}", "--config.train.num_steps=-1", "--config.train.checkpoint_every=0",
       "--config.model.name=wavenet"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-3000:]
  lines = out.stderr.strip().splitlines()
  assert lines[0] == "error: the training config has 3 problem(s):", out.stderr
  assert [x.strip() for x in lines[1:]] == [
      "config.train.num_steps=-1: must be a whole number >= 1",
      "config.train.checkpoint_every=0: must be a whole number >= 1",
      "config.model.name: unknown model 'wavenet'; expected one of chain, hybrid, spectral_unet, "
      "time_unet"]
  assert not (workdir / "data").exists() and not (workdir / "demo_pairs").exists()


def test_without_validation_pairs_best_is_chosen_on_training_data_loudly(
    tiny_config, demo_pairs, tmp_path, caplog):
  from mixnet.data import prepare

  data_dir = str(tmp_path / "data")
  prepare.prepare_dataset(*demo_pairs, data_dir, sample_rate=16000, val_fraction=0.0,
                          show_progress=False)
  config = _config(tiny_config, 2, eval_every=2)
  config.data.data_dir, config.data.val_fraction = data_dir, 0.0
  with caplog.at_level("WARNING"):
    train_lib.train_and_evaluate(config, str(tmp_path / "run"))
  warnings = [r for r in caplog.records if "chosen on TRAINING data" in r.getMessage()]
  assert len(warnings) == 1
  meta = checkpoints.load_meta(checkpoints.resolve(str(tmp_path / "run")))
  assert meta["data"]["best_chosen_on"] == "train"

"""Two local processes train as two hosts: jax.distributed with CPU collectives (gloo).

The real CLI (`python -m mixnet.train --multihost`) runs as process 0 and 1 of a 2-process run,
one CPU device each, coordinator on a free loopback port, both reading the same prepared
shards. Checked: each host reads only its share of the training files; only process 0 writes
checkpoints, events and the log file; a SIGKILL of one process (then of the other, which would
otherwise wait for its peer) followed by a restart of both resumes; and the result equals the
same steps taken by one process on two devices fed both hosts' batches.
"""

import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mixnet import checkpoints, input_pipeline, models, optimizer, parallel, train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAL_FRACTION = 0.34  # As conftest prepared the shards, so the run reuses them.


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(workdir, demo_pairs, data_dir, num_steps, logs):
  port = _free_port()
  procs = []
  for pid in (0, 1):
    args = [sys.executable, "-m", "mixnet.train", "--config=experiments/base.py:tiny",
            f"--workdir={workdir}", "--multihost", f"--coordinator_address=127.0.0.1:{port}",
            "--num_processes=2", f"--process_id={pid}", "--verbosity=0",
            "--config.sample_rate=16000", f"--config.data.raw_dir={demo_pairs[0]}",
            f"--config.data.mixed_dir={demo_pairs[1]}", f"--config.data.data_dir={data_dir}",
            f"--config.data.val_fraction={VAL_FRACTION}", "--config.data.segment_seconds=0.5",
            "--config.model.time_unet.base_width=4", "--config.model.time_unet.max_width=16",
            "--config.train.per_device_batch=2", "--config.train.checkpoint_every=2",
            "--config.train.eval_every=1000", "--config.train.log_every=1",
            "--config.train.eval_batches=1", f"--config.train.num_steps={num_steps}"]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu")
    out = open(os.path.join(logs, f"p{pid}_{num_steps}.txt"), "w")  # noqa: SIM115
    procs.append((subprocess.Popen(args, cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT), out.name))
  return procs


def _emulated_run(config, data_dir, num_steps):
  """Export params after `num_steps` steps of one process on 2 devices fed both hosts' data."""
  mesh = parallel.make_mesh(jax.devices()[:2])
  model = models.build(config.model)
  tx, _ = optimizer.create_optimizer(config.opt, config.train.num_steps)
  state = parallel.replicate(mesh, train_lib.create_train_state(
      config, model, tx, jax.random.key(config.train.seed)))
  p_train, _ = train_lib.make_parallel_steps(mesh, model, tx, config)
  hosts = [train_lib.train_iterator(config.data, data_dir, config.train.per_device_batch,
                                    seed=config.train.seed, shard_index=h, num_shards=2)
           for h in (0, 1)]
  for _ in range(num_steps):
    parts = [next(h) for h in hosts]
    batch = {k: np.concatenate([p[k] for p in parts]) for k in ("raw", "mixed")}
    state, _ = p_train(state, parallel.shard_batch(mesh, batch))
  return jax.tree.map(np.asarray, jax.device_get(state.export_params()))


def _wait_for_checkpoint(ckpt_dir, at_least, procs, timeout):
  deadline = time.time() + timeout
  while time.time() < deadline:
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()] if ckpt_dir.exists() else []
    if steps and max(steps) >= at_least:
      return
    if any(p.poll() is not None for p, _ in procs):
      break
    time.sleep(0.2)
  pytest.fail(f"no checkpoint at step >= {at_least}: "
              + " | ".join(open(f).read()[-1500:] for _, f in procs))


def test_two_processes_train_share_data_and_resume_after_a_kill(
    tiny_config, demo_pairs, prepared_data_dir, tmp_path):
  workdir = tmp_path / "run"
  logs = str(tmp_path)
  # 50 steps: inside the tiny preset's warmup, so this run and the resumed one compile the same
  # train step (conftest's compilation cache keeps it). It must still be going when it is killed.
  first = _launch(workdir, demo_pairs, prepared_data_dir, 50, logs)
  try:
    _wait_for_checkpoint(workdir / "checkpoints", 2, first, timeout=600)
  finally:
    running = [proc.poll() is None for proc, _ in first]
    for proc, _ in first[::-1]:  # Process 1 first: a host lost mid-run.
      proc.send_signal(signal.SIGKILL)
      proc.wait()
  assert all(running), "a process ended before it could be killed: " + " | ".join(
      open(f).read()[-1500:] for _, f in first)
  saved = checkpoints.RunCheckpoints(str(workdir)).latest_step()
  assert saved < 50
  resume_to = saved + 2
  second = _launch(workdir, demo_pairs, prepared_data_dir, resume_to, logs)
  for proc, _ in second:
    proc.wait(timeout=600)
  texts = [open(f).read() for _, f in second]
  assert [p.returncode for p, _ in second] == [0, 0], texts[0][-2000:] + texts[1][-2000:]
  assert all(f"Resumed from step {saved}" in t for t in texts)
  assert checkpoints.RunCheckpoints(str(workdir)).latest_step() == resume_to

  # Each host read only its share of the training files.
  shares = [set(re.search(rf"host {h} of 2 trains on \d+ files: (.*)", t).group(1).split(", "))
            for h, t in enumerate(texts)]
  builder = input_pipeline.open_dataset(tiny_config().data, prepared_data_dir)
  train_names = set(input_pipeline.load_host_files(builder, "train")[0])
  assert shares[0] and shares[1] and not shares[0] & shares[1]
  assert shares[0] | shares[1] == train_names

  # Only process 0 wrote events and log files (their names end with the writer's pid).
  primaries = {str(p.pid) for p, _ in (first[0], second[0])}
  written = glob.glob(str(workdir / "events.out.tfevents.*"))
  written += glob.glob(str(workdir / "train.*.log.*"))
  # events.out.tfevents.TIME.HOST.PID.N.v2 and train.HOST.USER.log.INFO.DATE.PID
  pids = {w.split(".")[-3] if "tfevents" in w else w.split(".")[-1] for w in written}
  assert written and pids <= primaries, written

  # The update equals the one of one process with two devices seeing both hosts' batches.
  config = tiny_config(num_steps=resume_to, eval_batches=1)
  expected = _emulated_run(config, prepared_data_dir, resume_to)
  model = models.build(config.model)
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x)["params"],
                            jax.ShapeDtypeStruct((1, 8000, 1), np.float32))
  got = checkpoints.load_params(checkpoints.Located(str(workdir / "checkpoints"), resume_to),
                                abstract)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5),
               expected, jax.tree.map(np.asarray, got))

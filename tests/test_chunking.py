"""Chunk plans: one-sided context, tail chunks, chunk sizes, hybrid run as two chunked stages."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import chain as chain_config
from experiments import hybrid as hybrid_config
from mixnet import chunking, engines, models

SR = 16000


def _config(name):
  """A small chain (0.15 s reverb, releases up to 30 ms) or hybrid at 16 kHz."""
  config = (chain_config if name == "chain" else hybrid_config).get_config("tiny")
  config.sample_rate = SR
  hparams = config.model.chain if name == "chain" else config.model.hybrid.chain
  hparams.ir_seconds = 0.15
  hparams.max_release_ms = 30.0
  if name == "hybrid":
    config.model.hybrid.time_unet.strides = (4, 4)
    config.model.hybrid.time_unet.bottleneck_dilations = (1,)
  return config.model


def _signal(seconds, seed=0):
  """Noise bursts with silences between them, float32 `[time, 1]` at 16 kHz."""
  rng = np.random.default_rng(seed)
  n = int(seconds * SR)
  bursts = np.sin(2 * np.pi * 3 * np.arange(n) / SR) > 0
  return (0.3 * rng.standard_normal((n, 1)) * bursts[:, None]).astype(np.float32)


def _params(config, scale=0.5):
  """Parameters away from the initial values, so that every stage shapes the output.

  A hybrid's U-Net residual moves less (`scale / 25`): its output stays at an audio level.
  """
  model = models.build(config)
  params = models.init_variables(model, jax.random.key(0), jnp.zeros((1, 512, 1)))["params"]
  rng = np.random.default_rng(1)

  def perturb(tree, sigma):
    return jax.tree.map(lambda p: p + jnp.asarray(rng.normal(0, sigma, p.shape), jnp.float32),
                        tree)

  if config.name == "hybrid":
    return model, {"chain": perturb(params["chain"], scale),
                   "residual": perturb(params["residual"], scale / 25)}
  return model, perturb(params, scale)


def test_plan_takes_context_only_on_the_side_the_model_needs_it():
  config = _config("chain")
  left, right = models.context(config)
  plan = chunking.ChunkPlan.create(config, 1.0, SR)
  assert plan.left >= left > 50 * plan.right and plan.right >= right
  assert plan.chunk == plan.left + plan.hops[0] + plan.fade + plan.right
  align = models.alignment(config)
  assert all(h % align == 0 for h in (plan.left, plan.right) + plan.hops)


def test_cover_ends_with_the_shortest_tail_that_holds_the_rest():
  plan = chunking.ChunkPlan.create(_config("chain"), 1.0, SR)
  full = plan.hops[0]
  assert len(plan.hops) == chunking.TAILS and sorted(plan.hops, reverse=True) == list(plan.hops)
  assert plan.cover(3 * full) == [full] * 3
  assert plan.cover(2 * full + 1) == [full, full, plan.hops[-1]]
  assert plan.cover(2 * full + plan.hops[2] + 1) == [full, full, plan.hops[1]]
  assert plan.cover(1) == [plan.hops[-1]]


def test_weights_of_a_cover_sum_to_one():
  plan = chunking.ChunkPlan.create(_config("chain"), 0.5, SR)
  hops = plan.cover(3 * plan.hops[0] + 17)
  starts = np.concatenate([[0], np.cumsum(hops)[:-1]])
  total = np.zeros(starts[-1] + plan.length(hops[-1]))
  for k, (s, h) in enumerate(zip(starts, hops, strict=True)):
    total[s:s + plan.length(h)] += chunking.chunk_weight(plan, h, k == 0, k == len(hops) - 1)
  np.testing.assert_allclose(total[plan.left:plan.left + sum(hops)], 1.0, atol=1e-6)


def test_chunked_with_a_tail_equals_one_pass():
  config = _config("chain")
  model, params = _params(config)
  plan = chunking.ChunkPlan.create(config, 0.4, SR)
  x = _signal((2.5 * plan.hops[0] + 0.6 * plan.hops[-1]) / SR)  # two full chunks and a tail
  assert len(set(plan.cover(len(x)))) == 2
  apply = jax.jit(lambda b: model.apply({"params": params}, b))
  chunked = chunking.process_chunked(apply, x, plan, batch_size=1)
  padded = np.pad(x, [(plan.left, plan.right), (0, 0)])
  one_pass = np.asarray(apply(padded[None]))[0, plan.left:plan.left + len(x)]
  assert np.max(np.abs(one_pass)) > 0.05
  np.testing.assert_allclose(chunked, one_pass, atol=1e-4)


def test_long_context_gets_long_chunks_and_fewer_per_call():
  context_s = (SR // 2 + 10) / SR
  hop, batch = chunking.chunk_sizes((SR // 2, 10), SR, chunk_seconds=4.0, batch_size=8)
  assert hop == pytest.approx(context_s / chunking.CONTEXT_SHARE) and batch == 1
  # Within one call's budget (chunk_seconds x batch_size of audio, context included).
  hop, batch = chunking.chunk_sizes((2 * SR, 10), SR, chunk_seconds=8.0, batch_size=4)
  assert hop == pytest.approx(32.0 - (2 * SR + 10) / SR) and batch == 1
  assert chunking.chunk_sizes((SR // 100, SR // 100), SR, 8.0, 4) == (8.0, 4)


def test_hybrid_run_as_two_stages_equals_one_pass():
  config = _config("hybrid")
  model, params = _params(config)
  stages = [engines.Stage.create(c, p, SR, chunk_seconds=0.3, batch_size=1)
            for c, p in engines.model_stages(config, params)]
  assert len(stages) == 2 and stages[1].plan.left < stages[0].plan.left
  # The U-Net stage reads 3 full chunks (one compiled shape) of the take and the chain's tail.
  x = _signal((3 * stages[1].plan.hops[0] - stages[1].plan.right) / SR, seed=3)
  assert len(set(stages[1].plan.cover(len(x) + stages[1].plan.right))) == 1
  staged = engines.run_stages(stages, x)
  plan = chunking.ChunkPlan.create(config, 1.0, SR)
  padded = np.pad(x, [(plan.left, plan.right), (0, 0)])
  one_pass = np.asarray(jax.jit(model.apply)({"params": params}, padded[None]))[0]
  one_pass = one_pass[plan.left:plan.left + len(x)]
  assert staged.shape == x.shape and np.max(np.abs(one_pass)) > 0.05
  np.testing.assert_allclose(staged, one_pass, atol=1e-4)

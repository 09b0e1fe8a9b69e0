"""Validation scores whole files, as the evaluation report does: silence cannot pick "best"."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from experiments import base
from mixnet import input_pipeline, metrics, parallel, validation
from mixnet.data import prepare

SR = 16000
SEG = 4000


def _config():
  config = base.get_config("tiny")
  config.sample_rate = SR
  return config


def _vocal_like(seconds, seed):
  """Noise bursts shaped like phrases: `[time, 1]` float32 at SR."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * SR)) / SR
  envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t) ** 2
  return (0.2 * envelope * rng.standard_normal(len(t))).astype(np.float32)[:, None]


def _pieces(target_tc, pred_tc, start=0):
  """A file cut into eval windows: (start, target, prediction) triples, last one short."""
  return [(start + i, target_tc[i:i + SEG], pred_tc[i:i + SEG])
          for i in range(0, len(target_tc), SEG)]


def test_a_file_is_scored_whole_whatever_the_window_order():
  target = _vocal_like(1.1, 0)
  pred = 0.8 * target + 0.01 * _vocal_like(1.1, 1)
  pieces = _pieces(target, pred)
  scored = validation.score_files({7: pieces[::-1]}, _config())
  whole = metrics.compute(pred, target, SR)
  for name, value in whole.items():
    assert scored[name] == pytest.approx(value, rel=1e-6), name
  assert scored["val_loss"] == pytest.approx(whole["l1"] + whole["mr_stft"], rel=1e-6)


def test_a_near_silent_window_cannot_dominate_the_validation_loss():
  config = _config()
  target = _vocal_like(2.0, 2)
  pred = 0.8 * target + 0.01 * _vocal_like(2.0, 3)
  rng = np.random.default_rng(4)
  # A near-silent stretch of the mix (-80 dBFS) where the model leaves a little noise (-50 dBFS).
  quiet_target = (1e-4 * rng.standard_normal((SEG, 1))).astype(np.float32)
  quiet_pred = (3e-3 * rng.standard_normal((SEG, 1))).astype(np.float32)
  loud = _pieces(target, pred)
  quiet = (len(target), quiet_target, quiet_pred)
  without = validation.score_files({0: loud}, config)["val_loss"]
  with_quiet = validation.score_files({0: loud + [quiet]}, config)["val_loss"]
  # Scored whole, the quiet ninth of the file counts as a ninth of it: its log-magnitude error
  # (a real fault, which the evaluation report counts too) raises the loss, its spectral
  # convergence (divided by its own tiny energy) does not explode it.
  assert without < with_quiet < 2 * without
  # Window by window, the same quiet window decides the average.
  window_mean = np.mean([sum(metrics.compute(p, t, SR)[k] for k in ("l1", "mr_stft"))
                         for _, t, p in loud + [quiet]])
  assert window_mean > 5 * without


def test_files_whose_mix_is_digital_silence_are_not_scored():
  config = _config()
  target = _vocal_like(0.5, 5)
  silent = np.zeros_like(target)
  scored = validation.score_files({0: _pieces(target, target), 1: _pieces(silent, target)},
                                  config)
  assert scored["l1"] == 0.0
  assert validation.score_files({1: _pieces(silent, target)}, config) == {}


def test_validation_scores_a_long_memory_model_warmed_up(tmp_path):
  """With `data.context_seconds`, each window is run with the audio before it and scored after it.

  The stand-in model needs `warm` samples of input before its output is right (as a reverb needs
  its tail): scored cold, every window's start is wrong; warmed up, the file is exact.
  """
  warm = 1000
  for sub in ("raw", "mixed"):
    os.makedirs(tmp_path / sub)
  take = _vocal_like(1.3, 6)
  sf.write(str(tmp_path / "raw" / "a.wav"), take, SR, subtype="FLOAT")
  sf.write(str(tmp_path / "mixed" / "a.wav"), 0.5 * take, SR, subtype="FLOAT")
  prepare.prepare_dataset(str(tmp_path / "raw"), str(tmp_path / "mixed"), str(tmp_path / "d"),
                          sample_rate=SR, val_fraction=0.0, show_progress=False)
  mesh = parallel.make_mesh(jax.devices()[:1])

  @jax.jit
  def p_eval(params, raw_btc):
    del params
    return jnp.where(jnp.arange(raw_btc.shape[1])[None, :, None] >= warm, 0.5 * raw_btc, 0.0)

  scores = {}
  for context_seconds in (0.0, 0.125):
    config = _config()
    config.data.segment_seconds = SEG / SR
    config.data.context_seconds = context_seconds
    eval_ds = input_pipeline.create_eval_dataset(config.data, str(tmp_path / "d"), 2)
    scores[context_seconds], clips = validation.run_validation(p_eval, None, eval_ds, mesh,
                                                                config, 2)
    assert clips and all(c[0].shape == (SEG, 1) and c[2].shape == (SEG, 1) for c in clips)
  assert scores[0.125]["l1"] < 1e-7 and scores[0.125]["si_sdr"] > 60
  assert scores[0.0]["l1"] > 0.01

"""Evaluation report on a model trained on a simple style: the mix is the take at -10 dB."""

import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

from experiments import base
from experiments import chain as chain_config
from experiments import hybrid as hybrid_config
from mixnet import audio, checkpoints, metrics, models, report, train_lib
from mixnet.data import pairing, synthetic
from mixnet.diffdsp import filters, reverberation
from mixnet.models import chain, hybrid
from mixnet.report import style

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SR = 16000
GAIN = 10 ** (-10 / 20)


@pytest.fixture(scope="module")
def simple_style(tmp_path_factory, tiny_config):
  """(workdir, raw_dir, mixed_dir): 8 pairs whose mix is the take 10 dB down, and a model
  trained on them for 60 steps."""
  folder = tmp_path_factory.mktemp("simple_style")
  for sub in ("raw", "mixed"):
    os.makedirs(folder / sub)
  for i in range(8):
    raw = synthetic.synth_vocal(2.0, SR, seed=(7, i))
    audio.save(folder / "raw" / f"take{i}.wav", raw, SR)
    audio.save(folder / "mixed" / f"take{i}.wav", GAIN * raw, SR)
  config = tiny_config(num_steps=60, eval_every=60, checkpoint_every=60, log_every=20)
  config.data.raw_dir, config.data.mixed_dir = str(folder / "raw"), str(folder / "mixed")
  config.data.data_dir = ""
  config.data.val_fraction = 0.25
  config.opt.learning_rate = 3e-3
  config.opt.warmup_steps = 5
  workdir = str(folder / "workdir")
  train_lib.train_and_evaluate(config, workdir)
  return workdir, str(folder / "raw"), str(folder / "mixed")


def test_report_files_and_model_beats_identity(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  results = report.write_report(workdir, raw_dir, mixed_dir, str(tmp_path), preset="radio")
  # The training folders were given: only the held-out pairs are evaluated.
  assert results["split"] == "validation"
  names = [r["name"] for r in results["pairs"]]
  assert names and len(names) < 8
  avg = results["average"]
  assert avg["identity"]["mr_stft"] > 1.5 * avg["model"]["mr_stft"], avg
  assert avg["identity"]["loudness_error_lu"] == pytest.approx(10.0, abs=0.3)
  assert avg["model"]["loudness_error_lu"] < 5.0
  for system in report.SYSTEMS:
    assert set(avg[system]) == set(metrics.METRIC_NAMES)
    assert all(np.isfinite(v) for v in avg[system].values())
  for name in names:
    for system in ("model", "dsp"):
      y, sr = audio.load(tmp_path / "audio" / f"{name}.{system}.wav")
      assert sr == SR and y.shape[1] == 1
  assert os.path.getsize(tmp_path / f"spectrograms_{names[0]}.png") > 10_000
  assert os.path.getsize(tmp_path / "spectrum_difference.png") > 10_000
  with open(tmp_path / "metrics.json") as f:
    assert json.load(f)["average"] == avg
  text = (tmp_path / "report.md").read_text()
  assert "| mr_stft |" in text and "identity" in text and names[0] in text
  assert "used for training" not in text
  # A model without a learned chain has no style card anywhere.
  assert "style_card" not in results and "style card" not in text.lower()
  assert not [f for f in os.listdir(tmp_path) if f.startswith("style_")]


def test_split_all_evaluates_every_pair(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  results = report.write_report(workdir, raw_dir, mixed_dir, str(tmp_path), split="all",
                              num_figures=0)
  assert len(results["pairs"]) == 8 and results["split"] == "all"
  assert not any(f.startswith("spectrograms_") for f in os.listdir(tmp_path))


def _pairs(*names):
  return [pairing.Pair(n, f"/r/{n}.wav", f"/m/{n}.wav") for n in names]


def test_held_out_pairs_are_the_names_saved_with_the_checkpoint():
  pairs = _pairs("a", "B", "c")
  got, split, on_training = report.select_pairs(pairs, "auto", {"validation_names": ["b"]},
                                                0.1, same_folders=True)
  assert [p.name for p in got] == ["B"] and split == "validation" and not on_training
  # Other folders: every pair, unless the held-out ones are asked for.
  got, split, on_training = report.select_pairs(pairs, "auto", {"validation_names": ["b"]},
                                                0.1, same_folders=False)
  assert len(got) == 3 and split == "all" and not on_training
  # Saved without names: the split rule of the prepared data (at least one of 3 held out).
  got, split, _ = report.select_pairs(pairs, "validation", {}, 0.1, same_folders=False)
  assert len(got) == 1 and split == "validation"


def test_no_held_out_pair_evaluates_all_loudly_or_says_what_to_do(caplog):
  pairs = _pairs("a", "b")
  got, split, on_training = report.select_pairs(pairs, "auto", {"validation_names": []}, 0.1,
                                                same_folders=True)
  assert len(got) == 2 and split == "all" and on_training
  assert "No pair was held out" in caplog.text
  with pytest.raises(pairing.PairingError, match="none of the 2 pairs.*--split=all"):
    report.select_pairs(pairs, "validation", {"validation_names": []}, 0.1, same_folders=True)
  with pytest.raises(pairing.PairingError, match="split: must be one of"):
    report.select_pairs(pairs, "held_out", {}, 0.1, same_folders=True)


def test_report_on_training_pairs_says_so():
  avg = {s: dict.fromkeys(metrics.METRIC_NAMES, 1.0) for s in report.SYSTEMS}
  results = dict(checkpoint="w/best/3", raw_dir="r", split="all", preset="default",
                 average=avg, pairs=[], skipped=[])
  assert "used for training" not in report.format_summary(results)
  assert "used for training" in report.format_summary(dict(results, on_training_data=True))


def test_cli_writes_the_report_and_errors_are_one_line(simple_style, tmp_path):
  workdir, raw_dir, mixed_dir = simple_style
  held_out = checkpoints.load_meta(checkpoints.resolve(workdir))["data"]["validation_names"]
  assert 0 < len(held_out) < 8
  trained_only = tmp_path / "trained_only"  # two pairs the model was trained on
  trained = [f"take{i}" for i in range(8) if f"take{i}" not in held_out][:2]
  for sub, folder in (("raw", raw_dir), ("mixed", mixed_dir)):
    os.makedirs(trained_only / sub)
    for name in trained:
      shutil.copy(os.path.join(folder, name + ".wav"), trained_only / sub)
  base = [sys.executable, "-m", "mixnet.report", f"--checkpoint={workdir}",
          f"--raw_dir={trained_only / 'raw'}", f"--mixed_dir={trained_only / 'mixed'}"]
  bad = subprocess.run(base + [f"--out_dir={tmp_path / 'bad'}", "--split=validation"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2, bad.stderr
  (line,) = bad.stderr.strip().splitlines()
  assert line.startswith("error: ") and "--split=all" in line
  good = subprocess.run(base + [f"--out_dir={tmp_path / 'good'}", "--split=all"], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert good.returncode == 0, good.stderr
  assert "| mr_stft |" in good.stdout and (tmp_path / "good" / "report.md").exists()
  assert not [x for x in good.stderr.splitlines() if x.startswith(("I", "W"))], good.stderr



CHAIN_SR = 16000


@pytest.fixture(scope="module")
def chain_report(tmp_path_factory):
  """(config, module, params, results, out_dir): the report of a `chain` model at a random
  setting inside its ranges, on one short pair."""
  config = chain_config.get_config("tiny")
  config.sample_rate = CHAIN_SR
  config.model.chain.ir_seconds = 0.8
  module = models.build(config.model)
  params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 256, 1)))["params"]
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda p: p + jnp.asarray(rng.normal(0, 0.7, p.shape), jnp.float32),
                        params)
  folder = tmp_path_factory.mktemp("chain_report")
  run = checkpoints.RunCheckpoints(str(folder / "run"))
  run.save_best(1, params, checkpoints.make_meta(
      config, 1, 0.5, data={"train_mixed_lufs_median": -18.0}), 0.5)
  run.wait()
  run.close()
  for sub in ("raw", "mixed"):
    os.makedirs(folder / sub)
  raw = synthetic.synth_vocal(1.0, CHAIN_SR, seed=9)
  audio.save(folder / "raw" / "take.wav", raw, CHAIN_SR)
  audio.save(folder / "mixed" / "take.wav", GAIN * raw, CHAIN_SR)
  out_dir = folder / "report"
  results = report.write_report(str(folder / "run"), str(folder / "raw"), str(folder / "mixed"),
                                str(out_dir), num_figures=0)
  return config, module, params, results, out_dir


def test_chain_report_has_the_style_card_files_and_every_setting(chain_report):
  _, module, params, results, out_dir = chain_report
  card = results["style_card"]
  for figure in ("eq", "compressor", "reverb"):
    assert os.path.getsize(out_dir / f"style_{figure}.png") > 10_000
  with open(out_dir / "metrics.json") as f:
    assert json.load(f)["style_card"] == card
  text = (out_dir / "report.md").read_text()
  assert "## Style card" in text and "| mr_stft |" in text
  learned = chain.physical(module, params)
  table = chain.params_table(module)
  assert [(r["stage"], r["name"], r["unit"]) for r in card["settings"]] == [
      (p.stage, p.name, p.unit) for p in table]
  for p, row in zip(table, card["settings"], strict=True):
    want = np.atleast_1d(np.asarray(learned[p.stage][p.name], np.float64))
    np.testing.assert_allclose(np.atleast_1d(row["value"]), want, rtol=1e-6)
    cells = ", ".join(f"{v:.4g}" for v in want)  # per-band settings list every band
    assert f"| {p.stage} | {p.name} | {cells} | {p.unit} |" in text
  assert len(card["reverb"]["bands"]) == want_bands(module)
  comp = card["compressor"]
  assert comp["threshold_db"] == pytest.approx(float(learned["compressor"]["threshold_db"]))
  # Far below the knee the curve is the input plus makeup; far above, 1/ratio of the excess.
  in_db, out_db = np.array(comp["input_db"]), np.array(comp["output_db"])
  low = in_db < comp["threshold_db"] - comp["knee_db"]
  np.testing.assert_allclose(out_db[low], in_db[low] + comp["makeup_db"], atol=1e-4)
  high = in_db > comp["threshold_db"] + comp["knee_db"]
  np.testing.assert_allclose(
      out_db[high], comp["threshold_db"] + (in_db[high] - comp["threshold_db"]) / comp["ratio"]
      + comp["makeup_db"], atol=1e-3)


def want_bands(module):
  return len(reverberation.band_edges(module.sample_rate, module.reverb_edges_hz)) + 1


def test_eq_curve_is_the_chains_eq_response(chain_report):
  _, module, params, results, _ = chain_report
  card = results["style_card"]
  freqs, gain_db = np.array(card["eq"]["freq_hz"]), np.array(card["eq"]["gain_db"])
  assert freqs[0] == 20.0 and freqs[-1] < CHAIN_SR / 2 < freqs[-1] * 2 ** (1 / 24)
  # An FFT grid of CHAIN_SR points has a bin at every whole Hz.
  response = filters.eq_response(chain.physical(module, params)["eq"], CHAIN_SR, CHAIN_SR)
  for hz in (40, 160, 640, 2560, 5120):
    (i,) = np.flatnonzero(freqs == hz)
    assert gain_db[i] == pytest.approx(20 * np.log10(np.abs(response[hz])), abs=0.01), hz
  # The figure draws exactly these values.
  fig = style.figures(card)["eq"]
  (line,) = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == len(freqs)]
  np.testing.assert_array_equal(line.get_ydata(), gain_db)
  plt.close(fig)


def test_reverb_rt60s_are_the_learned_responses_per_band(chain_report):
  """Each band's measured RT60 is the Schroeder RT60 of the learned response's part in it,
  built here from its definition: the band's part of the learned noise times its exponential
  decay (and the tail's onset)."""
  _, module, params, results, _ = chain_report
  bands = results["style_card"]["reverb"]["bands"]
  learned = chain.physical(module, params)["reverb"]
  edges = reverberation.band_edges(CHAIN_SR, module.reverb_edges_hz)
  noise_ct = np.asarray(learned["noise"], np.float64)
  assert noise_ct.shape == (1, int(round(module.ir_seconds * CHAIN_SR)))
  taps = noise_ct.shape[1]
  masks = reverberation.band_masks(taps, CHAIN_SR, edges)
  noise_cbt = np.fft.irfft(np.fft.rfft(noise_ct)[:, None] * masks[None], taps)
  t = np.arange(taps) / CHAIN_SR
  for b, band in enumerate(bands):
    rt60 = float(learned["rt60_s"][b])
    assert band["rt60_s"] == pytest.approx(rt60, rel=1e-6)
    envelope_t = 10.0 ** (-3.0 * t / rt60)
    if "buildup_ms" in learned:  # the tail's onset
      envelope_t = envelope_t * (1.0 - np.exp(-t * 1e3 / float(learned["buildup_ms"])))
    ir_t = noise_cbt[0, b] * envelope_t
    assert band["measured_rt60_s"] == pytest.approx(
        reverberation.schroeder_rt60(ir_t, CHAIN_SR), rel=0.05), band


def test_hybrid_style_card_is_its_chain_and_time_unet_has_none():
  config = hybrid_config.get_config("tiny")
  config.sample_rate = CHAIN_SR
  config.model.hybrid.chain.ir_seconds = 0.5
  module = hybrid.chain_of(models.build(config.model))
  # The card reads only the chain's parameters (the U-Net's are left out: it compiles slowly).
  params = {"chain": {p.key: p.raw_init() + 0.5 for p in chain.params_table(module)}}
  params["chain"][chain.NOISE_KEY] = reverberation.white_noise(int(0.5 * CHAIN_SR), 1, 3)
  card = style.compute(config.model, params)
  threshold = float(chain.physical(module, params["chain"])["compressor"]["threshold_db"])
  assert card["compressor"]["threshold_db"] == pytest.approx(threshold)
  assert len(card["settings"]) == len(chain.params_table(module))
  assert "U-Net residual" in style.format_markdown(card)
  assert style.compute(base.get_config("tiny").model, {}) is None

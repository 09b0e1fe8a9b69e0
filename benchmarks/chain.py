"""The learned vocal chain: parameter recovery, and chain vs hybrid vs time_unet on one budget.

Run:
  .venv/bin/python benchmarks/chain.py --task=recovery --steps=300
  .venv/bin/python benchmarks/chain.py --task=compare --steps=300
  .venv/bin/python benchmarks/chain.py --task=attribution --steps=1200 --pairs=16 --seconds=8

recovery: pairs mixed by `STYLE`, a `mixnet.dsp` preset that is none of the built-in ones (EQ,
  4:1 compressor, saturation, 1 s Freeverb reverb, loudness, limiter); the `chain` model is
  fitted with Adam on random crops and its settings are compared with the preset's: EQ curve
  RMS error over 100 Hz-10 kHz (as is, and without its mean offset), compressor threshold and
  ratio, reverb RT60 (Schroeder T20 of both responses, broadband and per octave band), and the
  output loudness on held-out takes: the model's own (its learned output gain is one constant,
  while the preset normalises every take), and as `process_file` delivers it (normalised to
  the training mixes' median loudness, as `mixnet.engines.ModelEngine` does).
compare: demo-style pairs (the `warm` preset, as `make demo` uses); `chain` (with and without
  the envelope loss), `hybrid` trained jointly, `hybrid` trained chain-first (half the steps on
  the chain alone, then the rest on the whole model) and the tiny `time_unet`, each for the
  same number of steps on the same crops with its config's loss; MR-STFT (metrics.mr_stft) on
  whole held-out takes, beside the identity.
attribution: which stage costs the learned chain its score. `chain` is fitted to pairs of
  `benchmarks/quality.py`'s style and exported as a preset (`chain.to_preset`); held-out takes
  are then mixed by the numpy chain with one stage swapped at a time, the true preset with that
  stage learned and the learned preset with that stage true, and scored by MR-STFT against
  the true mix (0 for the true preset). The pairs fix the EQ's shape, not its level (an EQ g dB
  louder with the threshold g dB higher and the drive g dB lower mixes the same), so the EQ is
  also swapped level-matched: moved along that direction by the RMS level difference the two
  EQs give the held-out takes, which leaves the cost of its shape alone.
Every model gets its input brought to -20 LUFS per whole take (the chain's gain staging).
The header shows the load average: figures depend on what else runs on the CPU.
"""

import argparse
import dataclasses
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import quality  # benchmarks/quality.py, beside this file
import scipy.signal

from experiments import base
from experiments import chain as chain_config
from experiments import hybrid as hybrid_config
from mixnet import audio, dsp, losses, metrics, models
from mixnet.data import synthetic
from mixnet.diffdsp import filters, gain, reverberation
from mixnet.models import chain

STYLE = dsp.Preset(
    name="benchmark_style",
    eq=(dsp.EqBand("highpass", 120.0), dsp.EqBand("low_shelf", 250.0, -3.0),
        dsp.EqBand("peaking", 800.0, -2.5, 1.2), dsp.EqBand("peaking", 3500.0, 4.0, 1.0),
        dsp.EqBand("high_shelf", 9000.0, 3.0)),
    compressor=dsp.CompressorParams(threshold_db=-24.0, ratio=4.0, knee_db=6.0, attack_ms=8.0,
                                    release_ms=120.0),
    saturation=dsp.SaturationParams(drive_db=8.0, mix=0.25),
    reverb=dsp.ReverbParams(rt60_s=1.0, predelay_ms=25.0, damping=0.3, mix=0.15),
    output_lufs=-16.0)
OCTAVES = ((250, 500), (500, 1000), (1000, 2000), (2000, 4000))


def make_pairs(count, seconds, sample_rate, preset, seed):
  """(staged raw, mix) lists of float32 `[time, 1]`: the raw take at -20 LUFS, its `preset` mix."""
  raws, mixes = [], []
  for i in range(count):
    raw = synthetic.synth_vocal(seconds, sample_rate, seed=(seed, i))
    staged = raw * np.float32(10 ** (gain.staging_gain_db(raw, sample_rate, -20.0) / 20))
    raws.append(staged)
    mixes.append(dsp.process(raw, sample_rate, preset))
  return raws, mixes


def _crops(raws, mixes, batch, length, warmup, rng):
  """Input crops of `warmup + length` samples and the mixes of their last `length` samples."""
  x, y = [], []
  for _ in range(batch):
    i = rng.integers(len(raws))
    start = rng.integers(0, raws[i].shape[0] - length - warmup)
    x.append(raws[i][start:start + warmup + length])
    y.append(mixes[i][start + warmup:start + warmup + length])
  return jnp.asarray(np.stack(x)), jnp.asarray(np.stack(y))


def fit(model, params, raws, mixes, steps, lr, crop_s, sample_rate, seed=0, batch=4, warmup_s=1.0,
        loss_config=None):
  """Adam on L1 + MR-STFT over random crops; returns (params, final loss, seconds).

  Each input crop starts `warmup_s` earlier than the part the loss scores, so the reverb tail and
  compressor state of the scored part come from audio the model has seen: a mix crop's tail
  from before the crop would otherwise teach the reverb to be longer than it is.
  """
  warmup = int(warmup_s * sample_rate)
  loss_config = loss_config or chain_config.get_config().loss
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      pred = model.apply({"params": p}, x)[:, warmup:]
      return losses.combined_loss(pred, y, loss_config)[0]
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  opt_state = tx.init(params)
  rng = np.random.default_rng(seed)
  start = time.time()
  loss = None
  for _ in range(steps):
    x, y = _crops(raws, mixes, batch, int(crop_s * sample_rate), warmup, rng)
    params, opt_state, loss = step(params, opt_state, x, y)
  return params, float(loss), time.time() - start


def evaluate(model, params, raws, mixes):
  """Mean MR-STFT of whole held-out takes (one pass each)."""
  apply = jax.jit(lambda x: model.apply({"params": params}, x))
  preds = [np.asarray(apply(jnp.asarray(raw[None])))[0] for raw in raws]
  return float(np.mean([metrics.mr_stft(p, m) for p, m in zip(preds, mixes, strict=True)]))


def _init(model, raws):
  return models.init_variables(model, jax.random.key(0),
                               jnp.asarray(raws[0][None, :4096]))["params"]


def _model(module, sample_rate, preset="tiny"):
  config = module.get_config(preset)
  config.sample_rate = sample_rate
  return config, models.build(config.model)


def _eq_db(sample_rate, freqs, bands=None, eq=None):
  """dB response at `freqs` of numpy `EqBand`s `bands`, or of the jnp chain's EQ settings `eq`."""
  if bands is not None:
    sos = np.concatenate([dsp.filters.band_sos(sample_rate, b) for b in bands])
    return 20 * np.log10(np.abs(scipy.signal.sosfreqz(sos, freqs, fs=sample_rate)[1]))
  size = 1 << 16
  response = np.abs(np.asarray(filters.eq_response(eq, sample_rate, size)))
  return 20 * np.log10(np.interp(freqs, np.arange(size // 2 + 1) * sample_rate / size, response))


def _shape_rms_db(error_db):
  """RMS of an EQ curve's error with its mean offset removed: the part the pairs determine."""
  return float(np.sqrt(np.mean((error_db - error_db.mean()) ** 2)))


def _rt60s(ir_t, sample_rate):
  def band(lo, hi):
    sos = scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
    return reverberation.schroeder_rt60(scipy.signal.sosfilt(sos, ir_t), sample_rate)
  return [reverberation.schroeder_rt60(ir_t, sample_rate)] + [band(*b) for b in OCTAVES]


def recovery(args):
  """Fits `chain` to `STYLE` pairs and prints the recovered settings beside the true ones."""
  sr = args.sample_rate
  raws, mixes = make_pairs(args.pairs, args.seconds, sr, STYLE, seed=11)
  held_raws, held_mixes = make_pairs(4, args.seconds, sr, STYLE, seed=12)
  _, model = _model(chain_config, sr)
  params, loss, seconds = fit(model, _init(model, raws), raws, mixes, args.steps, args.lr,
                              args.crop_seconds, sr, warmup_s=args.warmup_seconds)
  learned = jax.tree.map(np.asarray, chain.physical(model, params))
  freqs = np.geomspace(100, 10000, 200)
  eq_error = _eq_db(sr, freqs, eq=learned["eq"]) - _eq_db(sr, freqs, bands=STYLE.eq)
  comp = learned["compressor"]
  true_rt = _rt60s(dsp.reverberation.impulse_response(sr, 1.0, 0.3, 25.0)[:, 0], sr)
  learned_rt = _rt60s(np.asarray(chain.impulse_response(model, learned["reverb"]))[:, 0], sr)
  apply = jax.jit(lambda x: model.apply({"params": params}, x))
  outs = [np.asarray(apply(jnp.asarray(r[None])))[0] for r in held_raws]
  lu = [dsp.integrated_loudness(o, sr) - dsp.integrated_loudness(m, sr)
        for o, m in zip(outs, held_mixes, strict=True)]
  # As `process_file` delivers it: brought to the training mixes' median loudness.
  delivery_lufs = float(np.median([dsp.integrated_loudness(m, sr) for m in mixes]))
  delivered_lu = [dsp.integrated_loudness(dsp.normalize_loudness(o, sr, delivery_lufs), sr)
                  - dsp.integrated_loudness(m, sr) for o, m in zip(outs, held_mixes, strict=True)]
  identity = np.mean([metrics.mr_stft(r, m) for r, m in zip(held_raws, held_mixes, strict=True)])
  print(f"fit: {args.steps} steps in {seconds:.0f} s, final loss {loss:.3f}; held-out MR-STFT "
        f"{evaluate(model, params, held_raws, held_mixes):.3f} (identity {identity:.3f})")
  rows = [
      ("EQ RMS error 100 Hz-10 kHz (dB)", "0", f"{np.sqrt(np.mean(eq_error ** 2)):.2f}", "1.5"),
      ("  same, mean offset removed (dB)", "0", f"{_shape_rms_db(eq_error):.2f}", "-"),
      ("compressor threshold (dBFS)", "-24", f"{float(comp['threshold_db']):.1f}", "+-3"),
      ("  same, less the EQ's mean offset (dBFS)", "-24",
       f"{float(comp['threshold_db']) - eq_error.mean():.1f}", "+-3"),
      ("compressor ratio", "4", f"{float(comp['ratio']):.2f}", "+-30%"),
      ("RT60 broadband (s)", f"{true_rt[0]:.2f}", f"{learned_rt[0]:.2f}", "+-20%"),
  ]
  rows += [(f"RT60 {lo}-{hi} Hz (s)", f"{t:.2f}", f"{v:.2f}", "+-20%")
           for (lo, hi), t, v in zip(OCTAVES, true_rt[1:], learned_rt[1:], strict=True)]
  mix = STYLE.reverb.mix
  rows.append(("reverb send, wet re dry (dB)", f"{20 * np.log10(mix / (1 - mix)):.1f}",
               f"{float(learned['reverb']['send_db']):.1f}", "-"))
  rows.append(("reverb build-up (ms)", "-", f"{float(learned['reverb']['buildup_ms']):.0f}", "-"))
  rows.append(("output loudness error, held out (LU)", "0", f"{np.mean(np.abs(lu)):.2f}", "0.5"))
  rows.append(("  same, as process_file delivers it (LU)", "0",
               f"{np.mean(np.abs(delivered_lu)):.2f}", "0.5"))
  print(f"| {'setting':<38} | true | learned | target |\n|---|---|---|---|")
  for row in rows:
    print(f"| {row[0]:<38} | {row[1]} | {row[2]} | {row[3]} |")


def compare(args):
  """Trains each model for `args.steps` on demo-style pairs and prints held-out MR-STFT."""
  sr = args.sample_rate
  raws, mixes = make_pairs(args.pairs, args.seconds, sr, "warm", seed=21)
  held_raws, held_mixes = make_pairs(4, args.seconds, sr, "warm", seed=22)
  identity = np.mean([metrics.mr_stft(r, m) for r, m in zip(held_raws, held_mixes, strict=True)])
  print(f"| model | steps | train s | held-out MR-STFT |\n|---|---|---|---|\n"
        f"| identity | - | - | {identity:.3f} |")
  (chain_cfg, chain_model), (hybrid_cfg, hybrid_model) = (_model(chain_config, sr),
                                                          _model(hybrid_config, sr))
  unet_cfg, unet_model = _model(base, sr)
  no_envelope = chain_cfg.loss.copy_and_resolve_references()
  no_envelope.envelope_weight = 0.0
  runs = [("chain", chain_model, 1e-2, chain_cfg.loss),
          ("chain, no envelope loss", chain_model, 1e-2, no_envelope),
          ("hybrid (joint)", hybrid_model, 3e-3, hybrid_cfg.loss),
          ("time_unet tiny", unet_model, 1e-3, unet_cfg.loss)]
  for name, model, lr, loss_config in runs:
    params, _, seconds = fit(model, _init(model, raws), raws, mixes, args.steps, lr,
                             args.crop_seconds, sr, warmup_s=args.warmup_seconds,
                             loss_config=loss_config)
    print(f"| {name} | {args.steps} | {seconds:.0f} | "
          f"{evaluate(model, params, held_raws, held_mixes):.3f} |", flush=True)
  half = args.steps // 2
  chain_params, _, first = fit(chain_model, _init(chain_model, raws), raws, mixes, half, 1e-2,
                               args.crop_seconds, sr, warmup_s=args.warmup_seconds,
                               loss_config=chain_cfg.loss)
  params = dict(_init(hybrid_model, raws), chain=chain_params)
  params, _, second = fit(hybrid_model, params, raws, mixes, args.steps - half, 3e-3,
                          args.crop_seconds, sr, seed=1, warmup_s=args.warmup_seconds,
                          loss_config=hybrid_cfg.loss)
  print(f"| hybrid (chain first) | {half} + {args.steps - half} | {first + second:.0f} | "
        f"{evaluate(hybrid_model, params, held_raws, held_mixes):.3f} |")


def attribution(args):
  """Fits `chain` to the quality style; scores the numpy chain with stages swapped one at a time."""
  sr, true = args.sample_rate, quality.STYLE
  raws, mixes = make_pairs(args.pairs, args.seconds, sr, true, seed=31)
  held_raws, held_mixes = make_pairs(6, args.seconds, sr, true, seed=32)
  _, model = _model(chain_config, sr)
  params, _, seconds = fit(model, _init(model, raws), raws, mixes, args.steps, args.lr,
                           args.crop_seconds, sr, warmup_s=args.warmup_seconds)
  print(f"fit: {args.steps} steps in {seconds:.0f} s; the model's held-out MR-STFT "
        f"{evaluate(model, params, held_raws, held_mixes):.3f}")
  with tempfile.TemporaryDirectory() as folder:
    ir_file = os.path.join(folder, "learned_ir.wav")
    learned, ir_tc = chain.to_preset(model, params, "learned", ir_file, true.output_lufs)
    audio.save(ir_file, ir_tc, sr)

    def score(preset):
      return np.mean([metrics.mr_stft(dsp.process(r, sr, preset), m)
                      for r, m in zip(held_raws, held_mixes, strict=True)])

    stages = {name: {name: getattr(learned, name)} for name in ("eq", "compressor", "saturation")}
    stages["reverb"] = {"reverb": None, "convolution_reverb": learned.convolution_reverb}
    true_stages = {name: {k: getattr(true, k) for k in swap} for name, swap in stages.items()}
    offset = _eq_offset_db(learned.eq, true.eq, held_raws, sr)
    print(f"| stage | true preset, this stage learned | learned preset, this stage true |\n"
          f"|---|---|---|\n| (none) | 0 | {score(learned):.3f} |")
    for name, swap in stages.items():
      print(f"| {name} | {score(dataclasses.replace(true, **swap)):.3f} | "
            f"{score(dataclasses.replace(learned, **true_stages[name])):.3f} |", flush=True)
    print(f"| eq, level-matched ({offset:+.1f} dB) | "
          f"{score(_along_gauge(dataclasses.replace(true, eq=learned.eq), offset)):.3f} | "
          f"{score(_along_gauge(dataclasses.replace(learned, eq=true.eq), -offset)):.3f} |")
  freqs = np.geomspace(100, 10000, 200)
  error = _eq_db(sr, freqs, bands=learned.eq) - _eq_db(sr, freqs, bands=true.eq)
  print(f"learned EQ vs true, 100 Hz-10 kHz: mean {error.mean():+.2f} dB, shape RMS "
        f"{_shape_rms_db(error):.2f} dB")


def _eq_offset_db(eq, reference_eq, raws, sample_rate):
  """How much louder (dB, RMS over `raws`) the takes come out of `eq` than of `reference_eq`."""
  def level(bands):
    return np.mean([10 * np.log10(np.mean(dsp.filters.equalize(r, sample_rate, bands) ** 2))
                    for r in raws])
  return float(level(eq) - level(reference_eq))


def _along_gauge(preset, offset_db):
  """`preset` with the compressor threshold `offset_db` higher and the drive `offset_db` lower.

  With its EQ `offset_db` louder, such a preset mixes as the original does: the compressor and
  the shaper see the same level relative to their settings, and the output stage normalises
  the loudness. So a swapped EQ moved along this direction costs only its shape.
  """
  return dataclasses.replace(
      preset,
      compressor=dataclasses.replace(preset.compressor,
                                     threshold_db=preset.compressor.threshold_db + offset_db),
      saturation=dataclasses.replace(preset.saturation,
                                     drive_db=preset.saturation.drive_db - offset_db))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--task", choices=("recovery", "compare", "attribution"), default="recovery")
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--lr", type=float, default=2e-2,
                      help="Adam learning rate (recovery, attribution).")
  parser.add_argument("--pairs", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=4.0)
  parser.add_argument("--crop_seconds", type=float, default=1.5, help="Scored part of a crop.")
  parser.add_argument("--warmup_seconds", type=float, default=1.0,
                      help="Input before the scored part of each crop.")
  parser.add_argument("--sample_rate", type=int, default=44100)
  args = parser.parse_args()
  print(f"# benchmarks/chain.py --task={args.task}, {args.sample_rate} Hz, load average "
        f"{os.getloadavg()[0]:.1f}")
  {"recovery": recovery, "compare": compare, "attribution": attribution}[args.task](args)


if __name__ == "__main__":
  main()

"""Evaluation report: does the model sound like the user's own mixes?

The library behind `python -m mixnet.report` (its command line is `__main__.py`). Every pair of
R/M is aligned exactly as in training (`mixnet.data.analysis.analyze_pair`: resampled to the
model's rate, offset and polarity undone) and the raw take is processed by three systems: the
model, the raw input itself ("identity": what doing nothing scores) and the DSP fallback chain
with `preset`. Each output is compared with the user's mix by `mixnet.metrics` (the same
functions training evaluation logs).

Which pairs (`split`): "validation" the pairs training held out, "all" every pair, "auto"
(default) the held-out pairs when R/M are the folders the checkpoint was trained on, else all.
The held-out pairs are the names saved with the checkpoint (`validation_names` of the prepared
data); a checkpoint saved without them gets the split rule of `tfds_builder.assign_splits`
applied to R/M. When "auto" finds no held-out pair it evaluates every pair and says loudly, in a
warning and in the report, that these are pairs the model was trained on.

Writes into O:
  audio/NAME.model.wav, audio/NAME.dsp.wav   the processed takes (the model's rate).
  metrics.json   per-pair and average metrics of every system, what was skipped and why.
  report.md      the averages as a table (model vs baselines), then per-pair rows.
  spectrograms_NAME.png (first `num_figures` pairs)   raw / target / model.
  spectrum_difference.png   each system's average spectrum minus the target's, in dB.
For a model with a learned vocal chain (`chain`, `hybrid`) also its style card
(`mixnet.report.style`): metrics.json gets "style_card", report.md a "Style card" section at
the end, and style_eq.png, style_compressor.png, style_reverb.png are written. A model
without a chain gets none of these.
"""

import os

import ml_collections
import numpy as np
from absl import logging

from mixnet import audio, dsp, fileio, infer, metrics, model_file, plots
from mixnet.data import analysis, pairing, tfds_builder
from mixnet.report import style

SYSTEMS = ("model", "identity", "dsp")
SPLITS = ("auto", "all", "validation")
_TRAINING_DATA_NOTE = ("**These pairs were used for training** (the run held none out): the "
                       "scores say how well the model fits them, not how it does on new takes.")


def _held_out(pairs, trained_on, val_fraction):
  """The pairs training held out: by the saved names, else by the split rule."""
  if "validation_names" in trained_on:
    names = {n.lower() for n in trained_on["validation_names"]}
  else:
    splits = tfds_builder.assign_splits([p.name for p in pairs], val_fraction)
    names = {n.lower() for n, s in splits.items() if s == "validation"}
  return [p for p in pairs if p.name.lower() in names]


def select_pairs(pairs, split, trained_on, val_fraction, same_folders):
  """Returns (pairs to evaluate, split used, whether they are training pairs).

  Raises:
    pairing.PairingError: split="validation" but no pair was held out.
  """
  if split not in SPLITS:
    raise pairing.PairingError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
  if split == "all" or (split == "auto" and not same_folders):
    return pairs, "all", same_folders
  held_out = _held_out(pairs, trained_on, val_fraction)
  if held_out:
    return held_out, "validation", False
  if split == "validation":
    raise pairing.PairingError(
        f"{os.path.dirname(pairs[0].raw_path)}: none of the {len(pairs)} pairs here was held "
        "out from training (split=validation); use --split=all to evaluate them all, knowing "
        "that the model was trained on them")
  logging.warning("No pair was held out from training: evaluating all %d pairs, which the model "
                  "was trained on (the scores say how well it fits them, not how it does on new "
                  "takes)", len(pairs))
  return pairs, "all", True


def write_report(checkpoint, raw_dir, mixed_dir, out_dir, preset="default", split="auto",
                 num_figures=3, processor=None):
  """Processes and scores every selected pair; writes the files listed in the module docstring.

  Args:
    checkpoint: training workdir or checkpoint folder (strictly loaded: evaluating the DSP
      fallback as "the model" would be misleading).
    raw_dir, mixed_dir: folders of pairs (matched as in training).
    out_dir: created if missing.
    preset: DSP preset of the "dsp" baseline.
    split: "auto", "all" or "validation" (see the module docstring).
    num_figures: pairs that get a spectrogram figure.
    processor: an `infer.AudioProcessor` to reuse (else loaded from `checkpoint`).

  Returns:
    The dict written to metrics.json.

  Raises:
    pairing.PairingError: the folders cannot be paired, no pair is selected, or none aligns.
  """
  processor = processor or infer.AudioProcessor(use_ml_model=True, model_path=checkpoint,
                                                strict=True)
  data = ml_collections.ConfigDict(processor.meta["config"]).data
  trained_on = processor.meta.get("data", {})
  same = all(trained_on.get(k) and os.path.realpath(d) == os.path.realpath(trained_on[k])
             for k, d in (("raw_dir", raw_dir), ("mixed_dir", mixed_dir)))
  found = pairing.find_pairs(raw_dir, mixed_dir)
  pairs, split, on_training_data = select_pairs(found.pairs, split, trained_on,
                                                data.val_fraction, same)
  align_config = tfds_builder.make_config(
      raw_dir, mixed_dir, sample_rate=processor.sample_rate, channels=processor.channels,
      max_shift_ms=data.max_shift_ms, val_fraction=data.val_fraction,
      min_confidence=data.min_confidence, keep_low_confidence=data.keep_low_confidence,
      max_tail_s=data.get("max_tail_s", analysis.MAX_TAIL_S),
      keep_length_mismatch=data.get("keep_length_mismatch", False))
  os.makedirs(os.path.join(out_dir, "audio"), exist_ok=True)
  rows, skipped, spectra = _score_pairs(pairs, align_config, processor, preset, out_dir,
                                        num_figures)
  if not rows:
    raise pairing.PairingError(
        f"{raw_dir}: none of the {len(pairs)} pairs could be aligned: "
        + "; ".join(f"{s['name']}: {s['reason']}" for s in skipped))
  results = {
      "checkpoint": processor.model_path, "raw_dir": raw_dir, "mixed_dir": mixed_dir,
      "split": split, "on_training_data": on_training_data, "preset": preset,
      "sample_rate": processor.sample_rate,
      "average": {s: metrics.average([r[s] for r in rows]) for s in SYSTEMS},
      "pairs": rows, "skipped": skipped,
  }
  card = _write_style_card(processor, out_dir)
  if card is not None:
    results["style_card"] = card
  _spectrum_figure(spectra, processor.sample_rate,
                   os.path.join(out_dir, "spectrum_difference.png"))
  fileio.write_json(os.path.join(out_dir, "metrics.json"), results)
  fileio.write_text(os.path.join(out_dir, "report.md"), format_markdown(results))
  return results


def _write_style_card(processor, out_dir):
  """The model's style card (`style.compute`) with its figures written, or None (no chain)."""
  if processor.style is None:
    return None
  # The engine keeps only the compiled model; the card needs the parameters themselves.
  params, meta, _ = model_file.load_model(processor.model_path)
  card = style.compute(ml_collections.ConfigDict(meta["config"]).model, params)
  for name, fig in style.figures(card).items():
    plots.save_figure(fig, os.path.join(out_dir, style.figure_name(name)))
  return card


def _score_pairs(pairs, align_config, processor, preset, out_dir, num_figures):
  """Runs the three systems on each pair; returns (metric rows, skipped pairs, spectra)."""
  sr = align_config.sample_rate
  rows, skipped, spectra = [], [], {s: [] for s in SYSTEMS + ("target",)}
  for pair in pairs:
    row = analysis.analyze_pair(pair, align_config)
    if not row["kept"]:
      skipped.append({"name": pair.name, "reason": row["reason"]})
      continue
    raw, target = analysis.load_aligned(pair, row, align_config)
    outputs = {"model": processor.process_vocal(raw, sample_rate=sr), "identity": raw,
               "dsp": dsp.process(raw, sr, preset)}
    for system in ("model", "dsp"):
      audio.save(os.path.join(out_dir, "audio", f"{pair.name}.{system}.wav"), outputs[system], sr)
    rows.append({"name": pair.name, "offset_ms": row["offset_ms"],
                 **{s: metrics.compute(outputs[s], target, sr) for s in SYSTEMS}})
    for s, x in list(outputs.items()) + [("target", target)]:
      spectra[s].append(_average_spectrum_db(x))
    if len(rows) <= num_figures:
      plots.save_figure(plots.spectrogram_figure(
          [("raw", raw), ("target (your mix)", target), ("model", outputs["model"])], sr),
          os.path.join(out_dir, f"spectrograms_{pair.name}.png"))
  return rows, skipped, spectra


_FFT = 4096


def _average_spectrum_db(audio_tc):
  """Average power spectrum (dB) over Hann frames, channels averaged: `[_FFT // 2 + 1]`."""
  mag_ft = metrics.magnitude_frames(audio_tc, _FFT, _FFT // 2)
  return 10 * np.log10(np.mean(mag_ft ** 2, axis=0) + 1e-12)


def _spectrum_figure(spectra, sample_rate, path):
  import matplotlib.pyplot as plt

  freqs = np.fft.rfftfreq(_FFT, 1 / sample_rate)
  target = np.mean(spectra["target"], axis=0)
  fig, ax = plt.subplots(figsize=(8, 3.5))
  for system in SYSTEMS:
    ax.semilogx(freqs[1:], (np.mean(spectra[system], axis=0) - target)[1:], label=system)
  ax.axhline(0, color="k", lw=0.5)
  ax.set(xlabel="Hz", ylabel="dB vs your mix", title="Average spectrum difference",
         xlim=(20, sample_rate / 2))
  ax.legend()
  plots.save_figure(fig, path)


_LOWER_IS_BETTER = {"mr_stft": True, "l1": True, "si_sdr": False, "loudness_error_lu": True,
                    "centroid_error_hz": True, "crest_error_db": True}


def format_summary(results):
  """Markdown: the title, what was evaluated, and the averages per system (best in bold)."""
  avg = results["average"]
  lines = [
      "# mixnet evaluation", "",
      f"Checkpoint `{results['checkpoint']}`; {len(results['pairs'])} pairs "
      f"({results['split']}) from `{results['raw_dir']}`; DSP baseline preset "
      f"`{results['preset']}`. Lower is better except SI-SDR.", ""]
  if results.get("on_training_data"):
    lines += [_TRAINING_DATA_NOTE, ""]
  lines += ["| metric | model | identity (raw) | DSP |", "|---|---|---|---|"]
  for name in metrics.METRIC_NAMES:
    values = [avg[s][name] for s in SYSTEMS]
    best = (min if _LOWER_IS_BETTER[name] else max)(values)
    cells = [f"**{v:.4g}**" if v == best else f"{v:.4g}" for v in values]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def format_markdown(results):
  """The whole report.md: `format_summary`, each pair's MR-STFT and loudness error, then the
  style card if the model has a learned chain."""
  lines = [format_summary(results),
           "| pair | offset ms | MR-STFT model / identity / DSP | loudness error LU model |",
           "|---|---|---|---|"]
  for r in results["pairs"]:
    lines.append(f"| {r['name']} | {r['offset_ms']:.2f} | "
                 + " / ".join(f"{r[s]['mr_stft']:.3f}" for s in SYSTEMS)
                 + f" | {r['model']['loudness_error_lu']:.2f} |")
  for s in results["skipped"]:
    lines.append(f"\nSkipped {s['name']}: {s['reason']}")
  if "style_card" in results:
    lines.append("\n" + style.format_markdown(results["style_card"]))
  return "\n".join(lines).rstrip("\n") + "\n"

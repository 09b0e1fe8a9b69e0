r"""Evaluation report: does the model sound like the user's own mixes?

  python -m mixnet.evaluate --checkpoint=WORKDIR --raw_dir=R --mixed_dir=M --out_dir=O \
      [--preset=default] [--split=auto]

Every pair of R/M is aligned exactly as in training (`mixnet.data.tfds_builder.analyze_pair`:
resampled to the model's rate, offset and polarity undone) and the raw take is processed by three
systems: the model, the raw input itself ("identity": what doing nothing scores) and the DSP
fallback chain with `preset`. Each output is compared with the user's mix by `mixnet.metrics`
(the same functions training evaluation logs). `split`: "validation" evaluates only the pairs
that training held out (by the same name hash), "all" every pair, "auto" (default) the held-out
pairs when R/M are the folders the checkpoint was trained on, else all.

Writes into O:
  audio/NAME.model.wav, audio/NAME.dsp.wav   the processed takes (the model's rate).
  metrics.json   per-pair and average metrics of every system, what was skipped and why.
  report.md      the averages as a table (model vs baselines), then per-pair rows.
  spectrograms_NAME.png (first `num_figures` pairs)   raw / target / model.
  spectrum_difference.png   each system's average spectrum minus the target's, in dB.
"""

import os

import numpy as np

from mixnet import audio, dsp, fileio, infer, metrics, plots
from mixnet.data import pairing, tfds_builder

SYSTEMS = ("model", "identity", "dsp")


def _select(pairs, split, val_fraction, same_folders):
  if split == "auto":
    split = "validation" if same_folders else "all"
  if split == "all":
    return pairs, split
  if split != "validation":
    raise ValueError(f"split must be auto, all or validation, got {split!r}")
  return [p for p in pairs if tfds_builder.split_of(p.name, val_fraction) == "validation"], split


def evaluate(checkpoint, raw_dir, mixed_dir, out_dir, preset="default", split="auto",
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
  """
  processor = processor or infer.AudioProcessor(checkpoint, strict=True)
  sr, channels = processor.sample_rate, processor.channels
  data = processor.config.data
  trained_on = processor.meta.get("data", {})
  same = all(trained_on.get(k) and os.path.realpath(d) == os.path.realpath(trained_on[k])
             for k, d in (("raw_dir", raw_dir), ("mixed_dir", mixed_dir)))
  found = pairing.find_pairs(raw_dir, mixed_dir)
  pairs, split = _select(found.pairs, split, data.val_fraction, same)
  if not pairs:
    raise pairing.PairingError(f"no pairs to evaluate in {raw_dir} / {mixed_dir} (split={split})")
  align_config = tfds_builder.make_config(
      raw_dir, mixed_dir, sample_rate=sr, channels=channels, max_shift_ms=data.max_shift_ms,
      val_fraction=data.val_fraction, min_confidence=data.min_confidence,
      keep_low_confidence=data.keep_low_confidence)
  os.makedirs(os.path.join(out_dir, "audio"), exist_ok=True)

  rows, skipped, spectra = [], [], {s: [] for s in SYSTEMS + ("target",)}
  for pair in pairs:
    row = tfds_builder.analyze_pair(pair, align_config)
    if not row["kept"]:
      skipped.append({"name": pair.name, "reason": row["reason"]})
      continue
    raw, target = tfds_builder.load_aligned(pair, row, align_config)
    outputs = {"model": processor.process_vocal(raw, sr), "identity": raw,
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
  if not rows:
    raise pairing.PairingError(
        f"none of the {len(pairs)} pairs could be aligned: "
        + "; ".join(f"{s['name']}: {s['reason']}" for s in skipped))

  results = {
      "checkpoint": processor.checkpoint, "raw_dir": raw_dir, "mixed_dir": mixed_dir,
      "split": split, "preset": preset, "sample_rate": sr,
      "average": {s: metrics.average([r[s] for r in rows]) for s in SYSTEMS},
      "pairs": rows, "skipped": skipped,
  }
  _spectrum_figure(spectra, sr, os.path.join(out_dir, "spectrum_difference.png"))
  fileio.write_json(os.path.join(out_dir, "metrics.json"), results)
  fileio.write_text(os.path.join(out_dir, "report.md"), format_report(results))
  return results


_FFT = 4096


def _average_spectrum_db(audio_tc):
  """Average power spectrum (dB) over Hann frames, channels averaged: `[_FFT // 2 + 1]`."""
  x = audio_tc.astype(np.float64).mean(axis=1)
  x = np.pad(x, (0, max(0, _FFT - len(x))))
  frames = np.lib.stride_tricks.sliding_window_view(x, _FFT)[:: _FFT // 2]
  power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(_FFT), axis=-1)) ** 2, axis=0)
  return 10 * np.log10(power + 1e-12)


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


def format_report(results):
  """Markdown: averages per system (best in bold), then each pair's MR-STFT and loudness error."""
  avg = results["average"]
  lines = [
      "# mixnet evaluation", "",
      f"Checkpoint `{results['checkpoint']}`; {len(results['pairs'])} pairs "
      f"({results['split']}) from `{results['raw_dir']}`; DSP baseline preset "
      f"`{results['preset']}`. Lower is better except SI-SDR.", "",
      "| metric | model | identity (raw) | DSP |", "|---|---|---|---|"]
  for name in metrics.METRIC_NAMES:
    values = [avg[s][name] for s in SYSTEMS]
    best = (min if _LOWER_IS_BETTER[name] else max)(values)
    cells = [f"**{v:.4g}**" if v == best else f"{v:.4g}" for v in values]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  lines += ["", "| pair | offset ms | MR-STFT model / identity / DSP | loudness error LU model |",
            "|---|---|---|---|"]
  for r in results["pairs"]:
    lines.append(f"| {r['name']} | {r['offset_ms']:.2f} | "
                 + " / ".join(f"{r[s]['mr_stft']:.3f}" for s in SYSTEMS)
                 + f" | {r['model']['loudness_error_lu']:.2f} |")
  for s in results["skipped"]:
    lines.append(f"\nSkipped {s['name']}: {s['reason']}")
  return "\n".join(lines) + "\n"


def main(argv):
  from absl import flags

  del argv
  f = flags.FLAGS
  results = evaluate(f.checkpoint, f.raw_dir, f.mixed_dir, f.out_dir, preset=f.preset,
                     split=f.split)
  print(format_report(results))
  print(f"Wrote {f.out_dir}/report.md, metrics.json, figures and audio/")


if __name__ == "__main__":
  from absl import app, flags

  flags.DEFINE_string("checkpoint", None, "Training workdir or checkpoint folder.")
  flags.DEFINE_string("raw_dir", None, "Folder of raw takes.")
  flags.DEFINE_string("mixed_dir", None, "Folder of the user's mixes of them.")
  flags.DEFINE_string("out_dir", None, "Where the report, metrics, figures and audio go.")
  flags.DEFINE_string("preset", "default", "DSP preset of the DSP baseline.")
  flags.DEFINE_enum("split", "auto", ["auto", "all", "validation"],
                    "Which pairs: held-out ones, all, or auto (held-out if these are the "
                    "training folders).")
  flags.mark_flags_as_required(["checkpoint", "raw_dir", "mixed_dir", "out_dir"])
  app.run(main)

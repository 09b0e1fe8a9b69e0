"""The style card: a learned vocal chain shown as curves, per-band reverb decay and a table.

For a model with a learned chain (`chain`, or the chain inside `hybrid`) the evaluation report
shows what the chain does, in the units a mix engineer reads:
  eq          the EQ's magnitude (dB) from 20 Hz to below Nyquist, at `EQ_POINTS_PER_OCTAVE`
              log-spaced frequencies (the RBJ biquads the chain samples and the preset exports).
  compressor  the static curve: output level (dBFS, makeup included) against input level (dBFS
              peak of the 0.5 ms control frames, after the EQ), with threshold, knee and ratio.
  reverb      per decay band of the reverb: its frequency range, level (dB), the RT60 setting
              (s), and the RT60 measured on the learned impulse response's part in that band
              (Schroeder backward integration, T20 fit) with its energy decay curve (dB). The
              response is one fixed noise per band, and a narrow band holds few independent
              samples of it within a decay time, so a low band's measured decay can differ from
              its setting by the chance of that noise.
  settings    `mixnet.models.style_card`: every learned setting with its unit.
Levels are those of the take after gain staging to the chain's `input_lufs` (whole take).

`compute` returns the card as plain JSON data; `figures` draws it from that data alone, so the
figures show exactly the numbers that metrics.json holds.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mixnet import models, plots
from mixnet.diffdsp import dynamics, filters, reverberation
from mixnet.models import chain

EQ_POINTS_PER_OCTAVE = 24
EQ_MIN_HZ = 20.0
COMPRESSOR_INPUT_DB = np.arange(-72.0, 0.25, 0.5)  # input levels of the static curve, dBFS
EDC_STEP_S = 0.01  # time step of the stored energy decay curves
FLOOR_DB = -120.0  # curves are floored here (a zero of the EQ, the end of the decay)
# Figure -> its caption in report.md (the file is `figure_name(figure)`).
FIGURES = {"eq": "EQ curve", "compressor": "compressor static curve",
           "reverb": "reverb decay per band"}


def eq_frequencies(sample_rate):
  """`EQ_MIN_HZ * 2 ** (i / EQ_POINTS_PER_OCTAVE)` below Nyquist, Hz (octaves of 20 Hz exact)."""
  octaves = np.log2(0.5 * sample_rate / EQ_MIN_HZ)
  count = int(np.ceil(octaves * EQ_POINTS_PER_OCTAVE))
  return EQ_MIN_HZ * 2.0 ** (np.arange(count) / EQ_POINTS_PER_OCTAVE)


def eq_curve_db(eq, sample_rate, freqs_hz):
  """Magnitude (dB) of the EQ's biquads (`filters.eq_sections`) at `freqs_hz`."""
  z1 = np.exp(-2j * np.pi * np.asarray(freqs_hz, np.float64) / sample_rate)
  total = np.ones_like(z1)
  for b, a in filters.eq_sections(eq, sample_rate):
    b, a = np.asarray(b, np.float64), np.asarray(a, np.float64)
    total *= (b[0] + b[1] * z1 + b[2] * z1 ** 2) / (a[0] + a[1] * z1 + a[2] * z1 ** 2)
  return np.maximum(20.0 * np.log10(np.maximum(np.abs(total), 1e-30)), FLOOR_DB)


def compressor_curve_db(comp, input_db=COMPRESSOR_INPUT_DB):
  """Static output level (dBFS) for input levels `input_db`: the soft-knee curve plus makeup."""
  curve = dynamics.static_curve_db(np.asarray(input_db, np.float32), comp["threshold_db"],
                                   comp["ratio"], comp["knee_db"])
  return np.asarray(curve, np.float64) + float(comp["makeup_db"])


def band_ranges(module):
  """(low_hz, high_hz) of each reverb decay band; the last ends at Nyquist."""
  edges = reverberation.band_edges(module.sample_rate, module.reverb_edges_hz)
  bounds = (0.0,) + edges + (0.5 * float(module.sample_rate),)
  return list(zip(bounds[:-1], bounds[1:], strict=True))


def band_responses(module, reverb):
  """The learned reverb response's part in each decay band, `[bands, taps, channels]`.

  The response is a sum of one decaying noise per band (`mixnet.diffdsp.reverberation`), so the
  part of band b is the response with every other band's level at zero (up to the response's
  overall scale, which a decay curve normalises away).
  """
  band_db = jnp.asarray(reverb["band_db"])

  def only(band):
    others_off = jnp.where(jnp.arange(band_db.shape[0]) == band, band_db, -jnp.inf)
    return chain.impulse_response(module, dict(reverb, band_db=others_off))

  return np.asarray(jax.jit(jax.vmap(only))(jnp.arange(band_db.shape[0])), np.float64)


def decay_curve_db(ir_tc):
  """Energy decay curve (Schroeder backward integration, dB, 0 at the start) of `[taps, c]`.

  The channels' energies add; the curve is floored at `FLOOR_DB`.
  """
  energy = np.cumsum(np.sum(np.square(ir_tc), axis=1)[::-1])[::-1]
  return np.maximum(10.0 * np.log10(np.maximum(energy / energy[0], 1e-30)), FLOOR_DB)


def _reverb(module, reverb):
  sample_rate = float(module.sample_rate)
  step = max(1, int(round(EDC_STEP_S * sample_rate)))
  bands, decay = [], []
  for b, ((low, high), ir_tc) in enumerate(zip(band_ranges(module),
                                               band_responses(module, reverb), strict=True)):
    measured = np.mean([reverberation.schroeder_rt60(ir_t, sample_rate) for ir_t in ir_tc.T])
    bands.append({"low_hz": low, "high_hz": high, "rt60_s": float(reverb["rt60_s"][b]),
                  "measured_rt60_s": float(measured), "level_db": float(reverb["band_db"][b])})
    decay.append(decay_curve_db(ir_tc)[::step].tolist())
  return {"bands": bands, "predelay_ms": float(reverb["predelay_ms"]),
          "send_db": float(reverb["send_db"]),
          "decay_time_s": (np.arange(len(decay[0])) * step / sample_rate).tolist(),
          "decay_db": decay}


def compute(model_config, params):
  """The style card of a model's learned chain as JSON data, or None for a model without one.

  Args:
    model_config: the model's `config.model`.
    params: its parameters (nested dict of arrays).

  Returns:
    {"model", "sample_rate", "input_lufs", "settings" (the `models.style_card` rows),
    "eq": {"freq_hz", "gain_db"}, "compressor": {"input_db", "output_db", "threshold_db",
    "knee_db", "ratio", "makeup_db"}, "reverb": {"bands": [{"low_hz", "high_hz", "rt60_s",
    "measured_rt60_s", "level_db"}], "predelay_ms", "send_db", "decay_time_s",
    "decay_db" ([bands][times])}}.
  """
  found = models.learned_chain(model_config, params)
  if found is None:
    return None
  module, chain_params = found
  learned = jax.tree.map(np.asarray, chain.physical(module, chain_params))
  sample_rate = float(module.sample_rate)
  freqs = eq_frequencies(sample_rate)
  comp = {k: float(v) for k, v in learned["compressor"].items()}
  return {
      "model": model_config.name, "sample_rate": sample_rate,
      "input_lufs": float(module.input_lufs),
      "settings": models.style_card(model_config, params),
      "eq": {"freq_hz": freqs.tolist(),
             "gain_db": eq_curve_db(learned["eq"], sample_rate, freqs).tolist()},
      "compressor": {"input_db": COMPRESSOR_INPUT_DB.tolist(),
                     "output_db": compressor_curve_db(comp).tolist(),
                     **{k: comp[k] for k in ("threshold_db", "knee_db", "ratio", "makeup_db")}},
      "reverb": _reverb(module, learned["reverb"]),
  }


def figures(card):
  """The card's figures drawn from its data: {"eq", "compressor", "reverb": Figure}."""
  comp, reverb = card["compressor"], card["reverb"]
  return {
      "eq": plots.eq_figure(card["eq"]["freq_hz"], card["eq"]["gain_db"], card["sample_rate"]),
      "compressor": plots.compressor_figure(comp["input_db"], comp["output_db"],
                                            comp["threshold_db"], comp["knee_db"]),
      "reverb": plots.reverb_figure([(b["low_hz"], b["high_hz"]) for b in reverb["bands"]],
                                    [b["rt60_s"] for b in reverb["bands"]],
                                    [b["measured_rt60_s"] for b in reverb["bands"]],
                                    reverb["decay_time_s"], reverb["decay_db"]),
  }


def figure_name(figure):
  """File name of one of the card's figures in the report folder."""
  return f"style_{figure}.png"


def _format_values(value):
  return ", ".join(f"{v:.4g}" for v in np.atleast_1d(np.asarray(value, np.float64)))


def format_markdown(card):
  """The report's "Style card" section: figures, every setting with its unit, reverb bands."""
  lines = [
      "## Style card: the learned vocal chain", "",
      f"What the `{card['model']}` model learned, as a mix engineer reads it. Levels are those "
      f"of the take after gain staging to {card['input_lufs']:g} LUFS (whole take); the "
      "compressor's input is the peak level after the EQ."
      + (" The U-Net residual that follows the chain is not shown." if card["model"] == "hybrid"
         else ""), ""]
  lines += [f"![{caption}]({figure_name(figure)})" for figure, caption in FIGURES.items()]
  lines += ["", "| stage | setting | value | unit |", "|---|---|---|---|"]
  lines += [f"| {row['stage']} | {row['name']} | {_format_values(row['value'])} | {row['unit']} |"
            for row in card["settings"]]
  lines += ["", "| reverb band, Hz | RT60 setting, s | RT60 measured, s | level, dB |",
            "|---|---|---|---|"]
  lines += [f"| {b['low_hz']:.0f}-{b['high_hz']:.0f} | {b['rt60_s']:.3g} | "
            f"{b['measured_rt60_s']:.3g} | {b['level_db']:.3g} |" for b in card["reverb"]["bands"]]
  return "\n".join(lines) + "\n"

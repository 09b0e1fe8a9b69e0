"""Learned vocal chain (`chain` model): EQ, compressor, saturation, reverb and level, a few dozen
readable settings (plus the reverb's learned noise) that export as a `mixnet.dsp` preset.

Run:
  python -m mixnet.train --config=experiments/chain.py --workdir=/tmp/mixnet/chain
  python -m mixnet.train --config=experiments/chain.py:tiny --workdir=/tmp/mixnet/chain_tiny
  python -m mixnet.export_preset --checkpoint=/tmp/mixnet/chain --out=my_style.json

Presets: `base` (2 s crops, batch 8) and `tiny` (1 s crops, batch 4; tests and quick runs). The
chain itself is the same in both: it is small whatever the preset. It trains with a larger
learning rate than the U-Nets (its parameters are a few dozen raw numbers whose sigmoid maps
move a setting across its range for a change of a few units) and without weight decay (which
would pull every setting toward the middle of its range).

The reverb's noise is learned (`learn_noise`): a random noise with the right decays scores no
better than no reverb on the mix's spectrogram (`benchmarks/reverb_floor.py`). Crops and
validation windows carry `CONTEXT_SECONDS` of warm-up audio. The loss adds the octave-band
envelope term (`loss.envelope_weight`, `mixnet.losses`): without it the noise reverb, fitted by
waveform and per-bin terms alone, came out too quiet and too long (`benchmarks/chain.py
--task=recovery` measures RT60 and send).
"""

import ml_collections

from experiments import base

# Weight of the band-envelope loss for models with the learned chain (chosen by
# benchmarks/chain.py --task=recovery: 1 left the RT60s 40% long, 4 brought them within 10%).
ENVELOPE_WEIGHT = 4.0
# Warm-up audio before each training crop and validation window (data.context_seconds): the
# reverb tail and compressor state of the scored part come from audio the model has heard, so
# validation scores the chain as chunked inference runs it. On benchmarks/quality.py the chain's
# held-out MR-STFT after 1274 steps was 0.549 with and without it (README), and a chain step
# cost about the same, so it is kept for what validation measures.
CONTEXT_SECONDS = 1.0


def chain_hparams(config):
  """`VocalChain` hyper-parameters (mixnet/models/chain.py), sharing `config.sample_rate`."""
  return ml_collections.ConfigDict(dict(
      sample_rate=config.get_ref("sample_rate"),
      num_peaks=3,
      # Edges (Hz) of the reverb's decay bands; bands are the gaps between them.
      reverb_edges_hz=(125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0),
      # Reverb tail length = the longest RT60 it can learn; part of the inference context.
      ir_seconds=2.0,
      max_predelay_ms=100.0,
      # Longest compressor release; 12 of it are the compressor-memory part of the context.
      max_release_ms=300.0,
      eq_fir_seconds=0.18,
      # "scan" (lax.scan) or "assoc" (associative scan over a fixed attack/release mask).
      compressor_method="scan",
      noise_seed=0,
      # Learn the reverb's noise too (its fine structure; one parameter per tap).
      learn_noise=True,
      # Loudness the input must be brought to (whole take) before the chain: gain staging.
      input_lufs=-20.0,
  ))


def get_config(preset="base"):
  """Returns the base config for `preset` with `model.name = "chain"`."""
  config = base.get_config(preset)
  config.model.name = "chain"
  config.model.chain = chain_hparams(config)
  config.opt.learning_rate = 1e-2
  config.opt.weight_decay = 0.0
  # The input is staged to input_lufs per take (the compressor needs the take's level): no
  # random gain on the input.
  config.data.gain_db = 0.0
  config.loss.envelope_weight = ENVELOPE_WEIGHT
  config.data.context_seconds = CONTEXT_SECONDS
  return config

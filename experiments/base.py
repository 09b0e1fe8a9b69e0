"""Base mixnet configuration: the time-domain U-Net on the user's pairs (or the demo data).

Run:
  python -m mixnet.train --config=experiments/base.py --workdir=/tmp/mixnet/base
  python -m mixnet.train --config=experiments/base.py:tiny --workdir=/tmp/mixnet/tiny
One-off changes:
  python -m mixnet.train --config=experiments/base.py --workdir=DIR \
      --config.data.raw_dir=my/raw --config.data.mixed_dir=my/mixed --config.train.num_steps=50000

Presets (the text after ':'):
  base  the quality model (default).
  tiny  a CPU-sized model that trains in minutes; used by `make demo`, tests and notebooks.
"""

import ml_collections


def get_config(preset="base"):
  """Returns the config for `preset` ("base" or "tiny")."""
  config = ml_collections.ConfigDict()
  sample_rate = ml_collections.FieldReference(44100)
  config.sample_rate = sample_rate

  config.data = ml_collections.ConfigDict(dict(
      # Empty raw_dir/mixed_dir: use the built-in synthetic demo pairs.
      raw_dir="",
      mixed_dir="",
      # Where TFDS shards go; empty: `<workdir>/data`.
      data_dir="",
      sample_rate=sample_rate,
      # 1: both sides are downmixed to mono; 2: stereo (mono files are copied to both sides).
      channels=1,
      val_fraction=0.1,
      max_shift_ms=100.0,
      # Pairs whose alignment confidence is below this are left out (unless keep_low_confidence).
      min_confidence=0.3,
      keep_low_confidence=False,
      # A mix may run this much (s) longer than its take (a reverb or delay tail); pairs whose
      # lengths differ beyond that are left out (see mixnet/data/analysis.py) unless
      # keep_length_mismatch.
      max_tail_s=5.0,
      keep_length_mismatch=False,
      segment_seconds=2.0,
      # Audio (s) before each training segment that the model hears but the loss ignores: a
      # warm-up for a long memory (a chain's reverb tail, a compressor's state).
      context_seconds=0.0,
      # Augmentation. gain_mode: "input" (default) scales the raw take only, so the model learns
      # to land at the user's output level whatever level a take was recorded at: mixes are
      # delivered at a consistent loudness, and gain variation should teach exactly that.
      # "both" scales raw and mix by the same gain (teaches a level-following
      # mapping; use it when your mixes keep the recording's level).
      gain_db=6.0,
      gain_mode="input",
      # Crops may reach this far (ms) past either end of a file, zero-filled: both sides shift
      # together, so file starts and ends land anywhere in a segment.
      shift_ms=20.0,
      polarity_flip=True,
      # Crops whose raw RMS is below this (dBFS) are redrawn; validation's audio summaries
      # skip windows whose mix is quieter.
      silence_db=-50.0,
      # Built-in demo data: how many pairs, how long, which DSP preset makes the "mix".
      demo_pairs=24,
      demo_seconds=6.0,
      # "warm", not the DSP fallback's "default": the demo's user has a style of their own, so
      # the evaluation's DSP baseline is a baseline, not a copy of the target.
      demo_preset="warm",
  ))

  config.model = ml_collections.ConfigDict(dict(
      name="time_unet",
      channels=1,
      # Waveform U-Net (mixnet/models/time_unet.py). Level i has width
      # min(base_width * width_multiplier**i, max_width) and divides the rate by strides[i];
      # the residual convs at rate / prod(strides) use bottleneck_dilations (the long context;
      # `python benchmarks/models.py` prints each config's receptive field in seconds).
      time_unet=dict(
          base_width=32,
          width_multiplier=2.0,
          max_width=256,
          strides=(4, 4, 4, 4),
          # Kernel of the strided encoder convs and of the repeat-then-conv decoder convs.
          kernel_size=8,
          bottleneck_dilations=(1, 2, 4, 8, 16, 32, 64),
      ),
      # STFT U-Net (mixnet/models/spectral_unet.py): complex mask + residual on the power-law
      # compressed spectrum. Level i divides frames by time_strides[i] and bins by
      # freq_strides[i] (prod(freq_strides) must divide fft_size // 2).
      spectral_unet=dict(
          fft_size=1024,
          hop_size=256,
          base_width=16,
          width_multiplier=2.0,
          max_width=128,
          time_strides=(1, 2, 2, 2),
          freq_strides=(4, 2, 2, 2),
          # Time dilations of the bottleneck's residual 3x3 convs (in bottleneck frames).
          bottleneck_dilations=(1, 2, 4, 8),
          # The U-Net sees X * |X|**(p - 1): level range compressed, phase kept.
          compress_exponent=0.3,
      ),
  ))

  config.loss = ml_collections.ConfigDict(dict(
      l1_weight=1.0,
      stft_weight=1.0,
      # Octave-band energy envelope (mixnet.losses.band_envelope_loss); the chain models use it
      # so that their noise reverb is fitted by its level and decay, not its waveform.
      envelope_weight=0.0,
      fft_sizes=(1024, 2048, 512),
      hop_sizes=(120, 240, 50),
      win_lengths=(600, 1200, 240),
  ))

  config.opt = ml_collections.ConfigDict(dict(
      learning_rate=3e-4,
      warmup_steps=500,
      # "cosine": warmup then cosine decay to end_lr_factor * learning_rate.
      # "plateau": warmup then optax.contrib.reduce_on_plateau on the training loss.
      schedule="cosine",
      end_lr_factor=0.01,
      plateau_patience=200,
      plateau_factor=0.5,
      weight_decay=1e-4,
      b1=0.9,
      b2=0.999,
      grad_clip_norm=1.0,
      # Exponential moving average of parameters, used for eval and export; 0 disables it.
      ema_decay=0.999,
      # {top-level parameter group: fraction of train.num_steps it keeps its initial values},
      # then it trains with an optimizer of its own (see mixnet.optimizer); hybrid holds its
      # residual so that the chain trains first.
      hold=ml_collections.ConfigDict(),
      # {top-level parameter group: its own peak learning rate}; the others use learning_rate.
      group_learning_rate=ml_collections.ConfigDict(),
  ))

  config.train = ml_collections.ConfigDict(dict(
      num_steps=100_000,
      per_device_batch=8,
      eval_every=2000,
      checkpoint_every=1000,
      log_every=100,
      seed=0,
      keep_checkpoints=3,
      # Validation batches per eval, and validation clips written as audio and spectrograms.
      eval_batches=8,
      num_audio_summaries=3,
  ))

  config.infer = ml_collections.ConfigDict(dict(
      # New audio per chunk; each chunk also carries the model's context on the side(s) it
      # needs. A model with a long context gets longer chunks (up to 16x its context, fewer per
      # call) while one call stays within chunk_seconds x batch_size seconds of audio
      # (mixnet.chunking.chunk_sizes).
      chunk_seconds=8.0,
      batch_size=4,
      # DSP preset used when no model can be loaded.
      preset="default",
      # True-peak ceiling of the output limiter, dBFS.
      ceiling_db=-1.0,
      # Scale the model's output to the median loudness of the training mixes (the receptive
      # field sees phrases, not a whole take's loudness); see mixnet/infer.py.
      match_loudness=True,
  ))

  if preset == "tiny":
    config.data.segment_seconds = 1.0
    config.model.time_unet.base_width = 8
    config.model.time_unet.max_width = 64
    config.model.time_unet.bottleneck_dilations = (1, 2, 4, 8, 16)
    config.model.spectral_unet.base_width = 8
    config.model.spectral_unet.max_width = 64
    config.opt.learning_rate = 1e-3
    config.opt.warmup_steps = 50
    config.opt.ema_decay = 0.99
    config.train.num_steps = 1000
    config.train.per_device_batch = 4
    config.train.eval_every = 200
    config.train.checkpoint_every = 100
    config.train.log_every = 20
    config.train.eval_batches = 2
  elif preset != "base":
    raise ValueError(f"unknown preset {preset!r}; expected 'base' or 'tiny'")
  return config

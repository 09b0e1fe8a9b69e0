"""Learned vocal chain followed by the time-domain U-Net as a residual (`hybrid` model).

Run:
  python -m mixnet.train --config=experiments/hybrid.py --workdir=/tmp/mixnet/hybrid
  python -m mixnet.train --config=experiments/hybrid.py:tiny --workdir=/tmp/mixnet/hybrid_tiny
  python -m mixnet.export_preset --checkpoint=/tmp/mixnet/hybrid --out=my_style.json  (the chain)

The U-Net part has the preset's `time_unet` settings (base or tiny); it starts near the identity,
so training starts from the chain alone. Training is chain first: the residual is held at its
initial values for the first half of the run (`opt.hold.residual=0.5`), then trains beside the
chain with an optimizer of its own, at the U-Net's own learning rate
(`opt.group_learning_rate.residual`; the chain keeps its larger one). Chain first reached a
lower held-out MR-STFT than joint training for the same number of steps
(`benchmarks/chain.py --task=compare`); `--config.opt.hold.residual=0` trains both parts
jointly from the start.
"""

import ml_collections

from experiments import base, chain


def get_config(preset="base"):
  """Returns the base config for `preset` with `model.name = "hybrid"`."""
  config = base.get_config(preset)
  config.model.name = "hybrid"
  config.model.hybrid = ml_collections.ConfigDict(dict(
      chain=chain.chain_hparams(config),
      time_unet=config.model.time_unet.to_dict(),
  ))
  unet_learning_rate = config.opt.learning_rate  # the preset's, for time_unet
  config.opt.learning_rate = 3e-3
  config.opt.weight_decay = 0.0
  config.data.gain_db = 0.0
  config.opt.hold = ml_collections.ConfigDict({"residual": 0.5})
  # The residual U-Net trains at the U-Net's own rate; the chain keeps the larger one. On
  # benchmarks/quality.py (2975 steps) the residual at 3e-3 left validation MR-STFT 0.445 at the
  # last step (best 0.386 at 2380), at 1e-3 it fell to 0.350 at the end; held-out MR-STFT of
  # best/ was about the same (0.372 and 0.376).
  config.opt.group_learning_rate = ml_collections.ConfigDict({"residual": unet_learning_rate})
  # No band-envelope term (the chain config's 4): it brings the chain's reverb decays to the
  # right values for export, but the hybrid is picked for its sound. On benchmarks/quality.py
  # (quality.train_and_report, 2975 steps each) held-out MR-STFT was 0.325 without it against
  # 0.376 with it; the exported chain of a hybrid then has longer decays than a `chain` run's.
  config.loss.envelope_weight = 0.0
  config.data.context_seconds = chain.CONTEXT_SECONDS
  return config

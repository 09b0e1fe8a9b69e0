"""Spectral variant: the STFT U-Net instead of the time-domain U-Net.

Run:
  python -m mixnet.train --config=experiments/spectral.py --workdir=/tmp/mixnet/spectral
  python -m mixnet.train --config=experiments/spectral.py:tiny --workdir=/tmp/mixnet/spectral_tiny
"""

from experiments import base


def get_config(preset="base"):
  """Returns the base config for `preset` with `model.name = "spectral_unet"`."""
  config = base.get_config(preset)
  config.model.name = "spectral_unet"
  return config

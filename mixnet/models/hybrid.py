"""`hybrid`: the learnable vocal chain followed by the time-domain U-Net as a residual corrector.

`out = TimeUNet(VocalChain(x))`. The U-Net's output is `y * (1 + g) + r` with g and r from an
output conv initialised near zero, so at the start the model is the chain: the U-Net learns only
what the chain cannot (and the chain keeps what it can, readable and exportable as a preset).

The two run in series, so the contexts add and the alignment is the least common multiple of
the chain's control period and the U-Net's total stride.
"""

import math

import flax.linen as nn

from mixnet.models import chain, time_unet


def _tupled(hparams):
  return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(hparams).items()}


def _parts(module, **names):
  """The two stages; in `__call__` they are named "chain" and "residual" (the params' keys)."""
  return (chain.VocalChain(channels=module.channels, **_tupled(module.chain or {}),
                           **names.get("chain", {})),
          time_unet.TimeUNet(channels=module.channels, **_tupled(module.time_unet or {}),
                             **names.get("residual", {})))


class HybridChain(nn.Module):
  """Chain then U-Net; see the module docstring.

  Attributes:
    channels: audio channels.
    chain: `VocalChain` hyper-parameters (a dict).
    time_unet: `TimeUNet` hyper-parameters (a dict).
  """
  channels: int = 1
  chain: dict | None = None
  time_unet: dict | None = None

  @nn.compact
  def __call__(self, audio_btc):
    """Maps float32 `[batch, time, channels]` (at the chain's `input_lufs`) to the same shape."""
    vocal_chain, unet = _parts(self, chain={"name": "chain"}, residual={"name": "residual"})
    return unet(vocal_chain(audio_btc))


def chain_of(module):
  """The hybrid's `VocalChain` (unbound; its parameters are `params["chain"]`)."""
  return _parts(module)[0]


def alignment(module):
  vocal_chain, unet = _parts(module)
  return math.lcm(chain.alignment(vocal_chain), time_unet.alignment(unet))


def context(module):
  """(left, right): the chain's and the U-Net's contexts added (they run in series)."""
  vocal_chain, unet = _parts(module)
  (chain_left, chain_right), (unet_left, unet_right) = (chain.context(vocal_chain),
                                                        time_unet.context(unet))
  return chain_left + unet_left, chain_right + unet_right

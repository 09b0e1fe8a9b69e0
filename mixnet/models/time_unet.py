"""Time-domain U-Net (Wave-U-Net / Demucs family) that maps a dry vocal to a mixed one.

Audio in and out is float32 `[batch, time, channels]` at the model's sample rate; any length works
(the input is zero-padded at the end to a multiple of `prod(strides)` and the output cropped back).

Architecture, for strides (s_1 .. s_L) and widths (w_1 .. w_L):
  encoder level i: conv (kernel_size, stride s_i) to w_i, GELU, residual conv (3) -> skip e_i.
    Strided convs cut the rate early (44.1 kHz -> 11 kHz after the first level), so the few
    full-rate operations are cheap; this is what makes the model fast on CPU.
  bottleneck at rate / prod(strides): residual dilated convs (kernel 3, `bottleneck_dilations`).
    This is the long-context path for reverb tails and compressor release: `context(module)`
    says how far it reaches (`benchmarks/models.py` prints it in seconds per config).
    There is deliberately no global (whole-signal) pooling: it would make the output depend on
    the chunk boundaries of chunked inference.
  decoder level i: nearest-neighbour repeat by s_{i+1}, conv (kernel_size), GELU, add e_i,
    residual conv (3). A kernel of >= 2 strides makes every output phase a different mix of the
    low-rate frames. (Repeat-then-conv instead of nn.ConvTranspose: the latter's gradient is
    ~8x slower on XLA:CPU.)
  output: a sub-pixel conv at rate / s_1 gives 2 * channels values per output sample, a gain g
    and a residual r, and `out = audio * (1 + g) + r`. The identity path makes a light-touch mix
    easy to learn; g carries level-dependent gain (compression, level) and r carries EQ,
    saturation harmonics and reverb. The output conv starts near zero, so the untrained model is
    close to the identity.
No normalisation layers: GroupNorm would pool over time (non-local, breaks chunking) and per-step
LayerNorm would hide the absolute level a compressor needs to see.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mixnet.models import layers


class TimeUNet(nn.Module):
  """Waveform U-Net; see the module docstring. Receptive field: `context(module)`.

  Attributes:
    channels: audio channels in and out (1 mono, 2 stereo).
    base_width: width of the first encoder level.
    width_multiplier: width growth per level.
    max_width: width cap.
    strides: rate reduction of each encoder level.
    kernel_size: kernel of the strided encoder and the upsampling decoder convs.
    bottleneck_dilations: dilations of the residual convs at the lowest rate.
  """
  channels: int = 1
  base_width: int = 32
  width_multiplier: float = 2.0
  max_width: int = 256
  strides: Sequence[int] = (4, 4, 4, 4)
  kernel_size: int = 8
  bottleneck_dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64)

  @nn.compact
  def __call__(self, audio_btc):
    """Maps `[batch, time, channels]` float32 audio to the same shape."""
    layers.check_channels(self, audio_btc)
    batch, length, channels = audio_btc.shape
    total_stride = math.prod(self.strides)
    padded = max(1, -(-length // total_stride)) * total_stride
    audio_btc = jnp.pad(audio_btc.astype(jnp.float32), ((0, 0), (0, padded - length), (0, 0)))
    widths = layers.level_widths(self.base_width, self.width_multiplier, self.max_width,
                          len(self.strides))

    h = audio_btc
    skips = []
    for width, stride in zip(widths, self.strides, strict=True):
      h = nn.gelu(nn.Conv(width, (self.kernel_size,), strides=(stride,),
                          padding=[layers.strided_padding(self.kernel_size, stride)])(h))
      h = h + _res_conv(width, h)
      skips.append(h)

    for dilation in self.bottleneck_dilations:
      h = h + _res_conv(widths[-1], h, dilation)

    for level in reversed(range(len(self.strides) - 1)):
      h = jnp.repeat(h, self.strides[level + 1], axis=1)
      h = nn.gelu(nn.Conv(widths[level], (self.kernel_size,),
                          padding=[layers.same_padding(self.kernel_size)])(h))
      h = h + skips[level]
      h = h + _res_conv(widths[level], h)

    out = nn.Conv(self.strides[0] * 2 * channels, (layers.OUT_KERNEL,),
                  padding=[layers.same_padding(layers.OUT_KERNEL)],
                  kernel_init=nn.initializers.variance_scaling(1e-4, "fan_in", "normal"))(h)
    out = out.reshape(batch, padded, 2 * channels)
    gain, residual = out[..., :channels], out[..., channels:]
    audio_btc = audio_btc * (1.0 + gain) + residual
    return audio_btc[:, :length]


def _res_conv(width, h, dilation=1):
  """The residual branch: GELU, then a (dilated) conv of kernel `layers.RES_KERNEL`."""
  return nn.Conv(width, (layers.RES_KERNEL,), kernel_dilation=(dilation,),
                 padding=[layers.same_padding(layers.RES_KERNEL, dilation)])(nn.gelu(h))


def _span(module):
  depth = len(module.strides)
  return layers.UNetSpan(tuple(module.strides), (module.kernel_size,) * depth, module.kernel_size,
                         tuple(module.bottleneck_dilations))


def alignment(module):
  """Shift (samples) under which the model is equivariant: chunk starts must be multiples."""
  return math.prod(module.strides)


def context(module):
  """(left, right): how many input samples before / after an output sample can affect it.

  The maximum over the output sample's phase within `prod(strides)`; computed by interval
  arithmetic over the same layers `TimeUNet.__call__` builds (checked by an impulse probe test).
  """
  span = _span(module)
  left = right = 0
  for sample in range(math.prod(module.strides)):
    lo, hi = span.output(sample)
    left, right = max(left, sample - lo), max(right, hi - sample)
  return left, right

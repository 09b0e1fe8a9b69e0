"""What the two U-Nets share: level widths, conv paddings, and their receptive-field arithmetic.

Both U-Nets have the same skeleton along time: encoder levels (a strided conv, then a residual
conv of kernel `RES_KERNEL`), residual dilated convs at the bottleneck, and decoder levels
(repeat by the next level's stride, a conv, add the skip, a residual conv), then an output conv of
kernel `OUT_KERNEL`. `UNetSpan` walks that skeleton with interval arithmetic, so each model's
`context()` is computed from the same layers its `__call__` builds (checked by impulse probes in
tests/test_models.py).
"""

import dataclasses

RES_KERNEL = 3
OUT_KERNEL = 3


def level_widths(base_width, width_multiplier, max_width, depth):
  """Channel width of each encoder level: base_width * multiplier**i, capped at max_width."""
  return tuple(min(int(round(base_width * width_multiplier**i)), max_width) for i in range(depth))


def check_channels(module, audio_btc):
  """Raises ValueError unless `audio_btc` is `[batch, time, module.channels]`."""
  if audio_btc.ndim != 3 or audio_btc.shape[-1] != module.channels:
    raise ValueError(f"{type(module).__name__} built for {module.channels} channels got audio "
                     f"shaped {audio_btc.shape} ([batch, time, channels])")


def same_padding(kernel, dilation=1):
  """(left, right) zero padding that keeps the length of a stride-1 conv."""
  span = (kernel - 1) * dilation
  return (span // 2, span - span // 2)


def strided_padding(kernel, stride):
  """(left, right) padding of a strided conv: length / stride outputs, centred windows."""
  left = (kernel - stride) // 2
  return (left, kernel - stride - left)


@dataclasses.dataclass(frozen=True)
class UNetSpan:
  """Receptive field of the shared U-Net skeleton along time, in frames of its input.

  Attributes:
    strides: time stride of each encoder level.
    down_kernels: time kernel of each level's strided encoder conv.
    up_kernel: time kernel of the decoder conv that follows each repeat.
    bottleneck_dilations: dilations of the residual convs at the lowest rate.
  """
  strides: tuple
  down_kernels: tuple
  up_kernel: int
  bottleneck_dilations: tuple

  def encoder(self, level, lo, hi):
    """Input frames [lo', hi'] that encoder output `level` frames [lo, hi] depend on."""
    for i in reversed(range(level + 1)):
      stride, kernel = self.strides[i], self.down_kernels[i]
      left, _ = strided_padding(kernel, stride)
      lo, hi = lo - RES_KERNEL // 2, hi + RES_KERNEL // 2
      lo, hi = lo * stride - left, hi * stride - left + kernel - 1
    return lo, hi

  def decoder(self, level, lo, hi):
    """Input frames that decoder features at `level` frames [lo, hi] depend on (all paths)."""
    if level == len(self.strides) - 1:
      reach = sum(self.bottleneck_dilations) * (RES_KERNEL // 2)
      return self.encoder(level, lo - reach, hi + reach)
    lo, hi = lo - RES_KERNEL // 2, hi + RES_KERNEL // 2
    skip_lo, skip_hi = self.encoder(level, lo, hi)
    pad_left, pad_right = same_padding(self.up_kernel)
    stride = self.strides[level + 1]
    deep_lo, deep_hi = self.decoder(level + 1, (lo - pad_left) // stride,
                                    (hi + pad_right) // stride)
    return min(skip_lo, deep_lo), max(skip_hi, deep_hi)

  def output(self, frame):
    """Input frames that output frame `frame` (at the first level's input rate) depends on."""
    low = frame // self.strides[0]
    return self.decoder(0, low - OUT_KERNEL // 2, low + OUT_KERNEL // 2)

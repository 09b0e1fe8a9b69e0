"""Spectral U-Net: STFT -> 2-D U-Net over (frames, frequency) -> complex mask + residual -> iSTFT.

Audio in and out is float32 `[batch, time, channels]`; any length works (the signal is
zero-padded at the end so the frame count is a multiple of `prod(time_strides)`, and cropped back).

Masking choice. The U-Net sees each channel's spectrum in the power-law compressed complex domain,
`X_c = X |X|^(p - 1)` with `p = compress_exponent` (0.3: the level range of a vocal becomes
learnable without a log, and phase is kept), stacked as real/imaginary feature channels. Per
time-frequency bin it predicts a complex mask M and a complex residual R and outputs
`Y_c = M X_c + R`, decompressed to `Y = Y_c |Y_c|^(1/p - 1)`:
  - M (unbounded, starts at 1) does what is multiplicative in the STFT domain: EQ boosts and
    cuts of any size, level-dependent gain (compression) and small phase changes. A bounded
    magnitude mask could not boost, and a real one could not touch phase.
  - R (starts at 0) creates energy where the dry input has none, which a mask of any kind cannot:
    reverb tails after a phrase ends, and saturation harmonics above the voice's partials.
At initialisation the model is the identity (up to the STFT round trip), so training starts from
"leave it dry" instead of noise. The Nyquist bin is passed through unchanged so that the U-Net
runs on `fft_size // 2` bins, a power of two.

U-Net: a strided conv (time_strides[0], freq_strides[0]) from the features to `base_width`, then
per level a strided conv and a residual 3x3 conv; at the bottleneck residual convs dilated along
time (long context for reverb and compressor release); the decoder repeats (nearest neighbour) and
convolves, adds the skip and applies a residual conv; a sub-pixel conv produces M and R at full
resolution. No normalisation layers (they would pool over time or hide absolute level).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mixnet import spectral_ops
from mixnet.models import layers

_EPS = 1e-8


def _down_kernel(stride):
  return 2 * stride if stride > 1 else layers.RES_KERNEL


def _power_law(spec, exponent):
  """`spec * |spec|^(exponent - 1)`, with |.| floored so that zero bins have finite gradients."""
  power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2 + _EPS
  return spec * power ** ((exponent - 1.0) / 2.0)


class SpectralUNet(nn.Module):
  """STFT-domain U-Net; see the module docstring. Receptive field: `context(module)`.

  Attributes:
    channels: audio channels in and out (1 mono, 2 stereo); stacked as feature channels.
    fft_size: STFT size (also the Hann window length) in samples.
    hop_size: STFT hop in samples (<= fft_size / 2 for an exact round trip).
    base_width: width of the first level.
    width_multiplier: width growth per level.
    max_width: width cap.
    time_strides: frame-rate reduction per level.
    freq_strides: frequency reduction per level; their product must divide fft_size // 2.
    bottleneck_dilations: time dilations of the 3x3 residual convs at the bottleneck.
    compress_exponent: p of the power-law compressed spectrum the U-Net works on.
  """
  channels: int = 1
  fft_size: int = 1024
  hop_size: int = 256
  base_width: int = 16
  width_multiplier: float = 2.0
  max_width: int = 128
  time_strides: Sequence[int] = (1, 2, 2, 2)
  freq_strides: Sequence[int] = (4, 2, 2, 2)
  bottleneck_dilations: Sequence[int] = (1, 2, 4, 8)
  compress_exponent: float = 0.3

  def _unet(self, feats_bnfc, out_features):
    """2-D U-Net: `[batch, frames, bins, c]` -> `[batch, frames, bins, out_features]`."""
    widths = layers.level_widths(self.base_width, self.width_multiplier, self.max_width,
                          len(self.time_strides))
    strides = list(zip(self.time_strides, self.freq_strides, strict=True))
    h = feats_bnfc
    skips = []
    for width, (ts, fs) in zip(widths, strides, strict=True):
      kernel = (_down_kernel(ts), _down_kernel(fs))
      h = nn.gelu(nn.Conv(width, kernel, strides=(ts, fs), padding=[
          layers.strided_padding(kernel[0], ts), layers.strided_padding(kernel[1], fs)])(h))
      h = h + self._res_conv(width, h)
      skips.append(h)

    for dilation in self.bottleneck_dilations:
      h = h + self._res_conv(widths[-1], h, dilation)

    for level in reversed(range(len(strides) - 1)):
      ts, fs = strides[level + 1]
      h = jnp.repeat(jnp.repeat(h, ts, axis=1), fs, axis=2)
      h = nn.gelu(nn.Conv(widths[level], (layers.RES_KERNEL, layers.RES_KERNEL),
                          padding=[layers.same_padding(layers.RES_KERNEL)] * 2)(h))
      h = h + skips[level]
      h = h + self._res_conv(widths[level], h)

    ts, fs = strides[0]
    out = nn.Conv(ts * fs * out_features, (layers.OUT_KERNEL, layers.OUT_KERNEL),
                  padding=[layers.same_padding(layers.OUT_KERNEL)] * 2,
                  kernel_init=nn.initializers.variance_scaling(1e-4, "fan_in", "normal"))(h)
    batch, frames, bins, _ = out.shape
    out = out.reshape(batch, frames, bins, ts, fs, out_features)
    out = out.transpose(0, 1, 3, 2, 4, 5)
    return out.reshape(batch, frames * ts, bins * fs, out_features)

  def _res_conv(self, width, h, dilation=1):
    kernel = layers.RES_KERNEL
    return nn.Conv(width, (kernel, kernel), kernel_dilation=(dilation, 1),
                   padding=[layers.same_padding(kernel, dilation), layers.same_padding(kernel)])(
                       nn.gelu(h))

  @nn.compact
  def __call__(self, audio_btc):
    """Maps `[batch, time, channels]` float32 audio to the same shape."""
    layers.check_channels(self, audio_btc)
    batch, length, channels = audio_btc.shape
    bins = self.fft_size // 2
    if bins % math.prod(self.freq_strides):
      raise ValueError(f"prod(freq_strides) {math.prod(self.freq_strides)} must divide "
                       f"fft_size // 2 = {bins}")
    frames = padded_frames(self, length)
    padded = (frames - 1) * self.hop_size
    audio_bt = jnp.transpose(audio_btc.astype(jnp.float32), (0, 2, 1)).reshape(-1, length)
    audio_bt = jnp.pad(audio_bt, ((0, 0), (0, padded - length)))
    spec = spectral_ops.stft(audio_bt, self.fft_size, self.hop_size, self.fft_size)
    spec = spec.reshape(batch, channels, frames, bins + 1).transpose(0, 2, 3, 1)
    spec_c = _power_law(spec[:, :, :bins], self.compress_exponent)

    feats = jnp.concatenate([jnp.real(spec_c), jnp.imag(spec_c)], axis=-1)
    out = self._unet(feats, 4 * channels)
    mask = (1.0 + out[..., :channels]) + 1j * out[..., channels:2 * channels]
    residual = out[..., 2 * channels:3 * channels] + 1j * out[..., 3 * channels:]
    mixed = _power_law(mask * spec_c + residual, 1.0 / self.compress_exponent)
    mixed = jnp.concatenate([mixed, spec[:, :, bins:]], axis=2)

    mixed = mixed.transpose(0, 3, 1, 2).reshape(batch * channels, frames, bins + 1)
    audio_bt = spectral_ops.istft(mixed, self.fft_size, self.hop_size, self.fft_size, length)
    return jnp.transpose(audio_bt.reshape(batch, channels, length), (0, 2, 1))


def padded_frames(module, length):
  """STFT frames the model uses for `length` samples: >= 1 + length / hop, a stride multiple."""
  multiple = math.prod(module.time_strides)
  needed = 2 + (length - 1) // module.hop_size
  return -(-needed // multiple) * multiple


def alignment(module):
  """Shift (samples) under which the model is equivariant: chunk starts must be multiples."""
  return module.hop_size * math.prod(module.time_strides)


def _span(module):
  return layers.UNetSpan(tuple(module.time_strides), tuple(map(_down_kernel, module.time_strides)),
                         layers.RES_KERNEL, tuple(module.bottleneck_dilations))


def context(module):
  """(left, right): input samples before / after an output sample that can affect it.

  Output sample t comes from the frames whose window covers it; each of those depends on a span
  of frames (interval arithmetic over the U-Net's layers, maximised over the frame's phase within
  `prod(time_strides)`), and frame n reads and writes samples n * hop - fft / 2 + 1 ..
  n * hop + fft / 2 - 1 (the periodic Hann window is 0 at its first sample).
  """
  half = module.fft_size // 2
  span = _span(module)
  left = right = 0
  for frame in range(math.prod(module.time_strides)):
    lo, hi = span.output(frame)
    # Frame n reads and writes samples n * hop - half + 1 .. n * hop + half - 1 (Hann is 0 at 0).
    left = max(left, (frame - lo) * module.hop_size + 2 * half - 2)
    right = max(right, (hi - frame) * module.hop_size + 2 * half - 2)
  return left, right

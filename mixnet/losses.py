"""Training losses: L1 on the waveform, the multi-resolution STFT loss (auraloss's definition), and
a band-energy envelope loss for models with a stochastic reverb.

All losses take `pred` and `target` as float32 `[batch, time, channels]` (any sample rate) and
return float32 scalars averaged over batch and channels.
"""

import jax.numpy as jnp
import numpy as np

from mixnet import spectral_ops

# Norms below sqrt of this are treated as this: keeps d||v||/dv finite at v = 0 (identical inputs).
_NORM_SQ_FLOOR = 1e-30
# Octave bands of the envelope loss, and how far below the loudest band-frame it looks (dB).
ENVELOPE_BANDS = 8
ENVELOPE_FLOOR_DB = -80.0


def l1(pred, target):
  """Mean absolute error over all samples, channels and batch items."""
  return jnp.mean(jnp.abs(pred - target))


def _channels_as_batch(audio_btc):
  """`[batch, time, channels]` -> `[batch * channels, time]`."""
  batch, time, channels = audio_btc.shape
  return jnp.transpose(audio_btc, (0, 2, 1)).reshape(batch * channels, time)


def _norm_per_item(x_bft):
  """Frobenius norm of each batch item's `[frames, bins]` matrix: `[batch]`."""
  return jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x_bft), axis=(1, 2)), _NORM_SQ_FLOOR))


def stft_loss(pred_bt, target_bt, fft_size, hop_size, win_length):
  """One resolution of auraloss's `STFTLoss` with its defaults (w_sc = w_log_mag = 1).

  Spectral convergence `||(|Y| - |X|)||_F / ||Y||_F` plus the mean of `|log|Y| - log|X||`,
  where X = STFT(pred), Y = STFT(target) and magnitudes are `sqrt(max(power, 1e-8))`.
  Spectral convergence is computed per batch item and averaged. (auraloss takes one Frobenius
  norm over the whole batch, which is the same for a batch of one; per item, the loss of a batch
  is the mean of its items' losses, so data-parallel shards average to the global batch's loss
  exactly, and a clip's value does not depend on what it was batched with.)

  Args:
    pred_bt, target_bt: float32 `[batch, time]`.
    fft_size, hop_size, win_length: STFT parameters in samples (Hann window, centred).

  Returns:
    float32 scalar.
  """
  x_mag = spectral_ops.magnitude(spectral_ops.stft(pred_bt, fft_size, hop_size, win_length))
  y_mag = spectral_ops.magnitude(spectral_ops.stft(target_bt, fft_size, hop_size, win_length))
  spectral_convergence = jnp.mean(_norm_per_item(y_mag - x_mag) / _norm_per_item(y_mag))
  log_magnitude = jnp.mean(jnp.abs(jnp.log(y_mag) - jnp.log(x_mag)))
  return spectral_convergence + log_magnitude


def multi_resolution_stft_loss(pred, target, fft_sizes=(1024, 2048, 512),
                               hop_sizes=(120, 240, 50), win_lengths=(600, 1200, 240)):
  """auraloss `MultiResolutionSTFTLoss()`: `stft_loss` averaged over the resolutions.

  Args:
    pred, target: float32 `[batch, time, channels]`; channels are treated as extra batch items.
    fft_sizes, hop_sizes, win_lengths: one entry per resolution, in samples.

  Returns:
    float32 scalar; 0 for identical inputs, finite with finite gradients for silent inputs.
  """
  if not len(fft_sizes) == len(hop_sizes) == len(win_lengths):
    raise ValueError(
        f"fft_sizes {fft_sizes}, hop_sizes {hop_sizes} and win_lengths {win_lengths} must have "
        "the same length")
  pred_bt, target_bt = _channels_as_batch(pred), _channels_as_batch(target)
  losses = [stft_loss(pred_bt, target_bt, fft, hop, win)
            for fft, hop, win in zip(fft_sizes, hop_sizes, win_lengths, strict=True)]
  return sum(losses) / len(losses)


def octave_bands(fft_size, num_bands=ENVELOPE_BANDS):
  """float32 `[bins, num_bands]` 0/1 matrix: octave bands counted down from Nyquist.

  Band 0 is Nyquist/2 .. Nyquist, band k is Nyquist/2^(k+1) .. Nyquist/2^k, and the last band
  also takes everything below (down to DC). In Hz they depend on the sample rate only through
  Nyquist (at 44.1 kHz: 11-22 kHz, 5.5-11 kHz, ..., 0-172 Hz for 8 bands).
  """
  bins = fft_size // 2 + 1
  position = np.log2(np.maximum(np.arange(bins), 1e-9) / (bins - 1))  # 0 at Nyquist, < 0 below
  band = np.minimum(np.floor(-position), num_bands - 1).astype(int)
  band[-1] = 0
  return jnp.asarray(np.eye(num_bands, dtype=np.float32)[band])


def band_envelope_loss(pred, target, fft_size=2048, hop_size=512, floor_db=ENVELOPE_FLOOR_DB):
  """Mean absolute difference, in dB / 10, of octave-band energies over short frames.

  A learned reverb's tail is noise of the right colour and decay, never the target tail's own
  waveform, so waveform and per-bin losses see its fine structure as error and pay for it by
  preferring a quieter send with a longer decay. Band energies over ~12 ms-hop frames average the
  fine structure away and keep what is heard: how loud each octave is and how it decays.
  Energies more than `floor_db` below the target item's loudest band-frame count as that
  floor, so the loss ignores what is too quiet to hear.

  Args:
    pred, target: float32 `[batch, time, channels]` (channels as extra batch items).
    fft_size, hop_size: STFT size and hop in samples (Hann window of `fft_size`).

  Returns:
    float32 scalar (1.0 = 10 dB average error).
  """
  pred_bt, target_bt = _channels_as_batch(pred), _channels_as_batch(target)
  bands = octave_bands(fft_size)

  def band_energy(x_bt):
    spec = spectral_ops.stft(x_bt, fft_size, hop_size, fft_size)
    return (jnp.real(spec) ** 2 + jnp.imag(spec) ** 2) @ bands  # [batch, frames, bands]

  target_e, pred_e = band_energy(target_bt), band_energy(pred_bt)
  floor = (jnp.max(target_e, axis=(1, 2), keepdims=True) * 10.0 ** (floor_db / 10.0)
           + _NORM_SQ_FLOOR)
  to_db = lambda e: jnp.log10(jnp.maximum(e, floor))  # In bels: dB / 10.
  return jnp.mean(jnp.abs(to_db(pred_e) - to_db(target_e)))


def combined_loss(pred, target, loss_config):
  """`l1_weight * l1 + stft_weight * mr_stft + envelope_weight * band_envelope_loss`.

  Args:
    pred, target: float32 `[batch, time, channels]`.
    loss_config: `config.loss` (l1_weight, stft_weight, fft_sizes, hop_sizes, win_lengths, and
      optionally envelope_weight; the envelope term is computed only when its weight is > 0).

  Returns:
    (loss, terms): the weighted scalar, and a dict of unweighted scalars "l1", "mr_stft" (and
    "envelope") for logging.
  """
  terms = {
      "l1": l1(pred, target),
      "mr_stft": multi_resolution_stft_loss(
          pred, target, tuple(loss_config.fft_sizes), tuple(loss_config.hop_sizes),
          tuple(loss_config.win_lengths)),
  }
  loss = loss_config.l1_weight * terms["l1"] + loss_config.stft_weight * terms["mr_stft"]
  envelope_weight = float(loss_config.get("envelope_weight", 0.0))
  if envelope_weight > 0:
    terms["envelope"] = band_envelope_loss(pred, target)
    loss = loss + envelope_weight * terms["envelope"]
  return loss, terms

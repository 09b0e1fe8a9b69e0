"""Training losses: L1 on the waveform and the multi-resolution STFT loss (auraloss's definition).

All losses take `pred` and `target` as float32 `[batch, time, channels]` (any sample rate) and
return float32 scalars averaged over batch and channels.
"""

import jax.numpy as jnp

from mixnet import spectral_ops

# Norms below sqrt of this are treated as this: keeps d||v||/dv finite at v = 0 (identical inputs).
_NORM_SQ_FLOOR = 1e-30


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


def combined_loss(pred, target, loss_config):
  """`l1_weight * l1 + stft_weight * multi_resolution_stft_loss`.

  Args:
    pred, target: float32 `[batch, time, channels]`.
    loss_config: `config.loss` (l1_weight, stft_weight, fft_sizes, hop_sizes, win_lengths).

  Returns:
    (loss, terms): the weighted scalar, and a dict of unweighted scalars "l1" and "mr_stft" for
    logging.
  """
  terms = {
      "l1": l1(pred, target),
      "mr_stft": multi_resolution_stft_loss(
          pred, target, tuple(loss_config.fft_sizes), tuple(loss_config.hop_sizes),
          tuple(loss_config.win_lengths)),
  }
  loss = loss_config.l1_weight * terms["l1"] + loss_config.stft_weight * terms["mr_stft"]
  return loss, terms

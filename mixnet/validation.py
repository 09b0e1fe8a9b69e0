"""Validation during training, and the TensorBoard summaries it writes.

Validation scores what the evaluation report (`mixnet.report`) scores: whole files. The
validation windows of `input_pipeline.create_eval_dataset` (each with `data.context_seconds` of
audio before it, as inference gives a chunk its context) go through the model in batches; each
file's windows are joined back together (zero padding dropped) and `mixnet.metrics.compute`
scores the whole file against the user's mix; the metrics are averaged over files. Scoring
files, not windows, keeps near-silent stretches from deciding the result: a window's spectral
convergence divides by the window's own energy and explodes where the mix is nearly silent,
while in a whole file such a stretch weighs what its energy weighs.

`val_loss`, the training loss's weighted combination (`l1_weight * l1 + stft_weight * mr_stft`),
picks the best checkpoint.
"""

import jax
import numpy as np

from mixnet import input_pipeline, metrics, parallel, plots


def _batches(eval_ds, num_batches, local_batch, window_shapes):
  """Up to `num_batches` host batches padded to `local_batch` windows, plus a "keep" mask.

  Every process yields the same number of batches (a process whose windows ran out yields
  empty ones of `window_shapes["raw"]` and `["mixed"]`), so the collective evaluation steps
  never deadlock across hosts.
  """
  it = eval_ds.as_numpy_iterator()
  for _ in range(num_batches):
    batch = next(it, None)
    if batch is None and jax.process_count() == 1:
      return
    if batch is None:
      batch = {k: np.zeros((0,) + window_shapes[k], np.float32) for k in ("raw", "mixed")}
      batch |= {k: np.zeros(0, np.int32) for k in ("file", "start", "valid")}
    n = len(batch["raw"])
    yield {k: np.pad(v, [(0, local_batch - n)] + [(0, 0)] * (v.ndim - 1))
           for k, v in batch.items()} | {"keep": np.arange(local_batch) < n}


def run_validation(p_eval, params, eval_ds, mesh, config, local_batch):
  """Scores the model on the validation files (see the module docstring).

  Args:
    p_eval: data-parallel fn(params, raw_btc) -> prediction, e.g. from `train_lib`.
    params: replicated model parameters.
    eval_ds: this host's `input_pipeline.create_eval_dataset`.
    mesh: the data mesh.
    config: the run's config (`train.eval_batches` bounds the work, `train.num_audio_summaries`
      clips are returned).
    local_batch: windows per host batch.

  Returns:
    (averages, clips): metric averages over files (`mixnet.metrics` names plus `val_loss`;
    empty when nothing could be scored), and up to `num_audio_summaries` non-silent windows as
    (raw, target, prediction) `[time, channels]` numpy triples.
  """
  files, clips = {}, []
  context = input_pipeline.context_length(config.data)
  shapes = {k: (input_pipeline.segment_length(config.data) + extra, config.model.channels)
            for k, extra in (("raw", context), ("mixed", 0))}
  for host_batch in _batches(eval_ds, config.train.eval_batches, local_batch, shapes):
    batch = parallel.shard_batch(mesh, host_batch)
    pred = p_eval(params, batch["raw"])
    got = {k: parallel.to_host(v) for k, v in batch.items()} | {"pred": parallel.to_host(pred)}
    got["raw"], got["pred"] = got["raw"][:, context:], got["pred"][:, context:]
    for i in np.flatnonzero(got["keep"]):
      n = got["valid"][i]
      files.setdefault(int(got["file"][i]), []).append(
          (int(got["start"][i]), got["mixed"][i, :n], got["pred"][i, :n]))
      if len(clips) < config.train.num_audio_summaries and _loud(got["mixed"][i], config):
        clips.append((got["raw"][i], got["mixed"][i], got["pred"][i]))
  return score_files(files, config), clips


def _loud(x_tc, config):
  return 10 * np.log10(np.mean(np.square(x_tc)) + 1e-20) >= config.data.silence_db


def score_files(files, config):
  """Metric averages over whole files, and `val_loss`.

  Args:
    files: file id -> list of (start sample, target `[n, channels]`, prediction `[n, channels]`)
      pieces of that file, in any order.
    config: the run's config (`data.sample_rate` Hz, `loss` weights).

  Returns:
    {metric: average over files} plus "val_loss"; {} when every file's mix is digital silence
    (every metric is degenerate there).
  """
  rows = []
  for pieces in files.values():
    pieces = sorted(pieces, key=lambda p: p[0])
    target_tc = np.concatenate([p[1] for p in pieces])
    if not np.any(target_tc):
      continue
    pred_tc = np.concatenate([p[2] for p in pieces])
    rows.append(metrics.compute(pred_tc, target_tc, config.data.sample_rate))
  averages = metrics.average(rows)
  if averages:
    averages["val_loss"] = (config.loss.l1_weight * averages["l1"]
                            + config.loss.stft_weight * averages["mr_stft"])
  return averages


def write_summaries(writer, step, clips, sample_rate):
  """Audio (raw, target, prediction) and a spectrogram image of each clip."""
  if not clips:
    return
  for name, idx in (("raw", 0), ("target", 1), ("prediction", 2)):
    writer.write_audios(step, {f"audio/{name}": np.stack([np.clip(c[idx], -1, 1) for c in clips])},
                        sample_rate=sample_rate)
  images = [plots.figure_to_array(plots.spectrogram_figure(
      [("raw", c[0]), ("target (your mix)", c[1]), ("prediction", c[2])], sample_rate))
      for c in clips]
  writer.write_images(step, {"spectrograms": np.stack(images)})


def flat_hparams(config):
  """The config as a flat {"group.field": scalar} dict for TensorBoard's hparams tab."""
  flat = {}

  def visit(prefix, node):
    for k, v in node.items():
      key = f"{prefix}{k}"
      if isinstance(v, dict):
        visit(key + ".", v)
      else:
        flat[key] = v if isinstance(v, (int, float, str, bool)) else str(v)

  visit("", config.to_dict())
  return flat

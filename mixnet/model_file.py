"""A trained model as one self-describing file (`.mixnet`), and loading a model from any source.

The file is a safetensors file: an 8-byte little-endian header length, a JSON header, then the
raw tensor bytes. safetensors is a well-kept, dependency-free format that cannot run code on
load (unlike pickles), and its header has a string map, `__metadata__`, where mixnet keeps
everything inference needs, so the file loads without the workdir or the training data:

  format          "mixnet-model"
  format_version  `FORMAT_VERSION`; a reader refuses a file from a newer format
  mixnet_version  the version that wrote it
  meta            JSON: the checkpoint's metadata (resolved config, sample rate, channels, model
                  name, step, validation loss, training data facts such as the mixes' loudness)
  sha256          hex digest over every tensor's name, dtype, shape and bytes

Tensors are the model's parameters, named by their path in the flax tree (`Conv_0/kernel`).
"""

import hashlib
import json
import os
import struct

import numpy as np
import safetensors
import safetensors.numpy
from flax import traverse_util

import mixnet
from mixnet import errors, fileio

FORMAT = "mixnet-model"
FORMAT_VERSION = 1
SUFFIX = ".mixnet"
_SEP = "/"
# A header larger than this is not one we wrote (our headers are a few kB of config).
_MAX_HEADER_BYTES = 16 << 20


class ModelFileError(errors.MixnetError):
  """A model file is missing, truncated, corrupt, not a mixnet model, or from a newer mixnet."""


def _digest(flat):
  h = hashlib.sha256()
  for name in sorted(flat):
    array = np.ascontiguousarray(flat[name])
    h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
    h.update(array.tobytes())
  return h.hexdigest()


def save(path, params, meta):
  """Writes `params` (a nested dict of arrays) and `meta` (JSON-able) to `path`, atomically.

  Returns:
    `path`.
  """
  flat = {_SEP.join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
  metadata = {
      "format": FORMAT,
      "format_version": str(FORMAT_VERSION),
      "mixnet_version": mixnet.__version__,
      "meta": json.dumps(meta, sort_keys=True),
      "sha256": _digest(flat),
  }
  fileio.write_bytes(path, safetensors.numpy.save(flat, metadata=metadata))
  return path


def _read_header(path, data):
  """The JSON header of safetensors bytes `data`, with a clear error for each way it is wrong."""
  if len(data) < 8:
    raise ModelFileError(f"{path}: not a mixnet model file (only {len(data)} bytes)")
  (size,) = struct.unpack("<Q", data[:8])
  if size > _MAX_HEADER_BYTES or data[8:9] != b"{":
    raise ModelFileError(f"{path}: not a mixnet model file (no safetensors header)")
  if len(data) < 8 + size:
    raise ModelFileError(f"{path}: truncated (the header needs {8 + size} bytes, the file has "
                         f"{len(data)}); copy the file again")
  try:
    header = json.loads(data[8:8 + size])
  except ValueError as e:
    raise ModelFileError(f"{path}: corrupt header ({e})") from e
  return header


def _check_metadata(path, metadata):
  if metadata.get("format") != FORMAT:
    raise ModelFileError(f"{path}: not a mixnet model file (a safetensors file without mixnet "
                         "metadata)")
  try:
    version = int(metadata["format_version"])
  except (KeyError, ValueError) as e:
    raise ModelFileError(f"{path}: corrupt metadata (format_version)") from e
  if version > FORMAT_VERSION:
    raise ModelFileError(
        f"{path}: written by mixnet {metadata.get('mixnet_version', '?')} in model-file format "
        f"{version}; this mixnet ({mixnet.__version__}) reads format {FORMAT_VERSION}: upgrade "
        "mixnet to load it")


def load(path):
  """Reads a model file.

  Returns:
    (params, meta): the nested parameter dict of numpy arrays, and the checkpoint metadata.

  Raises:
    ModelFileError: the file is missing, a folder, empty, truncated, corrupt, not a mixnet model
      file, or from a newer format; the message names the file and the problem.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise ModelFileError(f"{path}: is a folder, not a model file")
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise ModelFileError(f"{path}: cannot read the model file ({e.strerror})") from e
  metadata = _read_header(path, data).get("__metadata__") or {}
  _check_metadata(path, metadata)
  try:
    flat = safetensors.numpy.load(data)
    meta = json.loads(metadata["meta"])
  except (safetensors.SafetensorError, KeyError, ValueError) as e:
    raise ModelFileError(f"{path}: corrupt ({type(e).__name__}: {e})") from e
  if _digest(flat) != metadata.get("sha256"):
    raise ModelFileError(f"{path}: corrupt (the parameters do not match the file's checksum)")
  params = traverse_util.unflatten_dict({tuple(k.split(_SEP)): v for k, v in flat.items()})
  return params, meta


def is_model_file(path):
  """True when `path` is a file (not a workdir or checkpoint folder), so `load` should read it."""
  return os.path.isfile(os.fspath(path))


def abstract_params(meta, source, error_cls):
  """The parameter structure (`jax.ShapeDtypeStruct` tree) of the model `meta` describes.

  Raises:
    error_cls: `meta` holds no usable mixnet model config; the message names `source`.
  """
  import jax
  import jax.numpy as jnp
  import ml_collections

  from mixnet import models

  try:
    model_config = ml_collections.ConfigDict(meta["config"]).model
    model = models.build(model_config)
    length = 2 * models.alignment(model_config)
    return jax.eval_shape(
        lambda x: model.init(jax.random.key(0), x)["params"],
        jax.ShapeDtypeStruct((1, length, int(meta["channels"])), jnp.float32))
  except Exception as e:
    raise error_cls(f"{source}: saved config is not a usable mixnet model config "
                    f"({type(e).__name__}: {e})") from e


def _restore_step(located):
  """(params, meta) of one checkpoint step; CheckpointError if it is unusable."""
  import jax

  from mixnet import checkpoints

  meta = checkpoints.load_meta(located)
  abstract = abstract_params(meta, located, checkpoints.CheckpointError)
  return jax.tree.map(np.asarray, checkpoints.load_params(located, abstract)), meta


def _check_shapes(path, params, meta):
  """ModelFileError unless `params` fit the model that `meta`'s config builds."""
  import jax

  want = jax.tree.map(lambda x: tuple(x.shape), abstract_params(meta, path, ModelFileError))
  got = jax.tree.map(lambda x: tuple(np.shape(x)), params)
  if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
    raise ModelFileError(f"{path}: corrupt (the parameters do not match the model built from "
                         "the saved config)")


def load_model(path):
  """Loads a trained model from a model file, a training workdir or a checkpoint folder.

  A workdir or checkpoint folder goes through `mixnet.checkpoints.load`: a corrupt preferred step
  falls back to the newest intact one, with one warning.

  Returns:
    (params, meta, source): the parameters (nested dict of numpy arrays), the checkpoint
    metadata (resolved config, sample rate, channels, ...), and what was read (the file, or the
    checkpoint step folder).

  Raises:
    ModelFileError or mixnet.checkpoints.CheckpointError: nothing loadable is at `path`.
  """
  from mixnet import checkpoints

  path = os.fspath(path)
  if not os.path.exists(path):
    raise ModelFileError(f"{path}: does not exist (expected a {SUFFIX} model file, a training "
                         "workdir or a checkpoint folder)")
  if is_model_file(path):
    params, meta = load(path)
    _check_shapes(path, params, meta)
    return params, meta, path
  located, (params, meta) = checkpoints.load(path, _restore_step)
  return params, meta, str(located)

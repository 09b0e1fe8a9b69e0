"""Data parallelism over every device of every process: mesh, shard_map, host helpers.

The train step is written pmap-style (each device works on its slice of the batch and
`lax.pmean` averages over the `DATA_AXIS`) and runs under `jax.shard_map` over a 1-D mesh of all
devices, the supported successor of `jax.pmap`. `shard_map` takes global arrays, so the same code
runs on one CPU, on several GPUs or TPU cores, and across hosts: each process contributes its
host-local slice of a batch (`shard_batch`), and state is replicated (`replicate`).
"""

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None):
  """A 1-D mesh named `DATA_AXIS` over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices)


def data_parallel(fn, mesh, out_specs, donate_state=False):
  """jit(shard_map(fn)) for fn(replicated, batch_slice): the state whole, the batch split.

  Args:
    fn: per-device function of (a replicated pytree, this device's slice of a batch).
    mesh: from `make_mesh`.
    out_specs: `P()` for replicated outputs, `P(DATA_AXIS)` for per-example ones (pytrees ok).
    donate_state: let XLA reuse the first argument's buffers (it must not be used afterwards).
  """
  mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=out_specs)
  return jax.jit(mapped, donate_argnums=(0,) if donate_state else ())


def shard_batch(mesh, local_batch):
  """Host-local numpy batch (leading axis = this process's examples) -> global arrays."""
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def replicate(mesh, tree):
  """Places a pytree on every device of `mesh`, whole."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def replicated_abstract(mesh, tree):
  """`jax.ShapeDtypeStruct`s of `tree` with replicated shardings (the restore target)."""
  sharding = NamedSharding(mesh, P())
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def to_host(x):
  """A global (possibly multi-process) array as numpy, whole, on every process."""
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def is_primary():
  """True on the process that writes files shared by the run (logs, config, summaries)."""
  return jax.process_index() == 0


def barrier(name):
  """Waits until every process reaches `name` (no-op with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


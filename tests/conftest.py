"""Shared test setup: two simulated CPU devices, small demo pairs, a tiny training config."""

import os
import shutil
import tempfile

# Must happen before jax is imported anywhere: every test sees 2 CPU devices, so data-parallel
# code runs on more than one device here exactly as it would on a GPU/TPU host.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as mixnet.cli sets it (see there)

import pytest  # noqa: E402

_XLA_CACHE = "JAX_COMPILATION_CACHE_DIR"

TEST_SAMPLE_RATE = 16000
VAL_FRACTION = 0.34  # 3 of the 6 demo pairs (by name hash) are held out


@pytest.fixture(scope="session")
def demo_pairs(tmp_path_factory):
  """(raw_dir, mixed_dir) of 6 short synthetic pairs at 16 kHz, written once per session."""
  from mixnet.data import synthetic

  folder = tmp_path_factory.mktemp("demo_pairs")
  synthetic.write_pairs(str(folder), 6, sample_rate=TEST_SAMPLE_RATE, seconds=2.0)
  return str(folder / "raw"), str(folder / "mixed")


@pytest.fixture(scope="session")
def prepared_data_dir(demo_pairs, tmp_path_factory):
  """TFDS shards of `demo_pairs`, prepared once per session."""
  from mixnet.data import prepare

  data_dir = str(tmp_path_factory.mktemp("prepared"))
  prepare.prepare_dataset(*demo_pairs, data_dir, sample_rate=TEST_SAMPLE_RATE,
                          val_fraction=VAL_FRACTION, show_progress=False)
  return data_dir


@pytest.fixture(scope="session")
def tiny_config(demo_pairs, prepared_data_dir):
  """A function `(**train_overrides) -> config`: see `tiny_test_config`."""
  return lambda **overrides: tiny_test_config(demo_pairs, prepared_data_dir, **overrides)


def tiny_test_config(demo_pairs, data_dir, **train_overrides):
  """The real `tiny` preset shrunk further for tests (16 kHz, 0.5 s crops, a few steps)."""
  from experiments import base

  config = base.get_config("tiny")
  config.sample_rate = TEST_SAMPLE_RATE
  config.data.raw_dir, config.data.mixed_dir = demo_pairs
  config.data.data_dir = data_dir
  config.data.val_fraction = VAL_FRACTION  # as prepared, so training reuses the shards
  config.data.segment_seconds = 0.5
  config.model.time_unet.base_width = 4
  config.model.time_unet.max_width = 16
  config.train.update(dict(num_steps=2, per_device_batch=2, eval_every=2, checkpoint_every=1,
                           log_every=1, eval_batches=1, num_audio_summaries=1))
  config.train.update(train_overrides)
  return config


@pytest.fixture(scope="session")
def trained_workdir(demo_pairs, prepared_data_dir, tmp_path_factory):
  """A training workdir of the tiny test model after a few real steps (checkpoints, events)."""
  from mixnet import train_lib

  workdir = str(tmp_path_factory.mktemp("trained"))
  config = tiny_test_config(demo_pairs, prepared_data_dir, num_steps=3, eval_every=3,
                            checkpoint_every=3)
  train_lib.train_and_evaluate(config, workdir)
  return workdir


# The slowest files first: `make test` runs two processes that take whole files
# (`-n 2 --dist loadfile`), and these would otherwise start last and finish alone.
_SLOW_FIRST = ("test_docs.py", "test_multihost.py", "test_train.py", "test_demo.py",
               "test_notebooks.py", "test_infer.py", "test_models.py")


def pytest_configure(config):
  """Gives the test run one XLA compilation cache, shared by every process it starts.

  Most of the suite's time is XLA compiling the same computations again (a model's
  initialisers, the tiny model's train and eval steps) in every test and in every CLI or
  notebook kernel a test starts. The cache is keyed by the computation, so a hit loads the very
  executable a compile would produce. The xdist controller makes it and its workers inherit it
  (as do their subprocesses); a cache already set in the environment is used as is. jax writes
  an entry without a lock: a process that reads one while another writes it warns and compiles.
  """
  # xdist otherwise queues files by test count (most first), which would start the slow
  # one-test files last: `pytest_collection_modifyitems`' order is the one the workers get.
  if hasattr(config.option, "loadscopereorder"):
    config.option.loadscopereorder = False
  if _XLA_CACHE in os.environ:
    return
  config.xla_cache_dir = tempfile.mkdtemp(prefix="mixnet-test-xla-cache-")
  os.environ[_XLA_CACHE] = config.xla_cache_dir
  # Everything: the initialisers' many sub-second compiles are most of a short run's start-up.
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"


def pytest_unconfigure(config):
  if hasattr(config, "xla_cache_dir"):
    shutil.rmtree(config.xla_cache_dir, ignore_errors=True)


def pytest_collection_modifyitems(items):
  def rank(item):
    name = item.path.name
    return _SLOW_FIRST.index(name) if name in _SLOW_FIRST else len(_SLOW_FIRST)

  items.sort(key=rank)  # stable: order within each file is kept

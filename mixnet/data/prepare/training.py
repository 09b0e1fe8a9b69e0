"""A training run's data step: the shards for `config.data`, built once for every host.

Kept apart from `mixnet.data.prepare` itself because it needs JAX (`mixnet.parallel`: process
index, barrier), and the input pipeline, which imports `prepare`, must stay free of JAX.
"""

import os

from mixnet import parallel
from mixnet.data import prepare


def prepare_data(config, workdir):
  """Builds (or reuses) the TFDS shards for `config.data`.

  Returns:
    (data_dir, facts): facts are the source folders and the summary's totals (pair and second
    counts, the training mixes' median loudness, the held-out pair names), on process 0 only;
    they are saved with every checkpoint, so evaluation knows which pairs were held out.

  Process 0 builds; the others wait at a barrier. In multi-host runs `data_dir` must be on
  storage every host sees.
  """
  data_dir = config.data.data_dir or os.path.join(workdir, "data")
  facts = {}
  if parallel.is_primary():
    summary = prepare.prepare_from_config(config.data, data_dir,
                                          os.path.join(workdir, "demo_pairs"))
    facts = {"raw_dir": summary["settings"]["raw_dir"],
             "mixed_dir": summary["settings"]["mixed_dir"], **summary["totals"]}
  parallel.barrier("mixnet data prepared")
  return data_dir, facts

"""Config overrides from a notebook form: dotted names to values, misspellings caught."""


def apply_overrides(config, overrides):
  """Sets `config` fields from {"group.field": value}; unknown fields are an error.

  (`ConfigDict.update_from_flattened_dict` silently ignores a misspelt name.)

  Raises:
    KeyError: a name is not a field of `config`; the message lists the group's fields.
  """
  for dotted, value in overrides.items():
    *parents, field = dotted.split(".")
    node = config
    for i, name in enumerate(parents + [field]):
      if name not in node:
        where = ".".join(parents[:i]) or "config"
        raise KeyError(f"config override {dotted!r}: {where} has no field {name!r} "
                       f"(fields: {', '.join(sorted(node.keys()))})")
      if i < len(parents):
        node = node[name]
    setattr(node, field, value)
  return config

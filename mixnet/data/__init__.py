"""Paired data: pairing, alignment, TFDS shards, the prepare CLI and synthetic demo pairs."""

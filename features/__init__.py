"""Feature pipelines: one code path for training, batch scoring and online serving."""

"""Fitted models that scoring needs (no training-only code): pickled into the versioned artifact."""

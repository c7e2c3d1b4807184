"""The BentoML scoring service."""

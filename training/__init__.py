"""Training: LightGBM models, evaluation, MLflow tracking and registry."""

import features  # noqa: F401 - first, so OpenMP waits passively before LightGBM loads (features/__init__.py)

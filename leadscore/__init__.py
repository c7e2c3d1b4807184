"""leadscore: lead health scores, real stages, close dates and next actions for B2B sales teams."""

import features  # noqa: F401 - first, so OpenMP waits passively before LightGBM loads (features/__init__.py)

__version__ = "0.1.0"

"""leadscore: lead health scores, real stages, close dates and next actions for B2B sales teams."""

__version__ = "0.1.0"

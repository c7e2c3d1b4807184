"""Training: LightGBM models, evaluation, MLflow tracking and registry."""

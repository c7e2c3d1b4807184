"""The core both training and serving use: the model contract and registry, the fitted models, the versioned
artifact, explanations, next actions and the typed answer. It imports only `features` and libraries."""

"""The feature catalogue, assembled from the groups that compute the features (each declares its specs beside
its code): every feature's stable name, group and the Chinese sentence template explanations fill."""

from __future__ import annotations

from features import behaviour, followup, profile, rules, screening, text_features
from features.spec import GROUPS, FeatureSpec

__all__ = ["CATALOGUE", "CATEGORICAL", "DETAIL_COLUMNS", "FEATURES", "GROUPS", "FeatureSpec", "TEXT_FORM", "TEXT_NOTES"]

# Catalogue order is the models' column order: changing it changes the trees fitted on it.
_SPECS: list[FeatureSpec] = [
    *profile.SPECS,
    *followup.OWNER_SPECS,
    *behaviour.SPECS,
    *followup.SPECS,
    *text_features.SPECS,
    *rules.SPECS,
    *followup.RULE_SPECS,
    *screening.SPECS,
]
CATALOGUE: dict[str, FeatureSpec] = {spec.name: spec for spec in _SPECS}
if len(CATALOGUE) != len(_SPECS):
    raise RuntimeError("two feature groups declare a feature of the same name")
FEATURES: list[str] = list(CATALOGUE)
CATEGORICAL: list[str] = [n for n, spec in CATALOGUE.items() if spec.categorical]
# Beside the features, `FeaturePipeline.transform(..., details=True)` returns what models and users read that is
# not a model input: the normalised form text, the latest notes at as_of, and the lead a duplicate repeats.
TEXT_FORM, TEXT_NOTES = "text_form", "text_notes"
DETAIL_COLUMNS: list[str] = [TEXT_FORM, TEXT_NOTES, "duplicate_of"]

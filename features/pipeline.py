"""Features of (lead, as_of) snapshots: one code path for training, batch scoring and the online service.

`FeaturePipeline.fit_transform(tables, snapshots, y)` learns what needs learning (category levels, the
out-of-fold text models, the owners' history) and returns the training rows' features;
`transform(tables, snapshots)` computes the same features for any snapshots, reading only rows stamped at
or before each snapshot's as_of. Both return one frame: the catalogue's features, plus (with
`details=True`) the texts the stage model reads and the lead a duplicate repeats.

The features that read *other* leads (the owner's figures, the duplicate screen) are the snapshots'
*context*: `context(tables, snapshots)` computes them from the leads and outcomes tables alone, and
`transform(..., context=...)` takes them ready-made. That is the seam through which a cluster computes
them once over all leads, and the service scores several requests together without one seeing another's
leads (each request's context is its own).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from features.behaviour import behaviour_features
from features.catalogue import CATEGORICAL, DETAIL_COLUMNS, FEATURES, TEXT_FORM, TEXT_NOTES
from features.contract import STAGE_RANK
from features.followup import OWNER_COLUMNS, OwnerHistory, followup_features, owner_features
from features.pointintime import EventIndex, lead_codes
from features.profile import profile_features
from features.rules import PROFILE_FIELDS, health_radar, lead_activity_index
from features.screening import ScreeningConfig, screening_features, text_flags
from features.text import OutOfFoldTextClassifier, normalize_series
from features.text_features import latest_notes, normalised_notes, text_features

FEATURE_SET_VERSION = "features-3"
TEXT_MODELS = {"form_text_win_p": TEXT_FORM, "notes_win_p": TEXT_NOTES, "notes_stage_level": TEXT_NOTES}


def _check_snapshots(tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> np.ndarray:
    missing = [c for c in ("lead_id", "as_of") if c not in snapshots.columns]
    if missing:
        raise ValueError(f"snapshots need columns lead_id and as_of; missing: {', '.join(missing)}")
    code = lead_codes(snapshots["lead_id"], pd.Index(tables["leads"]["lead_id"]))
    if (code < 0).any():
        raise KeyError(f"snapshot lead_id {snapshots['lead_id'][code < 0].iloc[0]!r} is not in the leads table")
    return code


def owner_history(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Who owned which lead, its industry, when it came in and how it ended: for the owner figures."""
    leads = tables["leads"][["lead_id", "owner_id", "industry", "created_at"]]
    outcomes = tables["outcomes"][["lead_id", "status", "closed_at"]]
    return leads.merge(outcomes, on="lead_id", how="left")


def lead_context(
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    owner_parts: list[tuple] | None = None,
    screening: ScreeningConfig | None = None,
    earlier: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The features that read other leads, one row per snapshot: the owner's figures as of each snapshot
    (from `owner_parts`, default the tables' own history) and the contact screens with `duplicate_of` (a
    duplicate is an earlier lead with the same phone). Needs only the leads and outcomes tables. `earlier`:
    leads rows seen before (a lead store's), which the duplicate screen also compares with; they are not
    scored and do not count in the owner figures."""
    code = _check_snapshots(tables, snapshots)
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    leads = tables["leads"].reset_index(drop=True)
    lead = leads.iloc[code].reset_index(drop=True)
    owner_parts = owner_parts or [(OwnerHistory(owner_history(tables)), 1)]
    owners = owner_features(owner_parts, lead["owner_id"], lead["industry"], as_of)
    screen = _screen(leads, screening or ScreeningConfig.default(), earlier)
    return pd.concat([owners, screen.iloc[code].reset_index(drop=True)], axis=1)


def _screen(leads: pd.DataFrame, screening: ScreeningConfig, earlier: pd.DataFrame | None) -> pd.DataFrame:
    """`screening_features` of `leads` (in order), the earlier leads taking part in the duplicate search."""
    if earlier is None or earlier.empty:
        return screening_features(leads, screening)
    earlier = earlier[~earlier["lead_id"].isin(leads["lead_id"])]
    both = pd.concat([leads, earlier[[c for c in leads.columns if c in earlier.columns]]], ignore_index=True)
    return screening_features(both, screening).iloc[: len(leads)].reset_index(drop=True)


def raw_features(
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    *,
    context: pd.DataFrame | None = None,
    screening: ScreeningConfig | None = None,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Every feature that needs no fitting, then the DETAIL_COLUMNS; one row per snapshot, in order.
    `context` is `lead_context` of the snapshots computed beforehand (then `tables` may hold only the
    snapshots' leads and their events); without it, it is computed from `tables`. `timings`, if given,
    receives seconds per group."""
    clock = _Clock(timings)
    code = _check_snapshots(tables, snapshots)
    known = pd.Index(tables["leads"]["lead_id"])
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    leads = tables["leads"].reset_index(drop=True)
    lead = leads.iloc[code].reset_index(drop=True)
    profile = profile_features(lead, as_of)
    web, acts, stages = tables["web_events"], tables["activities"], tables["stage_changes"]
    clock.lap("画像 profile")
    behaviour = behaviour_features(web, lead_codes(web["lead_id"], known), code, as_of)
    clock.lap("行为 behaviour")
    act_codes = lead_codes(acts["lead_id"], known)
    created = lead["created_at"]
    followup = followup_features(acts, act_codes, stages, lead_codes(stages["lead_id"], known), code, as_of, created)
    if context is None:
        context = lead_context(tables, snapshots, screening=screening)
    elif len(context) != len(snapshots):
        raise ValueError(f"context has {len(context)} rows for {len(snapshots)} snapshots")
    context = context.reset_index(drop=True)
    clock.lap("跟进 follow-up and owner")

    form_by_lead = normalize_series(leads["form_text"], "leads.form_text")  # each lead's form once
    form = form_by_lead.iloc[code].reset_index(drop=True)
    own_text_screens = text_flags(form_by_lead).iloc[code].reset_index(drop=True)
    notes_per_row = normalised_notes(acts)
    notes_index = EventIndex(act_codes, acts["ts"])
    text = text_features(form, notes_per_row, notes_index, code, as_of, created)
    clock.lap("文本 text (normalise, lexicon, notes)")
    parts = [profile, behaviour, followup, context.drop(columns="duplicate_of"), text, own_text_screens]
    features = pd.concat(parts, axis=1)
    present = pd.DataFrame(
        {
            "industry": lead["industry"].notna(),
            "customer_type": lead["customer_type"].notna(),
            "company_size": lead["company_size"].notna(),
            "budget_cny": lead["budget_cny"].notna(),
            "company_name": lead["company_name"].notna(),
            "province": lead["province"].notna() | lead["city"].notna(),
            "contact": lead["phone"].notna() | lead["email"].notna(),
            "form_text": form != "",
        }
    )[PROFILE_FIELDS]
    features["lai"] = lead_activity_index(features)
    features = pd.concat([features, health_radar(features, present)], axis=1)
    features[TEXT_FORM] = form.to_numpy(object)
    features[TEXT_NOTES] = latest_notes(notes_index, code, as_of, notes_per_row).to_numpy(object)
    features["duplicate_of"] = context["duplicate_of"].to_numpy(object)
    clock.lap("规则 screening and rule indices")
    return features


class _Clock:
    """Seconds per step into a dict, when one is given."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


class FeaturePipeline:
    """The fitted feature pipeline: category levels, out-of-fold text models and the owners' history.

    Like scikit-learn's TargetEncoder, `fit_transform` is not `fit(...).transform(...)`: on the training rows
    the text models' features are cross-fitted (grouped by lead), so no downstream model sees a text model's
    verdict on text it was fitted on."""

    def __init__(
        self, screening: ScreeningConfig | None = None, max_text_rows: int = 40_000, random_state: int = 0
    ) -> None:
        self.screening = screening
        self.max_text_rows = max_text_rows
        self.random_state = random_state

    feature_set_version = FEATURE_SET_VERSION

    def fit(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, y: np.ndarray) -> FeaturePipeline:
        self.fit_transform(tables, snapshots, y)
        return self

    def fit_transform(
        self,
        tables: dict[str, pd.DataFrame],
        snapshots: pd.DataFrame,
        y: np.ndarray,
        *,
        raw: pd.DataFrame | None = None,
        details: bool = False,
    ) -> pd.DataFrame:
        """Features of training snapshots; text-model features are out-of-fold (grouped by lead).
        `raw`: `raw_features` of these snapshots computed elsewhere (per partition on a cluster)."""
        self.screening_ = self.screening or ScreeningConfig.default()
        self.history_ = owner_history(tables)
        features = (raw if raw is not None else raw_features(tables, snapshots, screening=self.screening_)).copy()
        y = np.asarray(y)
        groups = snapshots["lead_id"].to_numpy()
        stage = features["recorded_stage"].map(STAGE_RANK)
        self.text_models_ = {}
        targets = {"form_text_win_p": (y, None), "notes_win_p": (y, None),
                   "notes_stage_level": (stage.to_numpy(), stage.notna().to_numpy())}  # fmt: skip
        for name, (target, usable) in targets.items():
            known = target if usable is None else target[usable]
            if len(pd.unique(known)) < 2:  # e.g. an export without stage history: nothing to learn, left missing
                features[name] = np.nan
                continue
            features[name] = self._fit_text_model(name, features[TEXT_MODELS[name]], target, groups, usable)
        self.category_levels_ = {
            c: sorted(features[c].dropna().astype(str).value_counts().loc[lambda s: s >= 5].index) for c in CATEGORICAL
        }
        return self._finish(features, details)

    def _fit_text_model(self, name, text: pd.Series, target, groups, usable) -> np.ndarray:
        usable = np.ones(len(text), dtype=bool) if usable is None else usable
        if len(np.unique(np.asarray(target)[usable])) < 2:  # nothing to learn, e.g. an export without stages
            return np.full(len(text), np.nan)
        if len(np.unique(np.asarray(target)[usable])) < 2:  # nothing to learn, e.g. an export without stages
            return np.full(len(text), np.nan)
        rng = np.random.default_rng(self.random_state)
        lead_ids = pd.unique(groups[usable])
        rows_per_lead = pd.Series(groups[usable]).value_counts()
        shuffled = rng.permutation(lead_ids)
        keep_leads = shuffled[
            : max(1, int(np.searchsorted(rows_per_lead.reindex(shuffled).cumsum().to_numpy(), self.max_text_rows)))
        ]
        in_sample = usable & np.isin(groups, keep_leads)
        model = OutOfFoldTextClassifier(random_state=self.random_state)
        frame = text.reset_index(drop=True).to_frame()
        out = np.full(len(text), np.nan)
        oof = model.fit_transform(frame[in_sample], target[in_sample], groups=groups[in_sample])
        out[in_sample] = self._reduce(name, model, oof)
        # Rows of leads the model never saw get its honest prediction.
        if (~in_sample).any():
            out[~in_sample] = self._reduce(name, model, model.transform(frame[~in_sample]))
        self.text_models_[name] = model
        return out

    @staticmethod
    def _reduce(name: str, model: OutOfFoldTextClassifier, proba: np.ndarray) -> np.ndarray:
        if name == "notes_stage_level":  # expected stage rank
            return proba @ model.classes_.astype(float)
        return proba[:, list(model.classes_).index(True)] if True in model.classes_ else np.zeros(len(proba))

    def transform(
        self,
        tables: dict[str, pd.DataFrame],
        snapshots: pd.DataFrame,
        *,
        context: pd.DataFrame | None = None,
        details: bool = False,
        timings: dict[str, float] | None = None,
    ) -> pd.DataFrame:
        """Features (and with `details` the DETAIL_COLUMNS) of any snapshots. `context`: this pipeline's
        `context` of the snapshots, computed beforehand (over all leads of an export, or per request)."""
        if context is None:
            context = self.context(tables, snapshots)
        features = raw_features(tables, snapshots, context=context, screening=self.screening_, timings=timings)
        clock = _Clock(timings)
        for name, source in TEXT_MODELS.items():
            model = self.text_models_.get(name)  # absent when training had nothing to learn it from
            features[name] = self._reduce(name, model, model.transform(features[[source]])) if model else np.nan
        clock.lap("文本 text models (TF-IDF + linear)")
        return self._finish(features, details)

    def context(
        self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, earlier: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """`lead_context` as scoring needs it: the owners' figures from `owner_parts(tables)`, the screening
        within the tables (and against `earlier` leads rows, e.g. a lead store's)."""
        return lead_context(tables, snapshots, self.owner_parts(tables), self.screening_, earlier)

    def owner_parts(self, tables: dict[str, pd.DataFrame]) -> list[tuple]:
        """The histories the owners' figures add up (see `owner_features`): the training history, minus what it
        knew of these leads, plus what the tables say now."""
        overlap = self.history_[self.history_["lead_id"].isin(tables["leads"]["lead_id"])]
        return [(self._stored_owners(), 1), (OwnerHistory(overlap), -1), (OwnerHistory(owner_history(tables)), 1)]

    def owner_figures(self, owner: pd.Series, industry: pd.Series, as_of: pd.Series) -> pd.DataFrame:
        """OWNER_COLUMNS for owners, industries and times from the training history alone."""
        return owner_features([(self._stored_owners(), 1)], owner, industry, as_of)

    def warm_up(self) -> FeaturePipeline:
        """Load what the first request would otherwise wait for: jieba's dictionaries, the owner index."""
        for model in self.text_models_.values():
            model.model_.words.tokenizer.warm_up()
        self._stored_owners()
        return self

    def _stored_owners(self) -> OwnerHistory:
        """The training history's owner index, built once per process (not pickled)."""
        if getattr(self, "_owners", None) is None:
            self._owners = OwnerHistory(self.history_)
        return self._owners

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_owners"}

    def _finish(self, features: pd.DataFrame, details: bool) -> pd.DataFrame:
        """Catalogue order; categories with the training levels (unseen -> missing); numbers as float."""
        categories = {
            column: pd.Categorical(
                features[column].astype(object).where(features[column].notna(), None),
                categories=self.category_levels_[column],
            )
            for column in CATEGORICAL
        }
        # One cast of all the numbers and one concat: column by column cost most of a small batch's features.
        parts = [features[_NUMERIC].astype("float64"), pd.DataFrame(categories, index=features.index)]
        if details:
            parts.append(features[DETAIL_COLUMNS])
        return pd.concat(parts, axis=1)[FEATURES + (DETAIL_COLUMNS if details else [])].copy()


_NUMERIC = [c for c in FEATURES if c not in CATEGORICAL]

__all__ = ["FEATURE_SET_VERSION", "OWNER_COLUMNS", "FeaturePipeline", "lead_context", "owner_history", "raw_features"]

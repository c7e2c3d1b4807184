"""Features of (lead, as_of) snapshots: one code path for training, batch scoring and the online service.

`FeaturePipeline.fit_transform(tables, snapshots, y)` learns what needs learning (category levels, the
out-of-fold text models, the owners' history); `transform(tables, snapshots)` computes the same
features for any snapshots, reading only rows stamped at or before each snapshot's as_of.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.behaviour import behaviour_features
from features.catalogue import CATEGORICAL, FEATURES
from features.contract import TABLES
from features.followup import OwnerHistory, followup_features, owner_features
from features.pointintime import EventIndex, lead_codes
from features.rules import PROFILE_FIELDS, health_radar, lead_activity_index
from features.screening import ScreeningConfig, screening_features
from features.text import OutOfFoldTextClassifier, lexicon_counts, normalize_series

FEATURE_SET_VERSION = "features-3"
DAY = pd.Timedelta(days=1)
LAST_NOTES = 10  # the notes a text model reads: the latest ten at as_of
OWNER_COLUMNS = ["owner_win_rate", "owner_closed_deals", "owner_open_load", "owner_industry_wins"]
TEXT_MODELS = ("form_text_win_p", "notes_win_p", "notes_stage_level")
STAGE_RANK = {s: i for i, s in enumerate(TABLES["stage_changes"].fields[2].choices)}


@dataclass
class SnapshotTexts:
    form: pd.Series  # normalised form text per snapshot
    notes: pd.Series  # the latest notes at as_of, normalised and joined


def _check_snapshots(tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> np.ndarray:
    missing = [c for c in ("lead_id", "as_of") if c not in snapshots.columns]
    if missing:
        raise ValueError(f"snapshots need columns lead_id and as_of; missing: {', '.join(missing)}")
    code = lead_codes(snapshots["lead_id"], pd.Index(tables["leads"]["lead_id"]))
    if (code < 0).any():
        raise KeyError(f"snapshot lead_id {snapshots['lead_id'][code < 0].iloc[0]!r} is not in the leads table")
    return code


def _history(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Who owned which lead, its industry, when it came in and how it ended: for the owner figures."""
    leads = tables["leads"][["lead_id", "owner_id", "industry", "created_at"]]
    outcomes = tables["outcomes"][["lead_id", "status", "closed_at"]]
    return leads.merge(outcomes, on="lead_id", how="left")


def _latest_notes(index: EventIndex, code: np.ndarray, as_of: pd.Series, notes: pd.Series) -> pd.Series:
    """The latest LAST_NOTES notes at or before each as_of, oldest first, joined."""
    start, end = index.positions_until(code, as_of)
    start = np.maximum(start, end - LAST_NOTES)
    ordered = notes.to_numpy(object)[index.order]
    return pd.Series([" ".join(ordered[a:b]) for a, b in zip(start, end, strict=True)], dtype=object)


def lead_context(
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    owner_parts: list[tuple] | None = None,
    screening: ScreeningConfig | None = None,
    form_by_lead: pd.Series | None = None,
) -> pd.DataFrame:
    """The features that read other leads: the owner's figures as of each snapshot and the screening flags
    (a duplicate is an earlier lead with the same phone). One row per snapshot. They need only the leads
    and outcomes tables, so a cluster computes them once over all leads while each partition of leads
    computes the rest from its own events (`raw_features(..., context=...)`)."""
    code = _check_snapshots(tables, snapshots)
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    leads = tables["leads"].reset_index(drop=True)
    lead = leads.iloc[code].reset_index(drop=True)
    owner_parts = owner_parts or [(OwnerHistory(_history(tables)), 1)]
    owners = owner_features(owner_parts, lead["owner_id"], lead["industry"], as_of)
    if form_by_lead is None:  # raw_features passes the forms it normalised already
        form_by_lead = normalize_series(leads["form_text"], "leads.form_text")
    screen = screening_features(leads, form_by_lead, screening or ScreeningConfig.default())
    return pd.concat([owners, screen.iloc[code].reset_index(drop=True)], axis=1)


def raw_features(
    tables: dict[str, pd.DataFrame],
    snapshots: pd.DataFrame,
    owner_parts: list[tuple] | None = None,
    screening: ScreeningConfig | None = None,
    timings: dict[str, float] | None = None,
    context: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, SnapshotTexts, pd.DataFrame]:
    """Every feature that needs no fitting, the snapshot texts, and per-snapshot details for users
    (duplicate_of). One row per snapshot, in order. `timings`, if given, receives seconds per group.
    `context` is `lead_context` computed beforehand over all leads (then `tables` may hold only the
    snapshots' leads and their events); without it, it is computed here from `tables`."""
    clock = _Clock(timings)
    code = _check_snapshots(tables, snapshots)
    known = pd.Index(tables["leads"]["lead_id"])
    as_of = pd.to_datetime(snapshots["as_of"]).reset_index(drop=True)
    leads = tables["leads"].reset_index(drop=True)
    lead = leads.iloc[code].reset_index(drop=True)
    created = lead["created_at"]

    profile = pd.DataFrame(
        {
            "days_since_created": ((as_of - created) / DAY).to_numpy(float),
            "created_hour": created.dt.hour.to_numpy(float),
            "created_on_weekend": (created.dt.dayofweek >= 5).to_numpy(float),
            "company_size": lead["company_size"].to_numpy(float),
            "budget_cny": lead["budget_cny"].to_numpy(float),
            "has_email": lead["email"].notna().to_numpy(float),
            "has_phone": lead["phone"].notna().to_numpy(float),
            "has_company_name": lead["company_name"].notna().to_numpy(float),
        }
    )
    for column in ["channel", "industry", "customer_type", "province"]:
        profile[column] = lead[column].to_numpy(object)

    web, acts, stages = tables["web_events"], tables["activities"], tables["stage_changes"]
    clock.lap("画像 profile")
    behaviour = behaviour_features(web, lead_codes(web["lead_id"], known), code, as_of)
    clock.lap("行为 behaviour")
    act_codes = lead_codes(acts["lead_id"], known)
    followup = followup_features(acts, act_codes, stages, lead_codes(stages["lead_id"], known), code, as_of, created)
    form_by_lead = normalize_series(leads["form_text"], "leads.form_text")
    if context is None:
        context = lead_context(tables, snapshots, owner_parts, screening, form_by_lead)
    elif len(context) != len(snapshots):
        raise ValueError(f"context has {len(context)} rows for {len(snapshots)} snapshots")
    context = context.reset_index(drop=True)
    owners = context[OWNER_COLUMNS]
    clock.lap("跟进 follow-up and owner")

    form = form_by_lead.iloc[code].reset_index(drop=True)
    unique_notes = pd.Series(acts["note"].unique())
    normalised = dict(zip(unique_notes, normalize_series(unique_notes, "activities.note"), strict=True))
    notes_per_row = acts["note"].map(normalised).fillna("").astype(str)
    all_notes = EventIndex(act_codes, acts["ts"])
    notes = _latest_notes(all_notes, code, as_of, notes_per_row)
    text = lexicon_counts(form, "form")
    text.insert(0, "form_text_chars", form.str.len().to_numpy(float))
    text["form_amounts"] = form.str.count("AMOUNT").to_numpy(float)
    text["form_dates"] = form.str.count("DATE").to_numpy(float)
    # Note keywords summed over every note up to as_of (not only the latest ten).
    row_counts = lexicon_counts(notes_per_row, "notes")
    row_counts["notes_chars"] = notes_per_row.str.len().to_numpy(float)
    row_counts["notes_dates"] = notes_per_row.str.count("DATE").to_numpy(float)
    start = created - DAY * 3650
    for column in row_counts.columns:
        text[column] = all_notes.sum_between(row_counts[column].to_numpy(float), code, start, as_of)

    clock.lap("文本 text (normalise, lexicon, notes)")
    screen = context.drop(columns=OWNER_COLUMNS)
    features = pd.concat([profile, behaviour, followup, owners, text, screen.drop(columns="duplicate_of")], axis=1)
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
    details = pd.DataFrame({"duplicate_of": screen["duplicate_of"].to_numpy(object)})
    clock.lap("规则 screening and rule indices")
    return features, SnapshotTexts(form, notes), details


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
    """The fitted feature pipeline: category levels, out-of-fold text models and the owners' history."""

    def __init__(
        self, screening: ScreeningConfig | None = None, max_text_rows: int = 40_000, random_state: int = 0
    ) -> None:
        self.screening = screening or ScreeningConfig.default()
        self.max_text_rows = max_text_rows
        self.random_state = random_state
        self.feature_set_version = FEATURE_SET_VERSION

    def fit_transform(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
        """Features of training snapshots; text-model features are out-of-fold (grouped by lead)."""
        return self.fit_transform_with_details(tables, snapshots, y)[0]

    def fit_transform_with_details(
        self,
        tables: dict[str, pd.DataFrame],
        snapshots: pd.DataFrame,
        y: np.ndarray,
        raw: tuple[pd.DataFrame, SnapshotTexts] | None = None,
    ) -> tuple[pd.DataFrame, SnapshotTexts]:
        """`fit_transform`, also returning the snapshot texts (for models that read notes themselves).
        `raw`: `raw_features` of these snapshots computed elsewhere (per partition on a cluster)."""
        self.history_ = _history(tables)
        features, texts = raw or raw_features(tables, snapshots, None, self.screening)[:2]
        features = features.copy()
        y = np.asarray(y)
        groups = snapshots["lead_id"].to_numpy()
        stage = features["recorded_stage"].map(STAGE_RANK)
        self.text_models_ = {}
        specs = [("form_text_win_p", texts.form, y, None), ("notes_win_p", texts.notes, y, None),
                 ("notes_stage_level", texts.notes, stage.to_numpy(), stage.notna().to_numpy())]  # fmt: skip
        for name, text, target, usable in specs:
            features[name] = self._fit_text_model(name, text, target, groups, usable)
        self.category_levels_ = {
            c: sorted(features[c].dropna().astype(str).value_counts().loc[lambda s: s >= 5].index) for c in CATEGORICAL
        }
        return self._finish(features), texts

    def _fit_text_model(self, name, text: pd.Series, target, groups, usable) -> np.ndarray:
        usable = np.ones(len(text), dtype=bool) if usable is None else usable
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
        frame = text.to_frame()
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

    def transform(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> pd.DataFrame:
        features, texts, _ = self.transform_with_details(tables, snapshots)
        return features

    def transform_with_details(
        self,
        tables: dict[str, pd.DataFrame],
        snapshots: pd.DataFrame,
        timings: dict[str, float] | None = None,
        context: pd.DataFrame | None = None,
    ):
        """Features, texts and user-facing details (duplicate_of) for any snapshots; `timings` and `context`
        (this pipeline's `context` of the snapshots over all leads) as in raw_features."""
        parts = None if context is not None else self._owner_parts(tables, snapshots)
        features, texts, details = raw_features(tables, snapshots, parts, self.screening, timings, context)
        clock = _Clock(timings)
        for name in TEXT_MODELS:
            model = self.text_models_.get(name)  # absent when training had nothing to learn it from
            source = texts.form if name == "form_text_win_p" else texts.notes
            features[name] = (
                self._reduce(name, model, model.transform(source.to_frame())) if model is not None else np.nan
            )
        clock.lap("文本 text models (TF-IDF + linear)")
        return self._finish(features), texts, details

    def context(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> pd.DataFrame:
        """`lead_context` as `transform` computes it: from the leads and outcomes tables of the export
        (its events are not read), for scoring the export's leads in partitions."""
        return lead_context(tables, snapshots, self._owner_parts(tables, snapshots), self.screening)

    def _owner_parts(self, tables: dict[str, pd.DataFrame], snapshots: pd.DataFrame) -> list[tuple]:
        """Owner figures: the training history, minus what it knew of these leads, plus what the tables say
        now. Leads of several requests scored together carry `request_group` (and their id as sent,
        `request_lead_id`): each request then sees the history and itself only, as if scored alone."""
        leads = tables["leads"]
        if "request_group" not in leads:
            overlap = self.history_[self.history_["lead_id"].isin(leads["lead_id"])]
            return [(self._stored_owners(), 1), (OwnerHistory(overlap), -1), (OwnerHistory(_history(tables)), 1)]
        parts: list[tuple] = [(self._stored_owners(), 1)]
        row_group = snapshots["lead_id"].map(leads.set_index("lead_id")["request_group"]).to_numpy()
        for group, own in leads.groupby("request_group", sort=False):
            rows = row_group == group
            overlap = self.history_[self.history_["lead_id"].isin(own["request_lead_id"])]
            outcomes = tables["outcomes"][tables["outcomes"]["lead_id"].isin(own["lead_id"])]
            mine = OwnerHistory(_history({"leads": own, "outcomes": outcomes}))
            parts += [(OwnerHistory(overlap), -1, rows), (mine, 1, rows)]
        return parts

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

    def _finish(self, features: pd.DataFrame) -> pd.DataFrame:
        """Catalogue order; categories with the training levels (unseen -> missing); numbers as float."""
        out = features[FEATURES].copy()
        for column in CATEGORICAL:
            values = out[column].astype(object).where(out[column].notna(), None)
            out[column] = pd.Categorical(values, categories=self.category_levels_[column])
        for column in out.columns.difference(CATEGORICAL):
            out[column] = out[column].astype("float64")
        return out

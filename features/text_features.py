"""The text feature group as of T: the form text's and the notes' lengths, masks (amounts, dates) and
readable lexicon counts, plus the texts the fitted text models read (the latest notes at T). The notes are
read only through EventIndex, so only notes stamped at or before T count."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.pointintime import EventIndex, as_of_seconds
from features.spec import FeatureSpec
from features.text import LEXICON, lexicon_counts, normalize_series

DAY = pd.Timedelta(days=1)
LAST_NOTES = 10  # the notes a text model reads: the latest ten at as_of
LEXICON_ZH = {
    "sample_test": "样品/测试",
    "quotation": "报价",
    "tender": "招标/比价",
    "contract": "合同/审批",
    "payment": "付款",
    "decision_chain": "决策链人物",
    "demo": "演示",
    "competitor": "竞品对比",
    "negative": "负面信号",
    "spam": "广告/垃圾信息",
    "job_seeker": "求职",
    "service": "售后维修",
    "need_detail": "需求细节",
}
# The three text-model features are filled by the fitted pipeline (FeaturePipeline), out of fold in training.
TEXT_MODEL_SPECS = [
    FeatureSpec("form_text_win_p", "文本", "留言内容的成交信号{v}"),
    FeatureSpec("notes_win_p", "文本", "跟进记录的成交信号{v}"),
    FeatureSpec("notes_stage_level", "文本", "跟进记录显示的进展程度{v}"),
]
SPECS = (
    [
        FeatureSpec("form_text_chars", "文本", "表单留言{v}字"),
        FeatureSpec("form_amounts", "文本", "留言提到金额{v}处"),
        FeatureSpec("form_dates", "文本", "留言提到时间{v}处"),
        FeatureSpec("notes_chars", "文本", "跟进记录共{v}字"),
        FeatureSpec("notes_dates", "文本", "跟进记录提到时间{v}处"),
    ]
    + TEXT_MODEL_SPECS
    + [
        FeatureSpec(f"{source}_kw_{group}", "文本", f"{label}提到{LEXICON_ZH[group]}{{v}}次")
        for source, label in (("form", "留言"), ("notes", "跟进记录"))
        for group in LEXICON
    ]
)


def normalised_notes(acts: pd.DataFrame) -> pd.Series:
    """Every activity's note normalised (each distinct note once: notes repeat a lot)."""
    unique_notes = pd.Series(acts["note"].unique())
    normalised = dict(zip(unique_notes, normalize_series(unique_notes, "activities.note"), strict=True))
    return acts["note"].map(normalised).fillna("").astype(str)


def latest_notes(index: EventIndex, code: np.ndarray, as_of: pd.Series, notes: pd.Series) -> pd.Series:
    """The latest LAST_NOTES notes at or before each as_of, oldest first, joined."""
    start, end = index.positions_until(code, as_of)
    start = np.maximum(start, end - LAST_NOTES)
    ordered = notes.to_numpy(object)[index.order]
    return pd.Series([" ".join(ordered[a:b]) for a, b in zip(start, end, strict=True)], dtype=object)


def text_features(
    form: pd.Series, notes_per_row: pd.Series, notes_index: EventIndex, code: np.ndarray, as_of, created
) -> pd.DataFrame:
    """Per snapshot: the form text's counts (`form`: its normalised form text) and the notes' counts summed
    over every note up to as_of (not only the latest ten)."""
    text = lexicon_counts(form, "form")
    text.insert(0, "form_text_chars", form.str.len().to_numpy(float))
    text["form_amounts"] = form.str.count("AMOUNT").to_numpy(float)
    text["form_dates"] = form.str.count("DATE").to_numpy(float)
    row_counts = lexicon_counts(notes_per_row, "notes")
    row_counts["notes_chars"] = notes_per_row.str.len().to_numpy(float)
    row_counts["notes_dates"] = notes_per_row.str.count("DATE").to_numpy(float)
    # As seconds once, not once per column.
    start, as_of = as_of_seconds(created - DAY * 3650), as_of_seconds(as_of)
    for column in row_counts.columns:
        text[column] = notes_index.sum_between(row_counts[column].to_numpy(float), code, start, as_of)
    return text.reset_index(drop=True)

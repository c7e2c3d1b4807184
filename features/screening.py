"""Lead screening: duplicates (复访线索), invalid phones, spam / ad / job-seeker texts, competitor e-mails."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import pandas as pd

from features.spec import FeatureSpec
from features.text import LEXICON

DUPLICATE_WINDOW = pd.Timedelta(days=30)
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
SPECS = [
    FeatureSpec("screen_duplicate", "规则", "30天内重复留资(复访线索)(1=是):{v}"),
    FeatureSpec("screen_phone_invalid", "规则", "电话号码格式无效(1=是):{v}"),
    FeatureSpec("screen_phone_missing", "规则", "未留电话(1=是):{v}"),
    FeatureSpec("screen_spam_text", "规则", "留言疑似广告/垃圾(1=是):{v}"),
    FeatureSpec("screen_job_seeker_text", "规则", "留言疑似求职(1=是):{v}"),
    FeatureSpec("screen_competitor_email", "规则", "邮箱属于竞品公司(1=是):{v}"),
]
SCREEN_COLUMNS = [spec.name for spec in SPECS]


@dataclass(frozen=True)
class ScreeningConfig:
    competitor_domains: tuple[str, ...] = ()
    duplicate_days: float = 30.0  # a repeat within this many days of the earlier lead is a duplicate

    @classmethod
    def default(cls) -> ScreeningConfig:
        """The shipped configuration (features/resources/screening.json)."""
        raw = json.loads((files("features") / "resources" / "screening.json").read_text(encoding="utf-8"))
        return cls(competitor_domains=tuple(d.lower() for d in raw.get("competitor_domains", [])))


def normalize_phone(phone: pd.Series) -> pd.Series:
    """Digits only, without a +86 / 0086 prefix; missing stays missing."""
    digits = phone.astype("string").str.replace(r"[\s\-()（）]", "", regex=True)
    digits = digits.str.replace(r"^(?:\+86|0086|86(?=1[3-9]\d{9}$))", "", regex=True)
    return digits.where(digits.str.len() > 0)


def phone_is_invalid(phone: pd.Series) -> np.ndarray:
    """A present phone that is neither a mainland mobile (1[3-9] + 9 digits) nor a landline (0 + area + number)."""
    digits = normalize_phone(phone)
    valid = digits.str.match(MOBILE).fillna(False) | digits.str.match(LANDLINE).fillna(False)
    return (digits.notna() & ~valid).to_numpy(bool)


def find_duplicates(leads: pd.DataFrame, window: pd.Timedelta = DUPLICATE_WINDOW) -> pd.Series:
    """For each lead, the earlier lead with the same phone (and the same company where both name one)
    created within `window` (30 days) before it, or None. Only earlier leads count, so this is point-in-time
    safe."""
    phone = normalize_phone(leads["phone"])
    company = leads["company_name"].astype("string").str.replace(r"\s", "", regex=True)
    frame = pd.DataFrame(
        {
            "lead_id": leads["lead_id"].to_numpy(),
            "phone": phone.to_numpy(),
            "company": company.to_numpy(),
            "created_at": leads["created_at"].to_numpy(),
        }
    )
    frame = frame[frame["phone"].notna()].sort_values(["phone", "created_at"], kind="stable")
    previous = frame.groupby("phone", sort=False).shift(1)
    gap = frame["created_at"] - previous["created_at"]
    same_company = previous["company"].isna() | frame["company"].isna() | (previous["company"] == frame["company"])
    is_duplicate = previous["lead_id"].notna() & (gap <= window) & same_company
    result = pd.Series(None, index=leads.index, dtype=object)
    result.loc[frame.index[is_duplicate.to_numpy()]] = previous["lead_id"][is_duplicate].to_numpy()
    return result.astype(object).where(result.notna(), None)


def text_flags(normalised_text: pd.Series) -> pd.DataFrame:
    """Spam / ad and job-seeker texts by lexicon, and gibberish (no Chinese, short or one repeated character)."""
    text = normalised_text.fillna("").astype(str)
    spam_words = text.str.count("|".join(map(re.escape, LEXICON["spam"])))
    job_words = text.str.count("|".join(map(re.escape, LEXICON["job_seeker"])))
    no_cjk = ~text.str.contains(_CJK)
    repeated = text.str.fullmatch(r"(.)\1{2,}") | text.str.fullmatch(r"[\s.。,，!！?？]+")
    gibberish = (text != "") & ((no_cjk & (text.str.len() <= 12)) | repeated.fillna(False))
    return pd.DataFrame(
        {
            "screen_spam_text": ((spam_words > 0) | gibberish).astype(float).to_numpy(),
            "screen_job_seeker_text": (job_words > 0).astype(float).to_numpy(),
        }
    )


def competitor_email(email: pd.Series, config: ScreeningConfig) -> np.ndarray:
    domain = email.astype("string").str.lower().str.extract(r"@([\w.-]+)$", expand=False)
    return domain.isin(config.competitor_domains).fillna(False).to_numpy(bool)


def screening_features(leads: pd.DataFrame, config: ScreeningConfig) -> pd.DataFrame:
    """Per lead (in the order of `leads`): the contact screens and the earlier lead a duplicate points at.
    The text screens (`text_flags`) read only the lead's own text and are computed with the other text
    features."""
    duplicate_of = find_duplicates(leads, pd.Timedelta(days=config.duplicate_days))
    return pd.DataFrame(
        {
            "screen_duplicate": duplicate_of.notna().astype(float).to_numpy(),
            "screen_phone_invalid": phone_is_invalid(leads["phone"]).astype(float),
            "screen_phone_missing": leads["phone"].isna().astype(float).to_numpy(),
            "screen_competitor_email": competitor_email(leads["email"], config).astype(float),
            "duplicate_of": duplicate_of.to_numpy(object),
        },
        index=leads.index,
    )

"""Static part of the simulated world: sales reps and leads with their hidden state.

Every distribution here is documented in docs/simulator.md; the numbers are the generative story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadscore.tools.simulator.text import INVALID_KINDS

if TYPE_CHECKING:
    from leadscore.tools.simulator.story import Story

INDUSTRIES = ["医疗器械", "精密制造", "新能源汽车", "美妆", "教育", "SaaS"]
INDUSTRY_WEIGHTS = [0.22, 0.2, 0.16, 0.14, 0.12, 0.16]
# Hidden industry potential: how well the product line fits each industry.
INDUSTRY_EFFECT = np.array([0.45, 0.3, 0.2, -0.25, -0.35, 0.0])

CHANNELS = ["官网表单", "抖音", "小红书", "百度", "企业微信", "展会", "400电话", "短信", "转介绍", "其他"]
CHANNEL_WEIGHTS = [0.2, 0.12, 0.08, 0.15, 0.1, 0.08, 0.1, 0.04, 0.06, 0.07]
CHANNEL_EFFECT = np.array([0.1, -0.3, -0.35, 0.0, 0.15, 0.35, 0.0, -0.4, 0.5, -0.1])
# Intent mix per channel, columns in INTENTS order (询价, 产品咨询, 招商代理, 售后维修, 技术支持, 无效).
CHANNEL_INTENT_MIX = np.array(
    [
        [0.30, 0.30, 0.08, 0.06, 0.06, 0.20],  # 官网表单
        [0.18, 0.22, 0.15, 0.03, 0.02, 0.40],  # 抖音
        [0.15, 0.25, 0.15, 0.03, 0.02, 0.40],  # 小红书
        [0.30, 0.28, 0.07, 0.05, 0.05, 0.25],  # 百度
        [0.32, 0.30, 0.08, 0.08, 0.07, 0.15],  # 企业微信
        [0.40, 0.35, 0.12, 0.02, 0.03, 0.08],  # 展会
        [0.25, 0.15, 0.05, 0.28, 0.17, 0.10],  # 400电话
        [0.15, 0.15, 0.10, 0.03, 0.02, 0.55],  # 短信
        [0.50, 0.30, 0.10, 0.02, 0.03, 0.05],  # 转介绍
        [0.25, 0.25, 0.10, 0.07, 0.08, 0.25],  # 其他
    ]
)
INTENT_EFFECT = np.array([0.35, 0.0, -0.15, -1.6, -1.6, -4.0])
INVALID_KIND_WEIGHTS = [0.35, 0.3, 0.2, 0.15]

REGIONS = [
    ("浙江", "杭州", 0.12, 0.2),
    ("浙江", "宁波", 0.05, 0.15),
    ("江苏", "苏州", 0.1, 0.2),
    ("江苏", "南京", 0.06, 0.1),
    ("上海", "上海", 0.1, 0.25),
    ("广东", "深圳", 0.12, 0.2),
    ("广东", "广州", 0.08, 0.1),
    ("北京", "北京", 0.08, 0.15),
    ("四川", "成都", 0.07, -0.05),
    ("湖北", "武汉", 0.06, -0.05),
    ("陕西", "西安", 0.05, -0.15),
    ("河南", "郑州", 0.05, -0.2),
    ("甘肃", "兰州", 0.03, -0.35),
    ("黑龙江", "哈尔滨", 0.03, -0.3),
]
CUSTOMER_TYPES = ["品牌方", "经销商", "终端用户", "个人创业者"]
CUSTOMER_TYPE_WEIGHTS = [0.3, 0.22, 0.35, 0.13]
CUSTOMER_TYPE_EFFECT = np.array([0.15, 0.0, 0.2, -0.6])
SAMPLE_INDUSTRIES = {"医疗器械", "精密制造", "新能源汽车"}
HABITS = ["accurate", "lagging", "skipper", "stuck"]
HABIT_WEIGHTS = [0.4, 0.3, 0.15, 0.15]
COMPETITOR_DOMAINS = ["rival-med.cn", "jingpin-tech.com", "tongxing.com.cn"]
_EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "foxmail.com", "sina.com", "corp.cn"]
_NAME_WORDS = ["华康", "瑞达", "恒通", "金诺", "博远", "鑫泰", "明德", "海纳", "中科", "远航", "天启", "众联"]
_SUFFIX = {
    "医疗器械": "医疗科技有限公司",
    "精密制造": "精密机械有限公司",
    "新能源汽车": "新能源科技有限公司",
    "美妆": "化妆品有限公司",
    "教育": "教育科技有限公司",
    "SaaS": "信息技术有限公司",
}


@dataclass
class Reps:
    rep_id: np.ndarray
    diligence: np.ndarray  # 0..1: touch rhythm and speed of first touch
    note_quality: np.ndarray  # 0..1: share of informative notes
    habit: np.ndarray  # how stages get recorded: accurate, lagging, skipper, stuck
    strengths: np.ndarray  # (n_reps, 2) industry indices the rep sells best
    skill_industry: np.ndarray  # (n_reps, industries): log-odds the rep adds to a lead of that industry
    skill_region: np.ndarray  # (n_reps, regions): ... and of that region (city)
    assignment_weight: np.ndarray  # the rep's share of new leads

    def frame(self) -> pd.DataFrame:
        cities = [r[1] for r in REGIONS]
        return pd.DataFrame(
            {
                "rep_id": self.rep_id,
                "diligence": self.diligence,
                "note_quality": self.note_quality,
                "habit": self.habit,
                "strength_1": np.array(INDUSTRIES)[self.strengths[:, 0]],
                "strength_2": np.array(INDUSTRIES)[self.strengths[:, 1]],
                "assignment_weight": self.assignment_weight,
                **{f"skill_industry:{name}": self.skill_industry[:, i] for i, name in enumerate(INDUSTRIES)},
                **{f"skill_region:{city}": self.skill_region[:, i] for i, city in enumerate(cities)},
            }
        )


def make_reps(n_reps: int, rng: np.random.Generator, story: Story, side: np.random.Generator) -> Reps:
    strengths = np.stack([rng.choice(len(INDUSTRIES), 2, replace=False) for _ in range(n_reps)])
    is_strength = (strengths[:, :, None] == np.arange(len(INDUSTRIES))).any(axis=1)
    weight = np.exp(side.normal(0.0, story.assignment_sd, n_reps))
    return Reps(
        rep_id=np.array([f"rep{i:04d}" for i in range(n_reps)], dtype=object),
        diligence=rng.beta(story.diligence_concentration, story.diligence_concentration, n_reps),
        note_quality=rng.beta(3.0, 1.5, n_reps),
        habit=rng.choice(HABITS, n_reps, p=HABIT_WEIGHTS),
        strengths=strengths,
        skill_industry=story.strength_bonus * is_strength
        + story.skill_industry_sd * side.normal(0.0, 1.0, (n_reps, len(INDUSTRIES))),
        skill_region=story.skill_region_sd * side.normal(0.0, 1.0, (n_reps, len(REGIONS))),
        assignment_weight=weight / weight.sum(),
    )


def choice_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a probability matrix, vectorised."""
    cum = probs.cumsum(axis=1)
    return (rng.random((len(probs), 1)) > cum).sum(axis=1).clip(max=probs.shape[1] - 1)


def _phones(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mainland mobiles and landlines, 3% malformed; returns the numbers and the malformed mask."""
    prefixes = np.array(["13", "15", "17", "18", "19"])
    mobile = np.char.add(
        prefixes[rng.integers(len(prefixes), size=n)], np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9)
    )
    area = np.array(["0571", "021", "0755", "010", "028", "027"])
    landline = np.char.add(
        np.char.add(area[rng.integers(len(area), size=n)], "-"), rng.integers(10**7, 10**8, n).astype(str)
    )
    phones = np.where(rng.random(n) < 0.85, mobile, landline).astype(object)
    # Malformed numbers typed into forms: too short, all same digit, letters, a foreign prefix.
    bad = rng.random(n) < 0.03
    bad_pool = np.array(
        ["1380013", "11111111111", "12345678901", "138abc12345", "+1 415 555 0100", "000"], dtype=object
    )
    phones[bad] = bad_pool[rng.integers(len(bad_pool), size=bad.sum())]
    return phones, bad


def draw_profile(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """What a lead is: channel, true intent, invalid kind, industry, region, customer type, size and budget."""
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS)
    intent = choice_rows(CHANNEL_INTENT_MIX[channel], rng)
    invalid_kind = np.where(intent == 5, rng.choice(len(INVALID_KINDS), n, p=INVALID_KIND_WEIGHTS), -1)
    industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_WEIGHTS)
    region = rng.choice(len(REGIONS), n, p=np.array([r[2] for r in REGIONS]) / sum(r[2] for r in REGIONS))
    ctype = rng.choice(len(CUSTOMER_TYPES), n, p=CUSTOMER_TYPE_WEIGHTS)
    size = np.round(np.exp(rng.normal(4.2, 1.5, n))).clip(1, 50_000)
    size = np.where(ctype == 3, np.minimum(size, rng.integers(1, 20, n)), size)
    # Budgets scale with company size; whether (and how) they matter is the story's profile term.
    budget = np.round(np.exp(rng.normal(11.5 + 0.25 * np.log(size), 0.9)), -3)
    return {
        "channel": channel,
        "intent": intent,
        "invalid_kind": invalid_kind,
        "industry": industry,
        "region": region,
        "ctype": ctype,
        "size": size,
        "budget": budget,
    }


def make_leads(
    n: int,
    reps: Reps,
    start: pd.Timestamp,
    days: int,
    rng: np.random.Generator,
    story: Story,
    side: np.random.Generator,
) -> pd.DataFrame:
    """Lead attributes and hidden state, sorted by creation time. `rng` is the world's stream (the classic draws,
    in their classic order); `side` gives what only other stories draw, so the classic stream never moves."""
    a = draw_profile(n, rng)
    channel, intent, invalid_kind, industry = a["channel"], a["intent"], a["invalid_kind"], a["industry"]
    region, ctype, size, budget = a["region"], a["ctype"], a["size"], a["budget"]
    firmographic = story.profile_scale * story.firmographic_fit(a)
    fit_observable = story.profile_fit(a)
    hidden_fit = rng.normal(0.0, story.hidden_fit_sd, n)
    urgency = rng.normal(0.0, story.urgency_sd, n)  # hidden, but shows through browsing and inbound contacts
    disposition = side.normal(0.0, 1.0, n)  # hidden, shows through the tone of the rep's informative notes

    # Creation times: weekdays busier, office hours busier.
    day = rng.integers(0, days, n)
    weekday = (start + pd.to_timedelta(day, unit="D")).dayofweek
    redo = (weekday >= 5) & (rng.random(n) < 0.5)
    day[redo] = rng.integers(0, days, redo.sum())
    hour = np.clip(rng.normal(14, 3.5, n), 0, 23.99)
    created_at = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(hour * 3600, unit="s").round("s")
    order = np.argsort(created_at.values, kind="stable")

    if story.assignment_sd > 0:  # some reps get more of the new leads than others (and so carry more load)
        owner = rng.choice(len(reps.rep_id), n, p=reps.assignment_weight)
    else:
        owner = rng.integers(0, len(reps.rep_id), n)
    unassigned = rng.random(n) < 0.02
    phones, bad_phone = _phones(n, rng)
    words = np.array(_NAME_WORDS)
    city = np.array([r[1] for r in REGIONS], dtype=object)[region]
    company = np.char.add(
        np.char.add(city.astype(str), words[rng.integers(len(words), size=n)]),
        np.array([_SUFFIX[INDUSTRIES[i]] for i in industry]),
    ).astype(object)
    company[ctype == 3] = None
    email_domain = np.array(_EMAIL_DOMAINS)[rng.integers(len(_EMAIL_DOMAINS), size=n)]
    competitor = invalid_kind == INVALID_KINDS.index("competitor")
    email_domain = np.where(competitor, np.array(COMPETITOR_DOMAINS)[rng.integers(3, size=n)], email_domain)
    email = np.char.add(np.char.add("u", rng.integers(10**5, 10**7, n).astype(str)), np.char.add("@", email_domain))

    frame = pd.DataFrame(
        {
            "created_at": created_at,
            "channel": np.array(CHANNELS, dtype=object)[channel],
            "campaign": None,
            "province": np.array([r[0] for r in REGIONS], dtype=object)[region],
            "city": city,
            "industry": np.array(INDUSTRIES, dtype=object)[industry],
            "customer_type": np.array(CUSTOMER_TYPES, dtype=object)[ctype],
            "company_name": company,
            "company_size": size,
            "budget_cny": budget,
            "phone": phones,
            "email": email.astype(object),
            "owner_id": np.where(unassigned, None, reps.rep_id[owner]),
            "assigned_at": created_at + pd.to_timedelta(rng.exponential(600, n).round(), unit="s"),
            "_day": day,
            "_intent": intent,
            "_invalid_kind": invalid_kind,
            "_industry": industry,
            "_draw_industry": industry,
            "_region": region,
            "_owner": np.where(unassigned, -1, owner),
            "_fit_observable": fit_observable,
            "_firmographic": firmographic,
            "_hidden_fit": hidden_fit,
            "_urgency": urgency,
            "_web_urgency": story.web_urgency * urgency,  # how much urgency multiplies browsing (log scale)
            "_disposition": disposition,
            "_bad_phone": bad_phone,
            "_requires_sample": np.isin(industry, [INDUSTRIES.index(i) for i in SAMPLE_INDUSTRIES])
            & (size >= 50)
            & (rng.random(n) < 0.85),
            "_requires_tender": ((ctype == 2) & (size >= 300)) | ((industry == 0) & (size >= 150)),
        }
    ).iloc[order]
    frame = frame.reset_index(drop=True)
    frame.insert(0, "lead_id", [f"L{i:07d}" for i in range(n)])
    frame.loc[frame["_owner"] < 0, "assigned_at"] = pd.NaT
    frame["_load"] = _owner_load(frame)
    frame["_rep_skill"] = rep_skill(
        reps, frame["_owner"].to_numpy(), industry=frame["_industry"], region=frame["_region"]
    )
    return frame


def rep_skill(reps: Reps, owner: np.ndarray, *, industry, region) -> np.ndarray:
    """Log-odds a rep adds to a lead of an industry and region (0 for an unowned lead)."""
    owner = np.asarray(owner)
    safe = np.maximum(owner, 0)
    skill = reps.skill_industry[safe, np.asarray(industry)] + reps.skill_region[safe, np.asarray(region)]
    return np.where(owner >= 0, skill, 0.0)


LOAD_WINDOW_DAYS = 30


def _owner_load(frame: pd.DataFrame) -> np.ndarray:
    """A rep's load when a lead arrives: the new leads the rep was given in the 30 days before it."""
    owner = frame["_owner"].to_numpy()
    created = frame["created_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    load = np.zeros(len(frame), dtype=np.int32)
    for rep in np.unique(owner[owner >= 0]):
        idx = np.flatnonzero(owner == rep)  # frame is sorted by creation time
        t = created[idx]
        load[idx] = np.arange(len(idx)) - np.searchsorted(t, t - np.timedelta64(LOAD_WINDOW_DAYS, "D"), side="right")
    return load


def add_duplicates(frame: pd.DataFrame, rng: np.random.Generator, share: float = 0.04) -> pd.DataFrame:
    """Re-submissions: the same phone and company again within 30 days (复访线索)."""
    frame["_duplicate_of"] = None
    created = frame["created_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    candidates = np.flatnonzero(rng.random(len(frame)) < share)
    window_start = np.searchsorted(created, created[candidates] - np.timedelta64(30, "D"))
    has_earlier = window_start < candidates
    candidates, window_start = candidates[has_earlier], window_start[has_earlier]
    source = window_start + (rng.random(len(candidates)) * (candidates - window_start)).astype(int)
    original = ~np.isin(source, candidates)  # a duplicate points at an original lead, never at another copy
    candidates, source = candidates[original], source[original]
    for column in ["phone", "company_name", "industry", "province", "city", "customer_type", "email"]:
        frame.loc[frame.index[candidates], column] = frame[column].to_numpy()[source]
    for column in ["_intent", "_invalid_kind", "_industry", "_bad_phone"]:
        frame.loc[frame.index[candidates], column] = frame[column].to_numpy()[source]
    frame.loc[frame.index[candidates], "_duplicate_of"] = frame["lead_id"].to_numpy()[source]
    return frame


def add_missing_values(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Realistic gaps: budgets and sizes are often left blank, more so on social channels."""
    n = len(frame)
    social = frame["channel"].isin(["抖音", "小红书", "短信"]).to_numpy()
    rates = {
        "budget_cny": np.where(social, 0.65, 0.4),
        "company_size": np.where(social, 0.5, 0.3),
        "city": np.full(n, 0.08),
        "province": np.full(n, 0.05),
        "industry": np.full(n, 0.06),
        "customer_type": np.full(n, 0.1),
        "email": np.full(n, 0.5),
        "phone": np.full(n, 0.04),
        "company_name": np.full(n, 0.1),
    }
    for column, rate in rates.items():
        frame.loc[rng.random(n) < rate, column] = None
    ads = frame["channel"].isin(["抖音", "小红书", "百度", "短信"]).to_numpy()
    campaigns = np.array(["双11大促", "春季新品", "展会引流", "品牌词", "行业词", "直播间"], dtype=object)
    frame["campaign"] = np.where(ads, campaigns[rng.integers(len(campaigns), size=n)], None)
    return frame

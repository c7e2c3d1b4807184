"""Browsing behaviour as of T: recency, frequency and dwell by page category and event type, trend,
decision-page intensity and sessions. Reads web_events only through EventIndex (point in time)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import TABLES
from features.pointintime import EventIndex, as_of_seconds
from features.spec import FeatureSpec

DAY = pd.Timedelta(days=1)
PAGE_CATEGORIES = list(TABLES["web_events"].choices_of("page_category"))
EVENT_TYPES = list(TABLES["web_events"].choices_of("event_type"))
DECISION_PAGES = ["pricing", "docs", "download"]  # what buyers read as a decision nears
SESSION_GAP = pd.Timedelta(minutes=30)
PAGE_ZH = {
    "product": "产品页",
    "pricing": "价格页",
    "case_study": "案例页",
    "docs": "技术文档",
    "download": "下载页",
    "careers": "招聘页",
    "about": "关于我们",
    "blog": "博客",
    "other": "其他页面",
}
EVENT_ZH = {
    "download": "下载资料",
    "form_submit": "提交表单",
    "webinar": "参加直播/研讨会",
    "live_chat": "在线咨询",
    "video_view": "观看视频",
    "email_open": "打开营销邮件",
    "email_click": "点击营销邮件",
}
SPECS = (
    [FeatureSpec(f"web_events_{days}d", "行为", f"近{days}天网站行为{{v}}次") for days in (1, 7, 30)]
    + [
        FeatureSpec("web_events_total", "行为", "累计网站行为{v}次"),
        FeatureSpec("web_trend_7d", "行为", "近7天网站行为比前7天多{v}次"),
        FeatureSpec("days_since_last_web_event", "行为", "距上次访问网站{v}天"),
        FeatureSpec("dwell_minutes_7d", "行为", "近7天浏览时长{v}分钟"),
        FeatureSpec("dwell_minutes_30d", "行为", "近30天浏览时长{v}分钟"),
        FeatureSpec("decision_page_share_30d", "行为", "近30天价格/文档/下载页占比{v}"),
        FeatureSpec("decision_dwell_minutes_30d", "行为", "近30天在价格/文档/下载页停留{v}分钟"),
        FeatureSpec("sessions_7d", "行为", "近7天访问网站{v}次(会话)"),
        FeatureSpec("sessions_30d", "行为", "近30天访问网站{v}次(会话)"),
    ]
    + [
        FeatureSpec(f"{name}_views_{days}d", "行为", f"近{days}天查看{PAGE_ZH[name]}{{v}}次")
        for name in PAGE_CATEGORIES
        for days in (7, 30)
    ]
    + [FeatureSpec(f"{n}_30d", "行为", f"近30天{EVENT_ZH[n]}{{v}}次") for n in EVENT_TYPES if n != "page_view"]
)


def session_starts(web: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
    """A row starts a session when the same lead's previous event is more than 30 minutes earlier.
    Depends only on earlier rows, so it is point-in-time safe."""
    order = np.lexsort((web["ts"].to_numpy(), codes))
    ts = web["ts"].to_numpy()[order]
    lead = codes[order]
    start_sorted = np.ones(len(order), dtype=bool)
    start_sorted[1:] = (lead[1:] != lead[:-1]) | ((ts[1:] - ts[:-1]) > SESSION_GAP.to_timedelta64())
    starts = np.empty(len(order), dtype=bool)
    starts[order] = start_sorted
    return starts


def behaviour_features(web: pd.DataFrame, web_codes: np.ndarray, code: np.ndarray, as_of: pd.Series) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    t = as_of_seconds(as_of)  # converted once; windows are whole days earlier
    w = {days: t - days * 86_400 for days in (1, 7, 14, 30)}
    ts = web["ts"]
    everything = EventIndex(web_codes, ts)
    for days in (1, 7, 30):
        out[f"web_events_{days}d"] = everything.count_between(code, w[days], t)
    out["web_events_total"] = everything.count_until(code, t)
    previous_week = everything.count_between(code, w[14], w[7])
    out["web_trend_7d"] = out["web_events_7d"] - previous_week
    last = everything.last_row(code, t)
    last_ts = ts.reset_index(drop=True).reindex(last).reset_index(drop=True)
    out["days_since_last_web_event"] = ((as_of - last_ts) / DAY).to_numpy(float)
    dwell = web["dwell_seconds"].to_numpy(float)
    out["dwell_minutes_7d"] = everything.sum_between(dwell, code, w[7], t) / 60
    out["dwell_minutes_30d"] = everything.sum_between(dwell, code, w[30], t) / 60

    category = web["page_category"].to_numpy(object)
    for name in PAGE_CATEGORIES:
        index = everything.subset(category == name)
        out[f"{name}_views_7d"] = index.count_between(code, w[7], t)
        out[f"{name}_views_30d"] = index.count_between(code, w[30], t)
    decision = everything.subset(np.isin(category, DECISION_PAGES))
    decision_30d = decision.count_between(code, w[30], t)
    out["decision_page_share_30d"] = np.where(
        out["web_events_30d"] > 0, decision_30d / np.maximum(out["web_events_30d"], 1), np.nan
    )
    out["decision_dwell_minutes_30d"] = decision.sum_between(dwell, code, w[30], t) / 60

    event_type = web["event_type"].to_numpy(object)
    for name in EVENT_TYPES:
        if name == "page_view":
            continue  # page views are the category counts above
        index = everything.subset(event_type == name)
        out[f"{name}_30d"] = index.count_between(code, w[30], t)

    sessions = everything.subset(session_starts(web, web_codes))
    out["sessions_7d"] = sessions.count_between(code, w[7], t)
    out["sessions_30d"] = sessions.count_between(code, w[30], t)
    return pd.DataFrame({k: np.asarray(v, float) for k, v in out.items()})

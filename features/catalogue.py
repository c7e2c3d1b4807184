"""The feature catalogue: every feature's stable name, group and a Chinese sentence template that
explanations fill with the lead's value ({v}), e.g. 近7天查看价格页{v}次."""

from __future__ import annotations

from dataclasses import dataclass

from features.behaviour import EVENT_TYPES, PAGE_CATEGORIES
from features.followup import ACTIVITY_CHANNELS, ATTACHMENTS, ROLE_KEYWORDS
from features.text import LEXICON

GROUPS = ("画像", "行为", "跟进", "文本", "规则")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    group: str
    template: str
    categorical: bool = False

    def describe(self, value: object) -> str:
        """The template filled with a value: numbers rounded for reading, missing said as 未知."""
        if value is None or (isinstance(value, float) and value != value):
            shown = "未知"
        elif isinstance(value, float):
            shown = f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"
        else:
            shown = str(value)
        return self.template.format(v=shown)


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
ROLE_ZH = {"finance": "财务", "decision": "决策人", "technical": "技术负责人", "purchasing": "采购"}


def _specs() -> list[FeatureSpec]:
    s = [
        FeatureSpec("days_since_created", "画像", "线索已创建{v}天"),
        FeatureSpec("created_hour", "画像", "创建于{v}点"),
        FeatureSpec("created_on_weekend", "画像", "周末创建(1=是):{v}"),
        FeatureSpec("company_size", "画像", "公司规模{v}人"),
        FeatureSpec("budget_cny", "画像", "预算{v}元"),
        FeatureSpec("has_email", "画像", "留了邮箱(1=是):{v}"),
        FeatureSpec("has_phone", "画像", "留了电话(1=是):{v}"),
        FeatureSpec("has_company_name", "画像", "填写了公司名(1=是):{v}"),
        FeatureSpec("channel", "画像", "来源渠道:{v}", True),
        FeatureSpec("industry", "画像", "行业:{v}", True),
        FeatureSpec("customer_type", "画像", "客户类型:{v}", True),
        FeatureSpec("province", "画像", "省份:{v}", True),
        FeatureSpec("owner_win_rate", "跟进", "负责销售近180天赢单率{v}"),
        FeatureSpec("owner_closed_deals", "跟进", "负责销售近180天结案{v}单"),
        FeatureSpec("owner_open_load", "跟进", "负责销售手上在跟{v}条线索"),
        FeatureSpec("owner_industry_wins", "跟进", "负责销售近一年在该行业赢单{v}单"),
    ]
    for days in (1, 7, 30):
        s.append(FeatureSpec(f"web_events_{days}d", "行为", f"近{days}天网站行为{{v}}次"))
    s += [
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
    for name in PAGE_CATEGORIES:
        for days in (7, 30):
            s.append(FeatureSpec(f"{name}_views_{days}d", "行为", f"近{days}天查看{PAGE_ZH[name]}{{v}}次"))
    s += [FeatureSpec(f"{n}_30d", "行为", f"近30天{EVENT_ZH[n]}{{v}}次") for n in EVENT_TYPES if n != "page_view"]
    s += [
        FeatureSpec("first_touch_hours", "跟进", "首次跟进用时{v}小时"),
        FeatureSpec("untouched_hours", "跟进", "已等待{v}小时仍未跟进"),
        FeatureSpec("activities_7d", "跟进", "近7天跟进{v}次"),
        FeatureSpec("activities_30d", "跟进", "近30天跟进{v}次"),
        FeatureSpec("activities_total", "跟进", "累计跟进{v}次"),
        FeatureSpec("inbound_30d", "跟进", "近30天客户主动联系{v}次"),
        FeatureSpec("outbound_30d", "跟进", "近30天销售主动联系{v}次"),
        FeatureSpec("days_since_last_activity", "跟进", "距上次跟进{v}天"),
        FeatureSpec("call_minutes_total", "跟进", "累计通话/拜访{v}分钟"),
    ]
    s += [FeatureSpec(f"touches_{c}", "跟进", f"通过{c}跟进{{v}}次") for c in ACTIVITY_CHANNELS]
    s += [FeatureSpec(f"role_{r}_reached", "跟进", f"已接触{ROLE_ZH[r]}(1=是):{{v}}") for r in ROLE_KEYWORDS]
    s.append(FeatureSpec("roles_reached", "跟进", "已接触决策链角色{v}类"))
    s += [FeatureSpec(f"has_{a}", "跟进", f"已有{a}(1=是):{{v}}") for a in ATTACHMENTS]
    s += [
        FeatureSpec("next_action_overdue", "跟进", "下一步计划已逾期(1=是):{v}"),
        FeatureSpec("next_action_overdue_days", "跟进", "下一步计划逾期{v}天"),
        FeatureSpec("recorded_stage", "跟进", "记录阶段:{v}", True),
        FeatureSpec("recorded_stage_rank", "跟进", "记录阶段序号{v}"),
        FeatureSpec("days_in_recorded_stage", "跟进", "当前阶段已停留{v}天"),
        FeatureSpec("stage_changes_total", "跟进", "阶段变更{v}次"),
        FeatureSpec("form_text_chars", "文本", "表单留言{v}字"),
        FeatureSpec("form_amounts", "文本", "留言提到金额{v}处"),
        FeatureSpec("form_dates", "文本", "留言提到时间{v}处"),
        FeatureSpec("notes_chars", "文本", "跟进记录共{v}字"),
        FeatureSpec("notes_dates", "文本", "跟进记录提到时间{v}处"),
        FeatureSpec("form_text_win_p", "文本", "留言内容的成交信号{v}"),
        FeatureSpec("notes_win_p", "文本", "跟进记录的成交信号{v}"),
        FeatureSpec("notes_stage_level", "文本", "跟进记录显示的进展程度{v}"),
    ]
    for source, label in (("form", "留言"), ("notes", "跟进记录")):
        s += [FeatureSpec(f"{source}_kw_{g}", "文本", f"{label}提到{LEXICON_ZH[g]}{{v}}次") for g in LEXICON]
    s += [
        FeatureSpec("lai", "规则", "线索活跃指数LAI {v}"),
        FeatureSpec("radar_information", "规则", "信息完整度{v}分"),
        FeatureSpec("radar_timeliness", "规则", "响应及时性{v}分"),
        FeatureSpec("radar_need_clarity", "规则", "需求明确度{v}分"),
        FeatureSpec("radar_industry_match", "规则", "行业匹配度{v}分"),
        FeatureSpec("radar_interaction", "规则", "历史互动{v}分"),
        FeatureSpec("checklist_first_call", "规则", "2小时内首电(1=是):{v}"),
        FeatureSpec("checklist_wechat", "规则", "2小时内加微信(1=是):{v}"),
        FeatureSpec("checklist_need_tagged", "规则", "2小时内标注需求(1=是):{v}"),
        FeatureSpec("checklist_complete", "规则", "黄金响应清单完成(1=是):{v}"),
        FeatureSpec("stage_evidence_missing", "规则", "记录阶段缺少佐证附件(1=是):{v}"),
        FeatureSpec("screen_duplicate", "规则", "30天内重复留资(复访线索)(1=是):{v}"),
        FeatureSpec("screen_phone_invalid", "规则", "电话号码格式无效(1=是):{v}"),
        FeatureSpec("screen_phone_missing", "规则", "未留电话(1=是):{v}"),
        FeatureSpec("screen_spam_text", "规则", "留言疑似广告/垃圾(1=是):{v}"),
        FeatureSpec("screen_job_seeker_text", "规则", "留言疑似求职(1=是):{v}"),
        FeatureSpec("screen_competitor_email", "规则", "邮箱属于竞品公司(1=是):{v}"),
    ]
    return s


CATALOGUE: dict[str, FeatureSpec] = {spec.name: spec for spec in _specs()}
FEATURES: list[str] = list(CATALOGUE)
CATEGORICAL: list[str] = [n for n, spec in CATALOGUE.items() if spec.categorical]

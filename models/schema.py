"""The typed request and answer of the scoring API: what a CRM front end generates its client from.

Requests are documented field by field but validated by the data contract (features/contract.py), not by
pydantic, so a lead with a bad value gets its own error entry naming the field while the other leads are
scored (a strict schema would refuse the whole request). Answers are validated: every field is typed and
described, and the parts that come from the artifact's models (stage, close date, intent) are taken from
models/registry.py, so a new model's answer appears here without a second definition.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from models.registry import ANSWER_PARTS
from models.stage import StageAnswer
from models.tiers import TIERS

_TIME = "ISO 8601; without an offset it is Asia/Shanghai time"
Timestamp = Field(description=_TIME)
OptionalTimestamp = Field(None, description=_TIME)


def _keep_nullable(schema: dict) -> None:
    """BentoML 1.4 publishes an endpoint's top-level fields with only the first branch of an anyOf
    (`_flatten_field` in _bentoml_sdk/method.py), so `str | None` would be documented as a string that is never
    null. OpenAPI 3.0's own `nullable` survives that, and clients and the fuzzer read it."""
    for field in schema.get("properties", {}).values():
        if {"type": "null"} in field.get("anyOf", []):
            field["nullable"] = True


NULLABLE = {"nullable": True}  # the same for an endpoint's optional parameters (serving/service.py)


class Published(BaseModel):
    """An endpoint's answer: its optional top-level fields stay nullable in the OpenAPI document."""

    model_config = ConfigDict(json_schema_extra=_keep_nullable)


class _Rows(BaseModel):
    model_config = ConfigDict(extra="allow")  # any other column is an extra attribute (the contract)


class WebEventIn(_Rows):
    """A web_events row of the contract, without lead_id."""

    ts: str = Timestamp
    event_type: str = Field(description="page_view, download, form_submit, webinar, live_chat, video_view, ...")
    page_category: str | None = Field(None, description="product, pricing, case_study, docs, download, ...")
    page: str | None = None
    dwell_seconds: float | None = Field(None, ge=0)


class ActivityIn(_Rows):
    """An activities row of the contract, without lead_id."""

    ts: str = Timestamp
    actor_id: str | None = None
    actor_role: str | None = Field(None, description="销售, 售前, 市场, 客服, 管理层")
    channel: str | None = Field(None, description="电话, 微信, 邮件, 拜访, 演示, 会议, 短信")
    direction: str | None = Field(None, description="outbound or inbound")
    duration_seconds: float | None = Field(None, ge=0)
    contact_role: str | None = Field(None, description="who on the customer side, e.g. 财务处长")
    note: str | None = None
    attachment_type: str | None = Field(None, description="方案, 报价单, 测试报告, 演示确认单, 技术协议, 合同, ...")
    next_action: str | None = None
    next_action_due: str | None = OptionalTimestamp


class StageChangeIn(_Rows):
    """A stage_changes row of the contract, without lead_id."""

    ts: str = Timestamp
    stage: str = Field(
        description="新线索, 初步接触, 需求确认, 方案沟通, 样品验证, 报价, 招标比价, 合同谈判, 赢单, 丢单"
    )


class LeadIn(_Rows):
    """A leads row of the contract with the lead's event lists."""

    lead_id: str
    created_at: str = Timestamp
    channel: str | None = None
    campaign: str | None = None
    province: str | None = None
    city: str | None = None
    industry: str | None = None
    customer_type: str | None = Field(None, description="品牌方, 经销商, 终端用户, 个人创业者")
    company_name: str | None = None
    company_size: float | None = Field(None, ge=0, description="employees")
    budget_cny: float | None = Field(None, ge=0)
    form_text: str | None = None
    phone: str | None = Field(None, description="personal data: never logged unmasked")
    email: str | None = Field(None, description="personal data: never logged unmasked")
    owner_id: str | None = None
    assigned_at: str | None = OptionalTimestamp
    web_events: list[WebEventIn] | None = None
    activities: list[ActivityIn] | None = None
    stage_changes: list[StageChangeIn] | None = None


# ---------------------------------------------------------------------------------------------- answers


class Problem(BaseModel):
    table: str = Field(description="the contract table, or * for the whole lead")
    field: str
    reason: str


class LeadError(BaseModel):
    lead_id: str = Field(description="the lead's id as sent, or its position (#3) when it had none")
    problems: list[Problem]


class Factor(BaseModel):
    """One factor of the health score, in score points."""

    factor: str
    label: str
    points: float = Field(description="its signed contribution in health-score points")
    group: str = Field(description="画像, 行为, 跟进, 文本 or 规则")
    sentence: str = Field(description="a Chinese sentence naming the lead's own values and the points")
    features: list[str] = Field(description="the catalogue features folded into it")


class FactorPoint(BaseModel):
    """One factor's points, compact: what score history compares between two scorings."""

    factor: str
    label: str
    points: float
    value: str = Field(description="the lead's own values, in Chinese (the factor's sentence without its points)")


class Explanation(BaseModel):
    base_score: float = Field(description="the score with every contribution zero; factors add up from it")
    positive: list[Factor] = Field(default_factory=list, description="the strongest factors raising the score")
    negative: list[Factor] = Field(default_factory=list, description="the strongest factors lowering it")
    factors: list[Factor] | None = Field(None, description="/explain: every factor, largest effect first")
    contributions: list[FactorPoint] | None = Field(
        None, description="every factor with |points| >= 0.05, compact (score history explains moves with it)"
    )


class LeadUpdate(BaseModel):
    owner_id: str | None = None
    assigned_at: str | None = None


class ActionEvent(BaseModel):
    """What doing the action adds to the CRM: append the activities to the lead's list and set the lead's
    fields, re-score, and the score moves by the action's expected gain."""

    activities: list[ActivityIn] = Field(default_factory=list)
    lead: LeadUpdate = Field(default_factory=LeadUpdate)


class NextAction(BaseModel):
    action: str = Field(description="the playbook's key, e.g. finance")
    title: str
    reason: str
    due: str = Timestamp
    expected_gain: float = Field(description="health points the action's event adds when re-scored")
    as_event: ActionEvent | None = Field(None, description="the event behind the gain; null when a score cannot see it")


class Screening(BaseModel):
    duplicate: bool
    phone_invalid: bool
    phone_missing: bool
    spam_text: bool
    job_seeker_text: bool
    competitor_email: bool
    duplicate_of: str | None = Field(description="the earlier lead this one repeats")
    duplicate_owner: str | None = Field(None, description="that earlier lead's owner, where known")


class HealthRadar(BaseModel):
    information: float = Field(ge=0, le=100)
    timeliness: float = Field(ge=0, le=100)
    need_clarity: float = Field(ge=0, le=100)
    industry_match: float = Field(ge=0, le=100)
    interaction: float = Field(ge=0, le=100)


class GoldenChecklist(BaseModel):
    first_call: bool
    wechat: bool
    need_tagged: bool
    complete: bool


class _LeadAnswer(BaseModel):
    lead_id: str
    health_score: float = Field(ge=0, le=100, description="100 x win_probability")
    win_probability: float = Field(ge=0, le=1, description="calibrated P(won within 90 days of as_of)")
    tier: Literal[TIERS] = Field(description="战略级 / 重点跟进 / 培育中 / 暂缓 by the health score")  # type: ignore[valid-type]
    activity_index: float = Field(ge=0, le=100, description="LAI")
    health_radar: HealthRadar
    golden_checklist: GoldenChecklist
    stage_evidence_missing: bool
    screening: Screening
    explanation: Explanation
    next_actions: list[NextAction]
    model_version: str
    as_of: str = Timestamp
    warnings: list[Problem] | None = Field(None, description="values that were set missing, rows skipped")


# One field per model that answers a part (stage, close_date, intent): absent when the artifact lacks it.
LeadAnswer = create_model(
    "LeadAnswer",
    __base__=_LeadAnswer,
    __doc__="Everything leadscore says about one lead as of a time.",
    **{model.name: (model.Answer | None, None) for model in ANSWER_PARTS},
)


class Scored(Published):
    """The artifact's answer to one request."""

    model_version: str
    results: list[LeadAnswer]  # type: ignore[valid-type]
    errors: list[LeadError] = Field(description="one entry per lead that failed validation or scoring")


class ScoreAnswer(Scored):
    """POST /score and /explain."""

    request_id: str


class RecommendResult(BaseModel):
    lead_id: str
    health_score: float
    tier: str
    stage: StageAnswer | None = None
    next_actions: list[NextAction]
    as_of: str
    model_version: str


class RecommendAnswer(Published):
    request_id: str
    model_version: str
    results: list[RecommendResult]
    errors: list[LeadError]


class ReloadAnswer(Published):
    reloaded: bool
    model_version: str


class FeatureInfo(BaseModel):
    name: str
    group: str
    template: str
    categorical: bool


class Limits(BaseModel):
    max_leads: int
    max_request_bytes: int


class HealthModelCard(BaseModel):
    """How the served health model was chosen: by time-split cross-validation inside the training export."""

    model_config = ConfigDict(extra="allow")
    family: str = Field(description="the scorer served, e.g. lightgbm(n_features=40) or logistic(C=0.1)")
    chosen: str = Field(description="the candidate's key")
    fold_auc: float | None = Field(None, description="its mean AUC over the time-split folds")
    runner_up: str | None = None
    margin_over_runner_up: float | None = None
    best_baseline: str | None = Field(None, description="the customer's best baseline on the same folds")
    margin_over_best_baseline: float | None = None
    lightgbm_fold_auc: float | None = None
    note: str = Field(description="how LightGBM alone fared against the best baseline")
    candidates: dict[str, float] = Field(default_factory=dict, description="candidate -> mean fold AUC")


class Metadata(Published):
    model_version: str
    registry_version: str
    feature_set_version: str
    code_revision: str
    models: dict[str, bool] = Field(description="model name -> carried by the served artifact")
    health_model: HealthModelCard | None = Field(None, description="absent for a model trained before selection")
    evaluation: dict[str, float] = Field(description="the time-held-out figures of the served model")
    tiers: dict[str, float]
    intent_labels: list[str] | None
    limits: Limits
    features: list[FeatureInfo]


# ---------------------------------------------------------------------------------------------- history


class FactorMove(BaseModel):
    factor: str
    label: str
    points: float = Field(description="signed change of the factor's points between the two scorings")
    before: str | None = Field(description="the lead's values at the earlier scoring (null: the factor was ~0)")
    after: str | None = Field(description="at the later scoring")
    sentence: str = Field(description="e.g. 报价单附件 0份→1份 +6.2分")


class HistoryEntry(BaseModel):
    """One scoring of the lead, and what moved its score since the one before."""

    as_of: str = Timestamp
    scored_at: str = Field(description="when the service scored it (ISO 8601, UTC)")
    endpoint: str
    model_version: str
    health_score: float
    tier: str
    stage: str | None = Field(description="inferred stage")
    risk_level: str | None = Field(description="the early warning's level (正常 / 关注 / 预警 / 高危)")
    warnings: list[str] = Field(description="the early warning's reasons, in Chinese")
    change: float | None = Field(description="health points since the previous scoring; null for the first")
    base_change: float | None = Field(description="of which the base score (another model version)")
    moved: list[FactorMove] = Field(description="the factors that moved the score most, largest first")
    summary: str = Field(description="the moves in one Chinese line: 新增报价单附件 +6.2分；7天未跟进 −4.1分")


class HistoryAnswer(Published):
    """GET /leads/{lead_id}/history."""

    lead_id: str = Field(description="masked if it carries a phone number or an e-mail")
    source: str = Field(description="where the scorings come from (prediction_log, or the lead store)")
    entries: list[HistoryEntry] = Field(description="oldest first")


# ---------------------------------------------------------------------------------------------- assignment


class RepIn(BaseModel):
    """A candidate rep for POST /assign: what the CRM knows of the rep now. Validated rep by rep (a bad entry
    gets its own error and the other reps are still ranked)."""

    rep_id: str
    regions: list[str] = Field(default_factory=list, description="provinces or cities the rep covers; empty: any")
    industries: list[str] = Field(default_factory=list, description="industries / product lines; empty: any")
    customer_types: list[str] = Field(default_factory=list, description="customer types the rep takes; empty: any")
    open_leads: float = Field(0, ge=0, description="待跟进: the leads the rep is working on now")
    capacity: float | None = Field(
        None, ge=1, description="the most open leads the rep should carry (at least one); none: no cap"
    )
    available: bool = Field(True, description="false: on leave, out of office (never chosen)")


class RepProblem(BaseModel):
    rep_id: str = Field(description="the rep's id as sent, or its position (#3) when it had none")
    field: str
    reason: str


class SegmentRecord(BaseModel):
    """A rep's record with leads of the lead's level of one segment (training history, as of its cutoff)."""

    segment: Literal["industry", "region", "channel"]
    level: str
    leads: int = Field(description="the rep's leads of this level whose 90-day outcome is known")
    wins: int
    rate: float = Field(description="the rep's win rate there, shrunk towards what the rep's record predicts")
    team_rate: float | None = Field(description="the team's win rate at this level")
    lift: float = Field(description="log-odds the rep's record here adds to the win probability")


class RepRanking(BaseModel):
    rep_id: str
    rank: int = Field(description="1 = the rep this lead should go to")
    eligible: bool = Field(description="in the pool the rules allow and available")
    has_room: bool = Field(description="open leads below the rep's capacity and the rule's cap")
    expected_win_probability: float = Field(
        ge=0, le=1, description="P(won within 90 days) if this rep takes the lead: the health model re-scored with "
        "the rep's owner figures, plus the lift of the rep's record with this kind of lead"
    )  # fmt: skip
    health_win_probability: float = Field(ge=0, le=1, description="the health model alone with this rep as owner")
    segment_lift: float = Field(description="log-odds added by the rep's industry, region and channel record")
    ranking_score: float = Field(description="what the rank sorts by: the expected probability, scaled by capacity "
                                 "/ (open leads + 1) for a rep who is full")  # fmt: skip
    open_leads: float
    cap: float | None = Field(description="the smaller of the rep's capacity and the rule's cap")
    history_leads: int = Field(description="the rep's leads with a known outcome in the training history")
    segments: list[SegmentRecord] = Field(default_factory=list)
    reasons: list[str] = Field(description="why, in Chinese, from this rep's own history and load")


class AssignAnswer(Published):
    """POST /assign: the candidate reps ranked for one lead, the chosen rep and why; every answer is logged."""

    decision_id: str
    kind: Literal["assign", "reroute"] = "assign"
    lead_id: str | None
    status: Literal["assigned", "unassigned", "rejected"] = Field(
        description="assigned: a rep was chosen; unassigned: no rep could be (see errors); rejected: the lead "
        "failed the contract"
    )  # fmt: skip
    chosen_rep: str | None
    reason: str = Field(description="the decision's basis in one Chinese sentence")
    pool: str = Field(description="the rule whose pool the rep came from, or how the pool was formed")
    fallback: str | None = Field(None, description="a documented fallback that was used, in Chinese")
    duplicate_of: str | None = Field(None, description="the earlier lead this one repeats")
    duplicate_owner: str | None = Field(None, description="that lead's owner")
    ranking: list[RepRanking]
    errors: list[LeadError] = Field(default_factory=list, description="the lead's contract problems")
    rep_errors: list[RepProblem] = Field(default_factory=list, description="candidate reps that were left out")
    warnings: list[str] = Field(default_factory=list)
    model_version: str
    as_of: str = Timestamp


class OverdueLead(BaseModel):
    lead_id: str
    decision_id: str = Field(description="the decision that gave the lead its current rep")
    owner_id: str | None
    assigned_at: str = Timestamp
    hours_waiting: float


class OverdueAnswer(Published):
    """POST /assign/overdue: leads assigned more than `hours` ago with no first touch, each re-routed."""

    hours: float
    overdue: list[OverdueLead]
    rerouted: list[AssignAnswer]


class DecisionLogEntry(Published):
    """One decision of the assignment log, as stored (GET /assign/log)."""

    decision_id: str
    decided_at: str = Timestamp
    kind: str
    lead_id: str | None
    status: str
    chosen_rep: str | None
    previous_decision_id: str | None = Field(None, description="the decision a re-routing replaced")
    pool: str | None
    reason: str | None
    ranking: list[dict] = Field(description="the ranked reps as answered, reasons included")
    inputs: dict = Field(description="the lead and reps sent, phone and e-mail masked")
    errors: dict
    model_version: str | None

"""Who should take this lead: candidate reps ranked by the lead's expected 90-day win probability if *that* rep
takes it, within the pool the routing rules allow, each with its reasons in Chinese (issue 18).

1. Hard rules first (`RoutingRules`, a TOML file: configs/assignment_rules.toml shows the format): the first rule
   whose conditions (industry, region, customer type, budget range) match the lead names its pool of rep ids
   and a cap on open leads (待跟进 < N); without a matching rule, or for a rule without a pool, the pool is every
   candidate whose declared regions, industries and customer types cover the lead. A duplicate of a lead that
   an available candidate owns goes to that rep: the customer already has one.
2. The model ranks within the pool: the health model re-scored as if each rep owned the lead (each rep's owner
   figures, all reps in one pass through models/actions.py `what_if_features`), plus the lift of the rep's
   record with this kind of lead (industry, region, channel; models/reps.py, shrunk) on the log-odds scale.
3. Load: a rep whose open leads reach the cap (the rep's capacity, or the rule's cap if smaller) ranks after
   every rep with room, unless all are full; a full rep's ranking score is the expected probability scaled by
   cap / (open leads + 1), so among full reps the less overloaded go first.

Fallbacks (each said in the answer): a rep the training history does not know, or knows without a closed lead,
gets the team's prior (no lift); a pool with no available rep widens to every available candidate; no available
rep at all leaves the lead unassigned with an error; a lead that fails the contract is rejected with its problems.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from features.contract import ContractError, parse_timestamps, request_to_tables
from models.actions import ACTIONS, Event, Proposal, moved_owner_figures, what_if_features
from models.artifact import LeadArtifact, earlier_leads, lead_owners
from models.reps import SEGMENTS, RepSegmentModel, logit, sigmoid
from models.schema import AssignAnswer, LeadError, RepIn, RepProblem, RepRanking, SegmentRecord

TERRITORY = "按销售负责的地区/行业/客户类型"


class RulesError(ValueError):
    """The routing rules file is unreadable or malformed; the message names the rule and the key."""


@dataclass(frozen=True)
class Rule:
    """Conditions on the lead (each a set of accepted values; empty: any) -> a pool of rep ids and a cap."""

    name: str
    industries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # provinces or cities
    customer_types: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    budget_min: float | None = None
    budget_max: float | None = None
    pool: tuple[str, ...] = ()  # rep ids; empty: the candidates whose territory covers the lead
    max_open: float | None = None  # a rep with this many open leads or more is full (待跟进 < max_open)

    def matches(self, lead: dict[str, Any]) -> bool:
        def accepts(values: tuple[str, ...], *fields: str) -> bool:
            return not values or any(lead.get(f) in values for f in fields)

        budget = lead.get("budget_cny")
        if (self.budget_min is not None or self.budget_max is not None) and _missing(budget):
            return False
        return (
            accepts(self.industries, "industry")
            and accepts(self.regions, "province", "city")
            and accepts(self.customer_types, "customer_type")
            and accepts(self.channels, "channel")
            and (self.budget_min is None or budget >= self.budget_min)
            and (self.budget_max is None or budget < self.budget_max)
        )


_RULE_KEYS = {"name", "industries", "regions", "customer_types", "channels", "budget_min", "budget_max", "pool",
              "max_open"}  # fmt: skip


@dataclass(frozen=True)
class RoutingRules:
    rules: tuple[Rule, ...] = ()
    max_open: float | None = None  # the cap for every pool whose rule sets none
    source: str = "(no rules file)"

    @classmethod
    def from_env(cls) -> RoutingRules:
        """LEADSCORE_ASSIGN_RULES names the TOML file; unset: no rules (pools by territory, no default cap)."""
        path = os.environ.get("LEADSCORE_ASSIGN_RULES")
        return cls.from_file(path) if path else cls()

    @classmethod
    def from_file(cls, path: str | Path) -> RoutingRules:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RulesError(f"routing rules {path}: cannot read: {exc}") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "(rules)") -> RoutingRules:
        unknown = set(raw) - {"max_open", "rule"}
        if unknown:
            raise RulesError(f"routing rules {source}: unknown top-level keys {sorted(unknown)} (max_open, [[rule]])")
        rules = []
        for i, entry in enumerate(raw.get("rule", [])):
            where = f"routing rules {source}: rule #{i + 1}"
            if not isinstance(entry, dict):
                raise RulesError(f"{where}: must be a table ([[rule]])")
            where += f" ({entry.get('name', 'unnamed')})"
            if unknown := set(entry) - _RULE_KEYS:
                raise RulesError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_RULE_KEYS)}")
            values: dict[str, Any] = {"name": str(entry.get("name") or f"rule {i + 1}")}
            for key in ("industries", "regions", "customer_types", "channels", "pool"):
                items = entry.get(key, [])
                if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                    raise RulesError(f"{where}: {key} must be a list of strings")
                values[key] = tuple(items)
            for key in ("budget_min", "budget_max", "max_open"):
                if key in entry:
                    values[key] = _number(entry[key], f"{where}: {key}")
            rules.append(Rule(**values))
        default = _number(raw["max_open"], f"routing rules {source}: max_open") if "max_open" in raw else None
        return cls(tuple(rules), default, source)

    def match(self, lead: dict[str, Any]) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(lead)), None)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RulesError(f"{where} must be a non-negative number, got {value!r}")
    return float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


@dataclass
class Candidate:
    rep_id: str
    regions: tuple[str, ...]
    industries: tuple[str, ...]
    customer_types: tuple[str, ...]
    open_leads: float
    capacity: float | None
    available: bool

    def covers(self, lead: dict[str, Any]) -> bool:
        """The lead is in the rep's declared territory (an empty list covers everything)."""
        return (
            (not self.regions or lead.get("province") in self.regions or lead.get("city") in self.regions)
            and (not self.industries or lead.get("industry") in self.industries)
            and (not self.customer_types or lead.get("customer_type") in self.customer_types)
        )


def parse_candidates(raw: Any) -> tuple[list[Candidate], list[RepProblem]]:
    """The request's reps, each checked on its own: a bad or repeated entry is reported and left out."""
    if not isinstance(raw, list):
        return [], [RepProblem(rep_id="*", field="reps", reason="must be a list of rep objects")]
    candidates, problems, seen = [], [], set()
    for i, item in enumerate(raw):
        label = item.get("rep_id") if isinstance(item, dict) and isinstance(item.get("rep_id"), str) else f"#{i}"
        try:
            rep = RepIn.model_validate(item)
        except ValidationError as exc:
            for e in exc.errors()[:5]:
                problems.append(RepProblem(rep_id=label, field=".".join(map(str, e["loc"])) or "*", reason=e["msg"]))
            continue
        if not rep.rep_id.strip():
            problems.append(RepProblem(rep_id=label, field="rep_id", reason="must not be empty"))
            continue
        if rep.rep_id in seen:
            problems.append(RepProblem(rep_id=label, field="rep_id", reason="repeated: the first entry is used"))
            continue
        seen.add(rep.rep_id)
        candidates.append(
            Candidate(
                rep.rep_id,
                tuple(rep.regions),
                tuple(rep.industries),
                tuple(rep.customer_types),
                float(rep.open_leads),
                rep.capacity,
                rep.available,
            )  # fmt: skip
        )
    return candidates, problems


@dataclass
class _Pool:
    name: str
    members: set[str]
    cap: float | None
    fallback: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # rep -> why not in the pool


def _pool(lead: dict[str, Any], candidates: list[Candidate], rules: RoutingRules, exclude: set[str]) -> _Pool:
    rule = rules.match(lead)
    cap = rule.max_open if rule is not None and rule.max_open is not None else rules.max_open
    name = f"规则「{rule.name}」" if rule is not None else TERRITORY
    members, notes = set(), {}
    for c in candidates:
        if c.rep_id in exclude:
            notes[c.rep_id] = "已分配过该线索且未跟进，本次不再考虑"
        elif rule is not None and rule.pool and c.rep_id not in rule.pool:
            notes[c.rep_id] = f"不在{name}的销售池内"
        elif (rule is None or not rule.pool) and not c.covers(lead):
            notes[c.rep_id] = "不负责该线索的地区/行业/客户类型"
        elif not c.available:
            notes[c.rep_id] = "当前不可用"
        else:
            members.add(c.rep_id)
    pool = _Pool(name, members, cap, notes=notes)
    if not members:
        widened = {c.rep_id for c in candidates if c.available and c.rep_id not in exclude}
        if widened:
            pool.fallback = f"{name}内没有可用的销售，改为在全部可用的候选销售中排序"
            pool.members = widened
            pool.notes = {k: v for k, v in notes.items() if k not in widened}
    return pool


def _segment_records(row: pd.Series) -> list[SegmentRecord]:
    records = []
    for segment in SEGMENTS:
        level = row[f"{segment}_level"]
        if level is None or row[f"{segment}_n"] == 0:
            continue
        team = row[f"{segment}_team"]
        records.append(
            SegmentRecord(
                segment=segment,
                level=str(level),
                leads=int(row[f"{segment}_n"]),
                wins=int(row[f"{segment}_wins"]),
                rate=round(float(row[f"{segment}_rate"]), 4),
                team_rate=None if pd.isna(team) else round(float(team), 4),
                lift=round(float(row[f"{segment}_lift"]), 4),
            )  # fmt: skip
        )
    return records


def _record_sentence(rep: str, record: SegmentRecord) -> str:
    kind = {"industry": f"{record.level}行业", "region": f"{record.level}地区", "channel": f"{record.level}渠道"}
    compared = ""
    if record.team_rate is not None:
        compared = f"，{'高于' if record.rate >= record.team_rate else '低于'}团队均值{record.team_rate:.1%}"
    return (
        f"销售{rep}近一年{kind[record.segment]}线索{record.leads}条赢{record.wins}单，"
        f"按经验收缩后赢单率{record.rate:.1%}{compared}"
    )


@dataclass
class Prepared:
    """What ranking needs of one lead that does not depend on the reps' loads: the parsed lead, its duplicate
    screen, and each rep's health probability and record (`rep_ids` in order). Computed for many leads in one
    pass by `prepare`; `decide` then applies the rules and the loads."""

    lead_id: str | None
    as_of: pd.Timestamp | None
    lead: dict[str, Any] | None
    errors: list[LeadError]
    warnings: list[str]
    duplicate_of: str | None = None
    rep_ids: list[str] = field(default_factory=list)
    health_p: np.ndarray | None = None
    figures: pd.DataFrame | None = None


def prepare(
    artifact: LeadArtifact,
    leads: list[Any],
    rep_ids: list[str],
    *,
    as_of: list[Any] | Any = None,
    earlier: pd.DataFrame | None = None,
) -> list[Prepared]:
    """`Prepared` for each sent lead (`as_of`: one for all, or one per lead; `earlier`: leads rows a lead store
    kept, for the duplicate screen), every (lead, rep) pair through the health model in one pass."""
    per_lead = as_of if isinstance(as_of, list) else [as_of] * len(leads)
    ids = [lead.get("lead_id") if isinstance(lead, dict) and isinstance(lead.get("lead_id"), str) else None
           for lead in leads]  # fmt: skip
    try:
        default_as_of, result = request_to_tables({"as_of": per_lead[0] if per_lead else None, "leads": leads})
    except ContractError as exc:
        problem = [{"table": "*", "field": "*", "reason": str(exc)}]
        return [Prepared(i, None, None, [LeadError(lead_id=i or f"#{k}", problems=problem)], [])
                for k, i in enumerate(ids)]  # fmt: skip
    tables = result.tables
    kept = tables["leads"].reset_index(drop=True)
    position = {lead_id: k for k, lead_id in enumerate(kept["lead_id"])}
    stamps = [default_as_of] * len(leads)
    if isinstance(as_of, list):  # the first was checked by request_to_tables; an unreadable later one is its own
        parsed = parse_timestamps(pd.Series([v if isinstance(v, str) else None for v in per_lead], dtype=object))
        stamps = [default_as_of if pd.isna(t) else t for t in parsed]
    snapshots = pd.DataFrame({"lead_id": kept["lead_id"], "as_of": [stamps[ids.index(i)] for i in kept["lead_id"]]})
    context = artifact.pipeline.context(tables, snapshots, earlier) if len(kept) else None
    health = _health_if_owned(artifact, tables, snapshots, context, rep_ids) if len(kept) and rep_ids else None
    segments: RepSegmentModel | None = artifact.models.get("rep_segments")
    out = []
    for k, lead_id in enumerate(ids):
        problems = [p for p in result.problems if p.lead_id == lead_id or p.row == f"#{k}"]
        if lead_id not in position:
            errors = [
                {"table": p.table, "field": p.field, "reason": p.reason} for p in problems if p.severity == "error"
            ]
            errors = errors or [{"table": "leads", "field": "lead_id", "reason": "missing, or repeated in the request"}]
            out.append(Prepared(lead_id, stamps[k], None, [LeadError(lead_id=lead_id or f"#{k}", problems=errors)], []))
            continue
        row = position[lead_id]
        lead = kept.iloc[row].to_dict()
        warnings = [f"{p.table}.{p.field}: {p.reason}" for p in problems if p.severity == "warning"]
        duplicate = context["duplicate_of"].iat[row]
        figures = None
        if segments is not None and rep_ids:
            region = lead.get("city") if not _missing(lead.get("city")) else lead.get("province")
            levels = {"industry": lead.get("industry"), "channel": lead.get("channel"), "region": region}
            figures = segments.figures(rep_ids, {k2: (None if _missing(v) else v) for k2, v in levels.items()})
            if snapshots["as_of"].iat[row] < segments.as_of_:
                warnings.append(
                    f"as_of 早于销售历史的截止时间 {segments.as_of_.isoformat()}：历史胜率可能含 as_of 之后的结果"
                )
        elif segments is None:
            warnings.append("模型不含销售分群胜率（rep_segments），只按健康分模型排序：请重新训练")
        out.append(
            Prepared(
                lead_id,
                snapshots["as_of"].iat[row],
                lead,
                [],
                warnings,
                None if duplicate is None or pd.isna(duplicate) else str(duplicate),
                list(rep_ids),
                health[row] if health is not None else None,
                figures,
            )  # fmt: skip
        )
    return out


def rank(
    artifact: LeadArtifact,
    request: dict[str, Any],
    rules: RoutingRules,
    *,
    kind: str = "assign",
    exclude: tuple[str, ...] = (),
    decision_id: str | None = None,
) -> AssignAnswer:
    """POST /assign's answer for `request` = {"as_of", "lead", "reps", "earlier" (a lead store's leads rows)}:
    the candidates ranked, the chosen rep and the reasons. `exclude`: reps not to choose (re-routing)."""
    request = request if isinstance(request, dict) else {}
    candidates, rep_errors = parse_candidates(request.get("reps"))
    earlier = earlier_leads(request)
    [prepared] = prepare(artifact, [request.get("lead")], [c.rep_id for c in candidates],
                         as_of=request.get("as_of"), earlier=earlier)  # fmt: skip
    owners = lead_owners(pd.DataFrame({"lead_id": [], "owner_id": []}), earlier)
    return decide(artifact, prepared, candidates, rules, owners=owners, rep_errors=rep_errors, kind=kind,
                  exclude=exclude, decision_id=decision_id)  # fmt: skip


def decide(
    artifact: LeadArtifact,
    prepared: Prepared,
    candidates: list[Candidate],
    rules: RoutingRules,
    *,
    owners: dict[str, str] | None = None,
    rep_errors: list[RepProblem] | None = None,
    kind: str = "assign",
    exclude: tuple[str, ...] = (),
    decision_id: str | None = None,
) -> AssignAnswer:
    """The rules and loads applied to a prepared lead (`candidates` in the order of `prepared.rep_ids`):
    the ranking, the chosen rep and the reasons. `owners`: lead_id -> owner of earlier leads (duplicates)."""
    as_of = prepared.as_of if prepared.as_of is not None else pd.Timestamp.now(tz="Asia/Shanghai")
    duplicate_of = prepared.duplicate_of
    duplicate_owner = (owners or {}).get(duplicate_of) if duplicate_of else None
    base = {"decision_id": decision_id or str(uuid.uuid4()), "kind": kind, "lead_id": prepared.lead_id,
            "model_version": artifact.model_version, "rep_errors": rep_errors or [], "as_of": as_of.isoformat(),
            "duplicate_of": duplicate_of, "duplicate_owner": duplicate_owner, "warnings": prepared.warnings}  # fmt: skip
    if prepared.lead is None:
        return AssignAnswer(**base, status="rejected", chosen_rep=None, reason="线索未通过数据契约校验，未分配",
                            pool="—", ranking=[], errors=prepared.errors)  # fmt: skip
    if not candidates:
        return AssignAnswer(**base, status="unassigned", chosen_rep=None, reason="没有有效的候选销售，未分配",
                            pool="—", ranking=[], errors=[LeadError(lead_id=prepared.lead_id or "#0", problems=[
                                {"table": "reps", "field": "*", "reason": "no valid candidate rep"}])])  # fmt: skip
    lead, reps, figures = prepared.lead, prepared.rep_ids, prepared.figures
    health_p = prepared.health_p
    lift = figures["lift"].to_numpy() if figures is not None else np.zeros(len(reps))
    expected = sigmoid(logit(health_p) + lift)
    pool = _pool(lead, candidates, rules, set(exclude))
    by_id = {c.rep_id: c for c in candidates}
    caps = {r: _cap(by_id[r].capacity, pool.cap) for r in reps}
    room = {r: caps[r] is None or by_id[r].open_leads < caps[r] for r in reps}
    eligible = {r: r in pool.members for r in reps}
    any_room = any(room[r] for r in reps if eligible[r])
    score = {
        r: float(expected[i]) if room[r] else float(expected[i]) * caps[r] / (by_id[r].open_leads + 1)
        for i, r in enumerate(reps)
    }
    order = sorted(range(len(reps)), key=lambda i: (not eligible[reps[i]], not room[reps[i]], -score[reps[i]], i))
    chosen = next((reps[i] for i in order if eligible[reps[i]]), None)
    to_owner = (
        duplicate_owner is not None and duplicate_owner in by_id and by_id[duplicate_owner].available
        and duplicate_owner not in set(exclude)
    )  # fmt: skip
    if to_owner:
        chosen = duplicate_owner
        order = [reps.index(chosen)] + [i for i in order if reps[i] != chosen]
    ranking = []
    for position, i in enumerate(order, start=1):
        r = reps[i]
        row = figures.iloc[i] if figures is not None else None
        records = _segment_records(row) if row is not None else []
        reasons = _reasons(r, by_id[r], row, records, float(health_p[i]), float(lift[i]), float(expected[i]),
                           caps[r], room[r], any_room, pool.notes.get(r))  # fmt: skip
        ranking.append(
            RepRanking(
                rep_id=r,
                rank=position,
                eligible=eligible[r] or r == chosen,
                has_room=room[r],
                expected_win_probability=round(float(expected[i]), 4),
                health_win_probability=round(float(health_p[i]), 4),
                segment_lift=round(float(lift[i]), 4),
                ranking_score=round(score[r], 4),
                open_leads=by_id[r].open_leads,
                cap=caps[r],
                history_leads=int(row["n"]) if row is not None else 0,
                segments=records,
                reasons=reasons,
            )  # fmt: skip
        )
    if chosen is None:
        return AssignAnswer(**base, status="unassigned", chosen_rep=None, pool=pool.name, ranking=ranking,
                            reason="没有可用的候选销售（全部不可用或已排除），未分配：请人工处理",
                            errors=[LeadError(lead_id=prepared.lead_id, problems=[{"table": "reps", "field": "available",
                                    "reason": "no available candidate rep"}])])  # fmt: skip
    top = next(item for item in ranking if item.rep_id == chosen)
    if to_owner:
        days = artifact.pipeline.screening_.duplicate_days
        reason = f"重复线索（与{duplicate_of}电话和公司相同，{days:.0f}天内），分配给该客户的原负责销售{chosen}"
    else:
        reason = _summary(chosen, top, by_id[chosen], sum(r.eligible for r in ranking))
    return AssignAnswer(**base, status="assigned", chosen_rep=chosen, reason=reason, pool=pool.name,
                        fallback=pool.fallback, ranking=ranking)  # fmt: skip


def _cap(capacity: float | None, rule_cap: float | None) -> float | None:
    caps = [c for c in (capacity, rule_cap) if c is not None]
    return min(caps) if caps else None


def _health_if_owned(artifact: LeadArtifact, tables, snapshots, context, reps: list[str]) -> np.ndarray:
    """The health model's P(won within 90 days) of each snapshot's lead with each rep as its owner (rows x reps),
    every pair through the pipeline in one pass (models/actions.py `what_if_features`)."""
    reassign = ACTIONS["reassign"]
    proposals = [Proposal(row, reassign, "", Event(lead=(("owner_id", rep),)))
                 for row in range(len(snapshots)) for rep in reps]  # fmt: skip
    parts = artifact.pipeline.owner_parts(tables)
    moved = [
        moved_owner_figures(artifact.pipeline, tables, snapshots, row, reps, parts) for row in range(len(snapshots))
    ]
    index = {rep: j for j, rep in enumerate(reps)}
    features = what_if_features(
        artifact.pipeline, tables, snapshots, context, proposals,
        owner_context=lambda row, owner: moved[row][index[owner]],
    )  # fmt: skip
    return artifact.health.predict(features).reshape(len(snapshots), len(reps))


def _reasons(rep, candidate, row, records, health_p, lift, expected, cap, room, any_room, note) -> list[str]:
    reasons = []
    if note:
        reasons.append(note)
    if row is None or not row["known_rep"]:
        reasons.append(f"销售{rep}在训练历史中没有已知结果的线索：按团队先验估计（不加减分）")
    elif row["n"] > 0:
        reasons.append(
            f"销售{rep}近一年{int(row['n'])}条线索赢{int(row['wins'])}单，按经验收缩后赢单率{row['rate']:.1%}"
        )
    for record in sorted(records, key=lambda r: -abs(r.lift)):
        reasons.append(_record_sentence(rep, record))
    if cap is None:
        reasons.append(f"当前待跟进{candidate.open_leads:.0f}条（未设上限）")
    elif room:
        reasons.append(f"当前待跟进{candidate.open_leads:.0f}条（上限{cap:.0f}条，有余量）")
    else:
        after = "排在有余量的销售之后" if any_room else "所有候选销售都已满，按超载程度折算"
        reasons.append(f"当前待跟进{candidate.open_leads:.0f}条，已达上限{cap:.0f}条：{after}")
    reasons.append(f"若由其跟进，预计90天赢单概率{expected:.1%}（健康分模型{health_p:.1%}，历史分群{lift:+.2f}）")
    return reasons


def _summary(rep: str, top: RepRanking, candidate: Candidate, eligible: int) -> str:
    """The decision's basis in one sentence, as the issue's example: the rep's strongest record, the load."""
    strongest = max(top.segments, key=lambda r: r.lift, default=None)
    record = _record_sentence(rep, strongest) if strongest is not None and strongest.lift > 0 else f"销售{rep}"
    load = f"当前待跟进{candidate.open_leads:.0f}条" + (f"（上限{top.cap:.0f}条）" if top.cap is not None else "")
    return f"因{record}，且{load}，预计90天赢单概率{top.expected_win_probability:.1%}，在{eligible}名可选销售中排第1，故分配"


__all__ = ["Candidate", "RoutingRules", "Rule", "RulesError", "parse_candidates", "rank"]

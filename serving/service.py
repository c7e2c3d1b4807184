"""BentoML services: score, explain and recommend for the contract's online request.

POST /score (many leads), POST /explain (one lead, every factor), POST /recommend (next actions),
POST /assign (rank candidate reps for a new lead), POST /assign/overdue (re-route leads nobody touched),
POST /reload (ask the registry for a new champion), GET /metadata, GET /leads/{lead_id}/history (every
scoring and what moved the score); the manager page, its cockpit and the assignment log under /manager; alerts
to the teams' group robots when LEADSCORE_ALERTS_FILE configures them (serving/alerts.py); /healthz, /readyz,
/livez and the
OpenAPI docs (/, /docs.json) come with BentoML. Every route but the probes and docs needs X-API-Key.

Two services, as BentoML's adaptive batching wants them: `LeadScoring` takes the HTTP requests (key,
limits, prediction log, metadata) and hands each to `ModelWorker`, whose batchable `score_jobs` receives
the requests that arrive together as one batch and scores them in one pass
(`LeadArtifact.score_requests`: each request still gets exactly its own answer). Requests and answers are
the typed models of models/schema.py, so the OpenAPI document (/docs.json) describes every field. The per-call cost of
the feature pipeline is most of a small request's cost, so this is where batching pays (docs/service.md).

The front keeps a lead store (serving/store.py): each request's leads are completed from what earlier requests
sent (so a CRM may send only what changed) and compared with the stored leads for duplicates, and every /assign
decision is logged there for the manager page (docs/assignment.md).

The model comes from BentoML's model store (imported from the MLflow registry's champion by
`leadscore train`; LEADSCORE_MODEL_TAG picks one, default the latest import). Each model worker then
asks the registry every LEADSCORE_RELOAD_SECONDS whether the champion changed and swaps the new one in
without a restart; requests in flight finish on the model they started with.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import os
import signal
import threading
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import aiohttp
import anyio
import bentoml
import pandas as pd
import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, SkipValidation
from sqlalchemy.exc import SQLAlchemyError

from features.catalogue import CATALOGUE
from features.contract import ContractError
from features.text import mask_personal
from models.artifact import LeadArtifact
from models.assignment import RoutingRules, RulesError, rank
from models.champion import champion_version, load_champion
from models.integrity import DIGEST_TAG, IntegrityError, verify_model
from models.pyfunc import LeadPyfunc
from models.schema import (
    NULLABLE,
    AssignAnswer,
    DecisionLogEntry,
    HistoryAnswer,
    LeadIn,
    Metadata,
    OverdueAnswer,
    RecommendAnswer,
    ReloadAnswer,
    RepIn,
    ScoreAnswer,
)
from models.settings import HEALTH_MODEL_NAME, Settings
from models.tiers import TierThresholds
from serving import page
from serving.alerts import AlertsConfig, AlertSender
from serving.config import ApiKeys, ServiceSettings
from serving.guard import KEY_COOKIE, Guard, mask_all_log_handlers, matching_key
from serving.predlog import PredictionLog
from serving.store import LeadStore, lead_id_of

logger = logging.getLogger("leadscore.service")
# Python's default (WARNING) would hide what operators read: champion reloads, one line per request.
logger.setLevel(logging.INFO)
extra = FastAPI()
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class ErrorBody(BaseModel):
    error: str


# Documented by the schema, validated by the data contract: a lead with a bad value gets its own error entry
# naming the field, and the other leads of the request are still scored (models/schema.py).
Leads = Annotated[SkipValidation[list[LeadIn]], Field(description="leads rows, each with optional event lists")]
OneLead = Annotated[SkipValidation[LeadIn], Field(description="one lead")]
AsOf = Annotated[
    str | None, Field(description="ISO 8601; default now; no offset = Asia/Shanghai", json_schema_extra=NULLABLE)
]
Reps = Annotated[
    SkipValidation[list[RepIn]],
    Field(description="the candidate reps; each is checked on its own (a bad entry is reported, the rest ranked)"),
]
Hours = Annotated[
    float | None,
    Field(ge=0, le=1e6, description="assigned more than this many hours ago (default 2)", json_schema_extra=NULLABLE),
]


class TooManyLeads(bentoml.exceptions.UnprocessableEntity):
    pass


@bentoml.service(traffic={"timeout": 60}, workers=ServiceSettings.model_workers())
class ModelWorker:
    """The models, behind a batchable API: one job is one online request."""

    def __init__(self) -> None:
        mask_all_log_handlers()
        self.registry = Settings.from_env()
        self.reload_seconds = ServiceSettings.reload_interval()
        try:
            bento_model = stored_model()
            self.rules = routing_rules()
        except StartupError as exc:
            # BentoML would restart this worker forever; the whole server stops instead, saying why.
            logger.critical("leadscore cannot start: %s", exc)
            os.kill(os.getppid(), signal.SIGTERM)
            raise
        wrapper: LeadPyfunc = bentoml.mlflow.load_model(bento_model).unwrap_python_model()  # models/pyfunc.py
        artifact: LeadArtifact = wrapper.artifact
        self.registry_version = bento_model.info.metadata.get("mlflow_version", "?")
        artifact.model_version = f"{HEALTH_MODEL_NAME}/{self.registry_version}"
        self.artifact = self._ready(artifact)
        self._reload_lock = threading.Lock()
        if self.reload_seconds:
            threading.Thread(target=self._watch_registry, daemon=True, name="champion-watch").start()

    @staticmethod
    def _ready(artifact: LeadArtifact) -> LeadArtifact:
        artifact.tiers = TierThresholds.from_env()
        if days := ServiceSettings.duplicate_days():
            artifact.pipeline.screening_ = dataclasses.replace(artifact.pipeline.screening_, duplicate_days=days)
        return artifact.warm_up()  # at start-up or reload, not on the first request

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=30_000)
    def score_jobs(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each job {"request": online request, "all_factors": bool} -> its answer, or {"error": message}."""
        artifact = self.artifact  # one model for the whole batch, even if a reload swaps it meanwhile
        answers = artifact.score_requests([j["request"] for j in jobs], all_factors=[j["all_factors"] for j in jobs])
        return [{"error": str(a)} if isinstance(a, ContractError) else a.model_dump(mode="json") for a in answers]

    @bentoml.api
    def assign_jobs(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each job {"request": {"as_of", "lead", "reps", "earlier"}, "kind", "exclude"} -> its AssignAnswer."""
        artifact = self.artifact
        return [self._assign_one(artifact, job) for job in jobs]

    def _assign_one(self, artifact: LeadArtifact, job: dict[str, Any]) -> dict[str, Any]:
        kind = job.get("kind", "assign")
        try:
            answer = rank(artifact, job["request"], self.rules, kind=kind, exclude=tuple(job.get("exclude", ())))
        except Exception as exc:  # noqa: BLE001 - the decision is still answered and logged, never a 500
            logger.error("a lead could not be ranked (%s)", type(exc).__name__)
            lead = job["request"].get("lead")
            lead_id = lead_id_of(lead)
            reason = f"this lead could not be ranked (internal error {type(exc).__name__})"
            answer = AssignAnswer(
                decision_id=str(uuid.uuid4()), kind=kind, lead_id=lead_id, status="unassigned", chosen_rep=None,
                reason="内部错误，未分配：请人工处理", pool="—", ranking=[], model_version=artifact.model_version,
                as_of=pd.Timestamp.now(tz="Asia/Shanghai").isoformat(),
                errors=[{"lead_id": lead_id or "#0", "problems": [{"table": "*", "field": "*", "reason": reason}]}],
            )  # fmt: skip
        return answer.model_dump(mode="json")

    @bentoml.api
    def describe(self) -> dict[str, Any]:
        """What /metadata shows of the model."""
        artifact = self.artifact
        tiers = artifact.tiers
        intent = artifact.models.get("intent")
        return {
            "model_version": artifact.model_version,
            "registry_version": self.registry_version,
            "feature_set_version": artifact.feature_set_version,
            "code_revision": artifact.code_revision,
            "models": artifact.describe_models(),
            "health_model": artifact.card or None,
            "evaluation": artifact.metrics,
            "tiers": {"战略级": tiers.strategic, "重点跟进": tiers.focus, "培育中": tiers.nurture},
            "intent_labels": list(intent.labels) if intent is not None else None,
        }

    @bentoml.api
    def reload(self) -> dict[str, Any]:
        try:
            changed = self._reload_if_changed()
        except Exception as exc:  # the registry is unreachable or its model unloadable: keep serving
            raise bentoml.exceptions.ServiceUnavailable(f"cannot reach the champion in the registry: {exc}") from exc
        return {"reloaded": changed, "model_version": self.artifact.model_version}

    def _reload_if_changed(self) -> bool:
        with self._reload_lock:
            version = champion_version(self.registry)
            if version == self.registry_version:
                return False
            started = time.monotonic()
            artifact = self._ready(load_champion(self.registry))
            # The old models are freed when the last batch that holds them ends: only then can their memory
            # go back to the system (glibc keeps freed heap otherwise; each reload would leave the worker a
            # model's size larger, bench/soak.py).
            weakref.finalize(self.artifact, trim_freed_memory)
            self.artifact, self.registry_version = artifact, version
            gc.collect()  # models in reference cycles that no batch holds go now
            # The pid tells the workers apart: the soak (bench/soak.py) reads when each one switched.
            logger.info("champion reloaded in model worker pid %d in %.1f s: now %s", os.getpid(),
                        time.monotonic() - started, artifact.model_version)  # fmt: skip
            return True

    def _watch_registry(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.reload_seconds):
            try:
                self._reload_if_changed()
            except Exception as exc:
                logger.warning("champion check failed, still serving %s: %s", self.artifact.model_version, exc)


def trim_freed_memory() -> None:
    """Hand the process's freed heap back to the system (glibc's malloc_trim)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator decides
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    logger.info("the previous models of model worker pid %d are freed", os.getpid())


def stored_model(tag: str | None = None) -> bentoml.Model:
    """The BentoML model to serve (LEADSCORE_MODEL_TAG, default the latest import), its files checked
    against the digest the registry recorded, or a StartupError that names what is wrong."""
    tag = tag or os.environ.get("LEADSCORE_MODEL_TAG", f"{HEALTH_MODEL_NAME}:latest")
    try:
        bento_model = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        raise StartupError(
            f"LEADSCORE_MODEL_TAG {tag}: no such model in BentoML's model store (BENTOML_HOME {os.environ.get('BENTOML_HOME', '~/bentoml')}); "
            "run `leadscore train` (it imports the champion) or set the tag of an imported model"
        ) from None
    try:
        verify_model(
            bento_model.path_of("mlflow_model"), bento_model.info.metadata.get(DIGEST_TAG), f"BentoML model {tag}"
        )
    except IntegrityError as exc:
        raise StartupError(str(exc)) from None
    return bento_model


class StartupError(RuntimeError):
    """The service cannot start: the message says why."""


def routing_rules() -> RoutingRules:
    """The routing rules of LEADSCORE_ASSIGN_RULES, or a StartupError that names the rule and key at fault."""
    try:
        return RoutingRules.from_env()
    except RulesError as exc:
        raise StartupError(f"LEADSCORE_ASSIGN_RULES: {exc}") from None


# The front's APIs are async: they wait on the model worker without holding a thread, so concurrent
# requests reach the model together and can be batched (sync APIs run one at a time by default).
@bentoml.service(traffic={"timeout": 60})
@bentoml.asgi_app(extra, path="/")
class LeadScoring:
    model = bentoml.depends(ModelWorker)

    def __init__(self) -> None:
        mask_all_log_handlers()
        self.settings = ServiceSettings.from_env()
        self.predictions = PredictionLog(self.settings.prediction_log_url)
        self.store = LeadStore(self.settings.store_url, self.settings.store_retention_days)
        self.api_keys = ApiKeys()
        config = AlertsConfig.from_env()  # LEADSCORE_ALERTS_FILE: a bad file stops the start, naming the field
        self.alerts = AlertSender(config) if config is not None else None
        # One sender thread for the process: robots are called in the order answers were given, and a slow
        # robot (retries with back-off) queues messages instead of piling up a thread per request.
        self._alert_sender = ThreadPoolExecutor(1, thread_name_prefix="alerts")  # no thread until the first alert

    async def _answer(self, endpoint: str, leads: list[Any], as_of: str | None, **options) -> ScoreAnswer:
        if not isinstance(leads, list):  # the schema documents the leads; the contract checks them (Leads)
            raise bentoml.exceptions.InvalidArgument("request field leads: must be a list of lead objects")
        if len(leads) > self.settings.max_leads:
            raise TooManyLeads(
                f"{len(leads)} leads in one request; the limit is {self.settings.max_leads} "
                "(LEADSCORE_MAX_LEADS): split the request"
            )
        # Completed from the lead store: earlier fields and events, and the stored leads a duplicate may repeat.
        leads, earlier = await anyio.to_thread.run_sync(self.store.complete, leads, as_of)
        request = {"as_of": as_of, "leads": leads, "earlier": earlier}
        job = {"request": request, "all_factors": options.get("all_factors", False)}
        [answer] = await self._call_model("score_jobs", [job])
        if "error" in answer:
            raise bentoml.exceptions.InvalidArgument(answer["error"])
        answer = ScoreAnswer.model_validate({"request_id": str(uuid.uuid4()), **answer})
        sent = {lead_id: lead for lead in leads if (lead_id := lead_id_of(lead)) is not None}
        await anyio.to_thread.run_sync(self.predictions.write, answer.request_id, endpoint, answer.results, sent)
        scored = [sent[r.lead_id] for r in answer.results if r.lead_id in sent]
        await anyio.to_thread.run_sync(self._remember, scored)
        if self.alerts is not None and answer.results:  # in the background: the answer does not wait on robots
            owners = {k: (v.get("owner_id") if isinstance(v.get("owner_id"), str) else None) for k, v in sent.items()}
            dumped = [r.model_dump(mode="json") for r in answer.results]
            self._alert_sender.submit(self.alerts.send_answers, dumped, owners)
        for error in answer.errors:
            logger.warning("request %s: lead %s rejected: %s", answer.request_id, error.lead_id,
                           [p.model_dump() for p in error.problems])  # fmt: skip
        logger.info("request %s /%s: %d scored, %d rejected", answer.request_id, endpoint, len(answer.results),
                    len(answer.errors))  # fmt: skip
        return answer

    async def _call_model(self, method: str, *args: Any) -> Any:
        """A call to the model worker. BentoML's client reuses pooled connections that the worker's server
        may have closed (its keep-alive is 5 s; a reload keeps it busy): such a call fails before the
        worker acts on it, and every model call is idempotent, so it is retried on a fresh connection."""
        for attempt in range(3):
            try:
                return await getattr(self.model.to_async, method)(*args)
            except (aiohttp.ClientConnectionError, ConnectionError) as exc:
                if attempt == 2:
                    raise bentoml.exceptions.ServiceUnavailable(f"the model worker is unreachable: {exc}") from exc
                logger.info("model worker connection was closed (%s); retrying", type(exc).__name__)
                await anyio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    @bentoml.api(route="/score")
    async def score(self, leads: Leads, as_of: AsOf = None) -> ScoreAnswer:
        """Per lead: health score, tier, real stage, close-date probabilities, intent, screening, LAI and the
        health radar, the strongest factors each way and the next actions; an error entry per invalid lead."""
        return await self._answer("score", leads, as_of)

    @bentoml.api(route="/explain")
    async def explain(self, lead: OneLead, as_of: AsOf = None) -> ScoreAnswer:
        """One lead's answer with every factor of its health score (points add up to score - base_score)."""
        return await self._answer("explain", [lead], as_of, all_factors=True)

    @bentoml.api(route="/recommend")
    async def recommend(self, leads: Leads, as_of: AsOf = None) -> RecommendAnswer:
        """Per lead: the next actions ranked by expected gain, with the score and stage they start from."""
        answer = await self._answer("recommend", leads, as_of)
        return RecommendAnswer.model_validate(answer, from_attributes=True)

    @bentoml.api(route="/assign")
    async def assign(self, lead: OneLead, reps: Reps, as_of: AsOf = None) -> AssignAnswer:
        """Rank the candidate reps for a new lead: the routing rules' pool first, then the expected 90-day win
        probability if that rep takes the lead, adjusted for load and capacity, each rep with its reasons from
        its own history; the decision (decision_id) is logged for the manager page."""
        merged = await anyio.to_thread.run_sync(self.store.merge, lead, as_of)
        earlier = await anyio.to_thread.run_sync(self.store.earlier_leads, [merged])
        job = {"request": {"as_of": as_of, "lead": merged, "reps": reps, "earlier": earlier}, "kind": "assign"}
        [answer] = await self._call_model("assign_jobs", [job])
        answer = AssignAnswer.model_validate(answer)
        await anyio.to_thread.run_sync(self._log_decision, answer, {"as_of": as_of, "lead": lead, "reps": reps}, merged)
        return answer

    @bentoml.api(route="/assign/overdue")
    async def assign_overdue(self, reps: Reps, hours: Hours = None, as_of: AsOf = None) -> OverdueAnswer:
        """The leads assigned more than `hours` ago (LEADSCORE_REROUTE_HOURS, default 2) that no rep has touched
        since (no outbound activity sent after the decision), each re-routed to the best rep not yet tried;
        every re-routing is logged like an assignment. A scheduler may call this every few minutes."""
        hours = self.settings.reroute_hours if hours is None else float(hours)
        overdue = await anyio.to_thread.run_sync(self.store.overdue, hours)
        jobs, previous = [], []
        for item in overdue:
            lead = await anyio.to_thread.run_sync(self.store.lead, item["lead_id"])
            earlier = await anyio.to_thread.run_sync(self.store.earlier_leads, [lead])
            tried = await anyio.to_thread.run_sync(self.store.tried_reps, item["lead_id"])
            request = {"as_of": as_of, "lead": lead, "reps": reps, "earlier": earlier}
            jobs.append({"request": request, "kind": "reroute", "exclude": tried})
            previous.append((item["decision_id"], lead))
        answers = [AssignAnswer.model_validate(a) for a in await self._call_model("assign_jobs", jobs)] if jobs else []
        for answer, (decision_id, lead) in zip(answers, previous, strict=True):
            inputs = {"as_of": as_of, "lead_id": answer.lead_id, "reps": reps, "hours": hours}
            await anyio.to_thread.run_sync(self._log_decision, answer, inputs, lead, decision_id)
        shown = [{**o, "assigned_at": o["assigned_at"].isoformat()} for o in overdue]
        return OverdueAnswer.model_validate({"hours": hours, "overdue": shown, "rerouted": answers})

    def _remember(self, leads: list[Any], owners: dict[str, str] | None = None) -> None:
        """Leads into the store; a database that refuses them costs the memory, never the answer."""
        try:
            self.store.remember(leads, owners)
        except SQLAlchemyError as exc:
            logger.error(
                "lead store refused %d leads (%s); they are answered, not stored", len(leads), type(exc).__name__
            )

    def _log_decision(self, answer: AssignAnswer, inputs: dict, lead: Any, previous: str | None = None) -> None:
        """The decision into the assignment log, and the lead (with its new owner) into the store."""
        try:
            self.store.log_decision(answer.model_dump(mode="json"), inputs, previous)
        except SQLAlchemyError as exc:
            logger.error("assignment log refused decision %s (%s)", answer.decision_id, type(exc).__name__)
        if answer.status != "rejected" and isinstance(lead, dict):
            owners = {answer.lead_id: answer.chosen_rep} if answer.chosen_rep else {}
            self._remember([lead], owners)
        logger.info("decision %s (%s): lead %s -> %s", answer.decision_id, answer.kind, answer.status,
                    answer.chosen_rep or "nobody")  # fmt: skip

    @bentoml.api(route="/reload")
    async def reload(self) -> ReloadAnswer:
        """Load the registry's champion now if it changed (in the model worker asked; every model worker
        checks by itself every LEADSCORE_RELOAD_SECONDS)."""
        return ReloadAnswer.model_validate(await self._call_model("reload"))

    @extra.get("/metadata", response_model=Metadata)
    async def metadata(self) -> Metadata:
        """Model versions, evaluation figures, the feature catalogue, tiers and limits."""
        return Metadata.model_validate(
            await self._call_model("describe")
            | {
                "limits": {"max_leads": self.settings.max_leads, "max_request_bytes": self.settings.max_request_bytes},
                "features": [
                    {"name": s.name, "group": s.group, "template": s.template, "categorical": s.categorical}
                    for s in CATALOGUE.values()
                ],
            }
        )

    # The manager page (serving/page.py): HTML from the prediction log, behind the same key (as a cookie).
    @extra.get("/manager", response_class=HTMLResponse)
    async def manager_list(
        self, owner: str = "", tier: str = "", industry: str = "", stage: str = "", channel: str = ""
    ) -> HTMLResponse:
        filters = {"owner": owner, "tier": tier, "industry": industry, "stage": stage, "channel": channel}
        return HTMLResponse(await anyio.to_thread.run_sync(page.lead_list, self.predictions, filters))

    @extra.get("/manager/lead/{row_id}", response_class=HTMLResponse)
    async def manager_lead(self, row_id: int) -> HTMLResponse:
        # Beyond SQL's 64-bit integers no row exists (and the database would refuse the query).
        html = (
            None if not 0 < row_id < 2**63 else await anyio.to_thread.run_sync(page.lead_page, self.predictions, row_id)
        )
        if html is None:
            return HTMLResponse("<p>没有这条线索的评分记录</p>", status_code=404)
        return HTMLResponse(html)

    @extra.get("/manager/team", response_class=HTMLResponse)
    async def manager_team(self) -> HTMLResponse:
        return HTMLResponse(await anyio.to_thread.run_sync(page.team_page, self.predictions))

    @extra.get("/manager/cockpit", response_class=HTMLResponse)
    async def manager_cockpit(self) -> HTMLResponse:
        """The manager's cockpit (serving/cockpit.py)."""
        return HTMLResponse(await anyio.to_thread.run_sync(page.cockpit_page, self.predictions))

    @extra.get("/manager/static/plotly.min.js")
    async def plotly_js(self) -> Response:
        """plotly.js from plotly's own wheel: the charts load with no internet."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"cache-control": "max-age=86400"})

    @extra.get("/leads/{lead_id}/history", response_model=HistoryAnswer, responses={404: {"model": ErrorBody}})
    async def lead_history(self, lead_id: str) -> HistoryAnswer | JSONResponse:
        """Every scoring of the lead (from the prediction log): score, tier, stage, warnings, and between two
        scorings the factors that moved the score and by how many points."""
        rows = await anyio.to_thread.run_sync(self.predictions.history, lead_id)
        if not rows:
            return JSONResponse({"error": "no scoring of this lead in the prediction log"}, status_code=404)
        entries = await anyio.to_thread.run_sync(page.score_history, rows)
        return HistoryAnswer(lead_id=mask_personal(lead_id), source="prediction_log", entries=entries)

    @extra.get("/assign/log", response_model=list[DecisionLogEntry])
    async def assign_log(self, lead_id: str | None = None, limit: int = 100) -> list[DecisionLogEntry]:
        """The assignment log, newest first: every decision with its inputs (masked), ranking and reasons."""
        rows = await anyio.to_thread.run_sync(self.store.decisions, max(1, min(limit, 1000)), lead_id)
        return [
            DecisionLogEntry.model_validate({k: v for k, v in r.items() if k != "id"} | {
                "decided_at": r["decided_at"].isoformat(), "ranking": r["ranking"] or [], "inputs": r["inputs"] or {},
                "errors": r["errors"] or {}})
            for r in rows
        ]  # fmt: skip

    @extra.get("/manager/assign", response_class=HTMLResponse)
    async def manager_assign(self) -> HTMLResponse:
        html = await anyio.to_thread.run_sync(
            page.assignment_page, self.store, self.predictions, self.settings.reroute_hours
        )
        return HTMLResponse(html)

    @extra.get("/manager/login", response_class=HTMLResponse)
    async def manager_login_form(self) -> HTMLResponse:
        return HTMLResponse(page.login_page())

    @extra.post("/manager/login", response_class=HTMLResponse)
    async def manager_login(self, request: Request) -> Response:
        key = parse_qs((await request.body()).decode("utf-8", "replace")).get("key", [""])[0]
        if matching_key(key, self.api_keys.current()) is None:
            return HTMLResponse(page.login_page("密钥无效"), status_code=401)
        response = RedirectResponse("/manager", status_code=303)
        response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict", path="/manager")
        return response


LeadScoring.add_asgi_middleware(Guard)

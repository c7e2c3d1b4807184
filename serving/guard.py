"""What every request passes before it reaches a model: the API key, the key's rate limit and the body-size
limit; the audit log of who called what; the log filter that keeps phone numbers and e-mails out of every log
line."""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from features.text import mask_personal
from serving.config import ApiKeys, ServiceSettings, key_digest, key_id

# Probes and the API docs stay open: they carry no lead data.
OPEN_PATHS = {"/healthz", "/readyz", "/livez", "/metrics", "/docs.json", "/", "/favicon.ico"}


class Guard:
    """ASGI middleware: 401 without a valid X-API-Key, 429 (with Retry-After) past the key's requests per
    minute, 413 for a body over the limit (declared or sent); every keyed request is written to the audit log."""

    def __init__(self, app, settings: ServiceSettings | None = None) -> None:
        # Built when a worker builds its app (not at import): a missing key stops the start with a clear error.
        settings = settings or ServiceSettings.from_env()
        self.app = app
        self.api_keys = ApiKeys()
        self.max_request_bytes = settings.max_request_bytes
        # A moving window per key, in this worker's memory: with N API workers a key gets up to N times the
        # limit (docs/security.md). limits is the library behind Flask-Limiter and SlowAPI.
        self.rate = RateLimitItemPerMinute(settings.rate_limit) if settings.rate_limit else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.audit = AuditLog(settings.audit_log) if settings.audit_log else None

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith("/static_content"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, int] = {}

        async def send_noted(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        caller = await self._handle(scope, receive, send_noted)
        if self.audit is not None and status:
            self.audit.write(caller, scope.get("method", ""), path, status["code"], time.perf_counter() - started)

    async def _handle(self, scope, receive, send) -> str | None:
        """Answers the request; returns the id of the key that sent it (None: no valid key)."""
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        key = headers.get(b"x-api-key", b"").decode("latin-1")
        if path.startswith("/manager"):  # a browser: the key comes as the cookie the login form set
            key = key or _cookie(headers.get(b"cookie", b"").decode("latin-1"), KEY_COOKIE)
        caller = matching_key(key, self.api_keys.current())
        if caller is None and path != "/manager/login":  # the login form is the one page open without a key
            if path.startswith("/manager"):
                await _redirect(send, "/manager/login")
            else:
                await _answer(send, 401, "missing or wrong API key: send a valid key in the X-API-Key header")
            return caller
        if caller is not None and self.rate is not None and not self.limiter.hit(self.rate, caller):
            reset = self.limiter.get_window_stats(self.rate, caller).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            message = f"more than {self.rate.amount} requests a minute with this key: retry in {wait} s"
            await _answer(send, 429, message, [(b"retry-after", str(wait).encode())])
            return caller
        limit = self.max_request_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, f"request body is {int(declared):,} bytes; the limit is {limit:,} bytes")
            return caller
        # Read the body here (at most limit + one chunk) so an undeclared (chunked) body is limited too.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return caller
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _answer(send, 413, f"request body is over the limit of {limit:,} bytes")
                return caller
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, _documented_errors(send))
        return caller


class AuditLog:
    """One JSON line per request that needed a key: when, which key (its id, never the key; null when none
    matched), method, path (no query string), status, milliseconds. Appended line by line, so the workers of
    one server can share the file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, caller: str | None, method: str, path: str, status: int, seconds: float) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "key_id": caller,
                 "method": method, "path": mask_personal(path), "status": status, "ms": round(seconds * 1000, 1)}  # fmt: skip
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _documented_errors(send):
    """Client errors in the shape the OpenAPI document gives them, {"error": str, "detail": str}.
    BentoML 1.4 sends `[{"error": ...}]` for its 4xx exceptions (a stray comma makes it a tuple, in
    _bentoml_impl/server/app.py) and a list as the detail of a validation error; schemathesis found both."""
    held: dict = {}

    async def send_fixed(message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            held["start"], held["body"] = message, b""
            return
        if "start" not in held:
            await send(message)
            return
        held["body"] += message.get("body", b"")
        if message.get("more_body", False):
            return
        body = _error_object(held["body"])
        headers = [(k, v) for k, v in held["start"].get("headers", []) if k.lower() != b"content-length"]
        await send({**held["start"], "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return send_fixed


def _error_object(body: bytes) -> bytes:
    try:
        error = json.loads(body)
    except ValueError:
        return body  # not JSON (e.g. the manager page's HTML): as it is
    if isinstance(error, list) and len(error) == 1 and isinstance(error[0], dict):
        error = error[0]
    # BentoML's shape has "error"; FastAPI's own 422 (the page's routes) documents its list of details.
    if isinstance(error, dict) and "error" in error and isinstance(error.get("detail"), list | dict):
        error["detail"] = "; ".join(
            f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg', d)}" if isinstance(d, dict) else str(d)
            for d in (error["detail"] if isinstance(error["detail"], list) else [error["detail"]])
        )
    return json.dumps(error, ensure_ascii=False).encode()


KEY_COOKIE = "leadscore_key"


def matching_key(key: str, digests: tuple[str, ...]) -> str | None:
    """The id of the configured key `key` is (None: none). Compared in constant time on digests, with every
    configured key, so neither which key nor a key's length leaks through the time a comparison takes."""
    sent = key_digest(key)
    matches = [hmac.compare_digest(sent, d) for d in digests]  # all compared
    return key_id(sent) if key and any(matches) else None


def _cookie(header: str, name: str) -> str:
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return ""
    return cookies[name].value if name in cookies else ""


async def _redirect(send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _answer(send, status: int, message: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class MaskPersonalData(logging.Filter):
    """Rewrites each record's message with phone numbers and e-mails masked, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = mask_personal(message), None
        if record.exc_text:
            record.exc_text = mask_personal(record.exc_text)
        return True


def mask_all_log_handlers() -> None:
    """Attach the masking filter to every handler of every logger configured so far (BentoML's, uvicorn's,
    ours): a handler filter sees records propagated from child loggers, a logger filter would not."""
    mask = MaskPersonalData()
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, MaskPersonalData) for f in handler.filters):
                handler.addFilter(mask)

"""The service's typed settings, read from the environment when the service starts (never at import)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from models.settings import Settings

logger = logging.getLogger("leadscore.service")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = default if raw in (None, "") else float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


HASHED = "sha256:"  # a key-file line `sha256:<hex digest>` holds a key's digest, never the key itself


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(digest: str) -> str:
    """What logs and the audit log name a key by: the first 12 hex digits of its digest (not reversible)."""
    return digest[:12]


def _file_digests(path: str) -> tuple[list[str], int]:
    """A key file's digests and how many of its keys are written in clear. One key a line: `sha256:<digest>`
    (what `leadscore keys new` writes), optionally followed by a comment, or the key itself (older files)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"LEADSCORE_API_KEYS_FILE: cannot read {path}: {exc.strerror}") from None
    digests, clear = [], 0
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(HASHED):
            written = line[len(HASHED) :].split()
            digest = written[0].lower() if written else ""
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ConfigError(f"LEADSCORE_API_KEYS_FILE line {number}: {HASHED} must be followed by 64 hex digits")
            digests.append(digest)
        else:
            _check_length([line], f"LEADSCORE_API_KEYS_FILE line {number}")
            digests.append(key_digest(line))
            clear += 1
    return digests, clear


def _check_length(keys: list[str], where: str) -> None:
    if short := [k for k in keys if len(k) < 16]:
        raise ConfigError(f"{where}: API keys must have at least 16 characters ({len(short)} shorter)")


def _api_keys() -> tuple[str, ...]:
    """The SHA-256 digests of the keys of LEADSCORE_API_KEYS (comma-separated) and of the file
    LEADSCORE_API_KEYS_FILE; the service holds only digests."""
    keys = [k for k in (k.strip() for k in os.environ.get("LEADSCORE_API_KEYS", "").split(",")) if k]
    _check_length(keys, "LEADSCORE_API_KEYS")
    digests = [key_digest(k) for k in keys]
    if path := os.environ.get("LEADSCORE_API_KEYS_FILE"):
        in_file, clear = _file_digests(path)
        digests += in_file
        if clear:
            logger.warning("LEADSCORE_API_KEYS_FILE holds %d keys in clear: `leadscore keys hash %s` stores them "
                           "as digests", clear, path)  # fmt: skip
    if not digests:
        raise ConfigError(
            "no API key configured: set LEADSCORE_API_KEYS (comma-separated) or LEADSCORE_API_KEYS_FILE; "
            "`leadscore demo` creates one in $LEADSCORE_HOME/api_key"
        )
    return tuple(dict.fromkeys(digests))


def add_key(path: str | Path, name: str = "") -> tuple[str, str]:
    """A new random key: its digest is appended to the key file (created, readable by its owner only); the key
    is returned to be shown once, with its id."""
    key = secrets.token_urlsafe(32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists()
    label = f"  # {name}" if name else ""
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{HASHED}{key_digest(key)}{label}\n")
    if fresh:
        path.chmod(0o600)
    return key, key_id(key_digest(key))


def hash_key_file(path: str | Path) -> int:
    """Rewrites a key file's keys in clear as their digests (comments and hashed lines kept), in one atomic
    replace that a running service picks up like a rotation; returns how many keys were hashed."""
    path = Path(path)
    _file_digests(str(path))  # a malformed file is reported, not rewritten
    lines, hashed = [], 0
    for line in path.read_text().splitlines():
        kept = line.strip()
        if kept and not kept.startswith(("#", HASHED)):
            line, hashed = f"{HASHED}{key_digest(kept)}", hashed + 1
        lines.append(line)
    staged = path.with_name(path.name + ".new")
    staged.write_text("\n".join(lines) + "\n")
    staged.chmod(0o600)
    os.replace(staged, path)
    return hashed


class ApiKeys:
    """The digests of the keys the service accepts. LEADSCORE_API_KEYS_FILE is read again whenever it changes, so keys
    rotate without a restart: add the new key, move the clients to it, remove the old one (docs/security.md).
    A change that leaves no valid key is refused (logged) and the keys before it stay in force."""

    def __init__(self) -> None:
        self.path = os.environ.get("LEADSCORE_API_KEYS_FILE")
        self._keys = _api_keys()  # no valid key: ConfigError, the service does not start
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self.path) if self.path else None
        except OSError:
            return None
        return (status.st_mtime_ns, status.st_size) if status else None

    def current(self) -> tuple[str, ...]:
        stamp = self._file_stamp()
        if self.path and stamp != self._stamp:
            self._stamp = stamp
            try:
                self._keys = _api_keys()
                logger.info("API keys reloaded from LEADSCORE_API_KEYS_FILE: %d keys", len(self._keys))
            except ConfigError as exc:
                logger.error("API key file change ignored, the previous keys stay in force: %s", exc)
        return self._keys


@dataclass(frozen=True)
class ServiceSettings:
    api_keys: tuple[str, ...]  # SHA-256 digests (serving/config.py key_digest)
    max_request_bytes: int  # larger bodies get 413
    max_leads: int  # more leads in one request get 422
    prediction_log_url: str  # SQLAlchemy URL; SQLite by default, PostgreSQL by URL
    reload_seconds: int  # how often each worker asks the registry for a new champion (0: only POST /reload)
    registry: Settings
    store_url: str = ""  # the lead store and assignment log (SQLAlchemy URL; SQLite in LEADSCORE_HOME by default)
    store_retention_days: int = 365  # leads not seen for this long are purged (0: kept)
    reroute_hours: float = 2.0  # POST /assign/overdue's default: assigned longer ago without a first touch
    rate_limit: int = 6000  # requests per minute per key and API worker (0: none); more get 429 + Retry-After
    audit_log: str = ""  # JSON Lines: time, key id, method, path, status, milliseconds (never the key)

    @staticmethod
    def reload_interval() -> int:
        return _int("LEADSCORE_RELOAD_SECONDS", 60)

    @staticmethod
    def model_workers() -> int:
        """LEADSCORE_MODEL_WORKERS: model worker processes (default 1); each holds its own copy of the models."""
        workers = _int("LEADSCORE_MODEL_WORKERS", 1)
        if workers < 1:
            raise ConfigError(f"LEADSCORE_MODEL_WORKERS must be at least 1, got {workers}")
        return workers

    @classmethod
    def from_env(cls) -> ServiceSettings:
        registry = Settings.from_env()
        return cls(
            api_keys=_api_keys(),
            max_request_bytes=_int("LEADSCORE_MAX_REQUEST_BYTES", 5_000_000),
            max_leads=_int("LEADSCORE_MAX_LEADS", 500),
            prediction_log_url=os.environ.get("LEADSCORE_PREDICTION_LOG_URL")
            or f"sqlite:///{registry.home / 'predictions.db'}",
            reload_seconds=cls.reload_interval(),
            registry=registry,
            store_url=os.environ.get("LEADSCORE_STORE_URL") or f"sqlite:///{registry.home / 'leads.db'}",
            store_retention_days=_int("LEADSCORE_STORE_RETENTION_DAYS", 365),
            reroute_hours=_float("LEADSCORE_REROUTE_HOURS", 2.0),
            rate_limit=_int("LEADSCORE_RATE_LIMIT", 6000),
            audit_log=os.environ.get("LEADSCORE_AUDIT_LOG") or str(registry.home / "audit.jsonl"),
        )

    @staticmethod
    def duplicate_days() -> float:
        """LEADSCORE_DUPLICATE_DAYS: the duplicate screen's window (default the artifact's, 30 days)."""
        return _float("LEADSCORE_DUPLICATE_DAYS", 0.0)

"""The service's typed settings, read from the environment when the service starts (never at import)."""

from __future__ import annotations

import logging
import os
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


def _api_keys() -> tuple[str, ...]:
    """Keys from LEADSCORE_API_KEYS (comma-separated) and/or the file LEADSCORE_API_KEYS_FILE (one a line)."""
    keys = [k.strip() for k in os.environ.get("LEADSCORE_API_KEYS", "").split(",")]
    if path := os.environ.get("LEADSCORE_API_KEYS_FILE"):
        try:
            keys += [line.strip() for line in Path(path).read_text().splitlines()]
        except OSError as exc:
            raise ConfigError(f"LEADSCORE_API_KEYS_FILE: cannot read {path}: {exc.strerror}") from None
    keys = tuple(k for k in keys if k and not k.startswith("#"))
    if not keys:
        raise ConfigError(
            "no API key configured: set LEADSCORE_API_KEYS (comma-separated) or LEADSCORE_API_KEYS_FILE; "
            "`leadscore demo` creates one in $LEADSCORE_HOME/api_key"
        )
    if short := [k for k in keys if len(k) < 16]:
        raise ConfigError(f"API keys must have at least 16 characters ({len(short)} shorter)")
    return keys


class ApiKeys:
    """The keys the service accepts. LEADSCORE_API_KEYS_FILE is read again whenever it changes, so keys
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
    api_keys: tuple[str, ...]
    max_request_bytes: int  # larger bodies get 413
    max_leads: int  # more leads in one request get 422
    prediction_log_url: str  # SQLAlchemy URL; SQLite by default, PostgreSQL by URL
    reload_seconds: int  # how often each worker asks the registry for a new champion (0: only POST /reload)
    registry: Settings
    store_url: str = ""  # the lead store and assignment log (SQLAlchemy URL; SQLite in LEADSCORE_HOME by default)
    store_retention_days: int = 365  # leads not seen for this long are purged (0: kept)
    reroute_hours: float = 2.0  # POST /assign/overdue's default: assigned longer ago without a first touch

    @staticmethod
    def reload_interval() -> int:
        return _int("LEADSCORE_RELOAD_SECONDS", 60)

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
        )

    @staticmethod
    def duplicate_days() -> float:
        """LEADSCORE_DUPLICATE_DAYS: the duplicate screen's window (default the artifact's, 30 days)."""
        return _float("LEADSCORE_DUPLICATE_DAYS", 0.0)

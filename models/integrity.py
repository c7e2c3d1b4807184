"""Model integrity: a digest of a saved model's files, recorded in the registry when the model is registered
and checked before anything is unpickled (unpickling runs code, so a swapped file must never be loaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

DIGEST_TAG = "artifact_sha256"  # the MLflow model version tag and the BentoML model metadata key


class IntegrityError(RuntimeError):
    """A model's files are missing or do not match the digest the registry recorded."""


# Written by whoever downloads the model (the registry's name and version), not part of what is loaded.
NOT_HASHED = {"registered_model_meta"}


def model_digest(directory: str | Path) -> str:
    """SHA-256 over every file of a model directory (relative path and bytes, in sorted order)."""
    root = Path(directory)
    if not root.is_dir():
        raise IntegrityError(f"model directory {root} is missing")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in NOT_HASHED):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def verify_model(directory: str | Path, expected: str | None, source: str) -> None:
    """Refuse a model whose files do not hash to what `source` (the registry) recorded for it."""
    if not expected:
        raise IntegrityError(
            f"{source} records no {DIGEST_TAG} for the model at {directory}: it was registered by an older "
            "version; retrain (or register it again) so its files can be checked"
        )
    actual = model_digest(directory)
    if actual != expected:
        raise IntegrityError(
            f"the model at {directory} does not match the digest {source} recorded ({expected[:12]}…, found "
            f"{actual[:12]}…): its files were changed or corrupted; refusing to load it"
        )

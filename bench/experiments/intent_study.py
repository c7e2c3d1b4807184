"""The design study behind models/intent.py: which features and which linear model, at fixed settings.

Not the product's figures (those are nested: bench/intent.py); this compares choices side by side on the same
folds. Sets: CAIS train+valid -> test, 5-fold CV on CAIS train, a balanced CAIS (train+valid+test pooled, at
most 300 rows per label, labels with 10+ rows: 1,521 texts, 12 labels, closer to a benchmark of a few thousand
texts over many labels than CAIS's 87 % PlayMusic) and the simulator's labelled file, 5-fold each.

    HF_HUB_OFFLINE=1 python -m bench.experiments.intent_study --data /work/shared/data/cais \\
        --sim /tmp/intent-sim/labels/intent.csv [--only svm]

Takes about 15 minutes on 2 busy cores (the embeddings of 13k texts are most of it, encoded once).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from features.text import ChineseTokenizer, normalize_text
from models.embedding import TextEmbedder

CONFIGS = {  # cr: char n-gram range; word: jieba 1-2 block; emb: embedding weight (0: none); sub: sublinear tf
    "LR c+w C10 (previous)": {},
    "LR char C1 (textbook)": {"word": False, "C": 1.0, "sub": False},
    "SVM c+w C0.3": {"svm": True, "C": 0.3},
    "SVM c+w C1": {"svm": True, "C": 1},
    "SVM c1-4+w C1": {"svm": True, "C": 1, "cr": (1, 4)},
    "SVM c+w+emb1 C1": {"svm": True, "emb": 1},
    "SVM c+w+emb2 C0.3": {"svm": True, "emb": 2, "C": 0.3},
    "SVM c+w+emb2 C1": {"svm": True, "emb": 2},
    "SVM c+w+emb3 C1": {"svm": True, "emb": 3},
    "SVM c+w+emb2 C3": {"svm": True, "emb": 2, "C": 3},
    "SVM c+emb2 C1": {"svm": True, "emb": 2, "word": False},
    "LR emb only C100": {"word": False, "char": False, "emb": 1, "C": 100},
    "LR c+w+emb2 C10": {"emb": 2},
}
_TOKENIZER = ChineseTokenizer()


def _read(path: Path) -> tuple[list[str], np.ndarray]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [normalize_text(t) for t in frame["text"]], frame["label"].to_numpy(dtype=object)


def _features(cfg: dict, train: list[str], test: list[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    blocks = []
    if cfg.get("char", True):
        sub = cfg.get("sub", True)
        v = TfidfVectorizer(
            analyzer="char", ngram_range=cfg.get("cr", (1, 3)), sublinear_tf=sub, min_df=2 if sub else 1
        )
        blocks.append((v.fit_transform(train), v.transform(test)))
    if cfg.get("word", True):
        v = TfidfVectorizer(tokenizer=_TOKENIZER, token_pattern=None, ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        blocks.append((v.fit_transform(train), v.transform(test)))
    if cfg.get("emb"):
        embedder = TextEmbedder(cache_size=50_000)
        blocks.append(tuple(sparse.csr_matrix(embedder.embed(t) * cfg["emb"]) for t in (train, test)))
    return sparse.hstack([b[0] for b in blocks]).tocsr(), sparse.hstack([b[1] for b in blocks]).tocsr()


def _predict(cfg: dict, train: tuple, test_texts: list[str]) -> np.ndarray:
    X, X_test = _features(cfg, train[0], test_texts)
    if cfg.get("svm"):
        model = LinearSVC(C=cfg.get("C", 1.0), max_iter=5000)
    else:
        model = LogisticRegression(C=cfg.get("C", 10.0), solver="newton-cg", max_iter=2000)
    return model.fit(X, train[1]).predict(X_test)


def _cv(cfg: dict, data: tuple) -> np.ndarray:
    texts, y = data
    predicted = np.empty(len(y), dtype=object)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y):
        predicted[test] = _predict(cfg, ([texts[i] for i in train], y[train]), [texts[i] for i in test])
    return predicted


def _score(y: np.ndarray, predicted: np.ndarray) -> str:
    f1 = f1_score(y, predicted, labels=sorted(set(y)), average="macro", zero_division=0)
    return f"{accuracy_score(y, predicted):.4f} | {f1:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--sim", required=True, help="labels/intent.csv of `leadscore simulate --leads 5000 --seed 3`")
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    train, valid, test = (_read(Path(args.data) / f"{p}.csv") for p in ("train", "valid", "test"))
    fit = (train[0] + valid[0], np.concatenate([train[1], valid[1]]))
    pooled = (fit[0] + test[0], np.concatenate([fit[1], test[1]]))
    rng, keep = np.random.default_rng(0), []
    for label in pd.unique(pooled[1]):
        rows = np.flatnonzero(pooled[1] == label)
        if len(rows) >= 10:
            keep.extend(rng.permutation(rows)[:300])
    keep = np.sort(keep)
    balanced = ([pooled[0][i] for i in keep], pooled[1][keep])
    sim = _read(Path(args.sim))
    print("| setting | CAIS test acc | F1 | CAIS 5-fold acc | F1 | balanced CAIS acc | F1 | sim acc | F1 | s |")
    print("|" + "---|" * 10)
    for name, cfg in CONFIGS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        started = time.perf_counter()
        cells = [_score(test[1], _predict(cfg, fit, test[0]))]
        cells += [_score(data[1], _cv(cfg, data)) for data in (train, balanced, sim)]
        print(f"| {name} | {' | '.join(cells)} | {time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()

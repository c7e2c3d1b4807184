"""Train and evaluate the intent model from a labelled CSV of form texts (columns text,label by default).

Real CRM exports carry no intent, so the model learns from a file a person labelled; the simulator writes
one (labels/intent.csv) the way a customer would. Cross-validation gives the honest figure on the labelled
file; `evaluate_on_world` compares with the simulator's true intent on another world.

    python -m training.intent --labels data/labels/intent.csv [--label-set labels.txt] [--evaluate other_world/]
        [--save model.pkl]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import pickle
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from models.intent import IntentModel, default_labels

log = logging.getLogger(__name__)
_SHOWN = 10  # rows named per problem; the rest are counted


class LabelledDataError(ValueError):
    """The labelled CSV cannot be used as it is; the message says which rows or columns and why."""


def _rows(positions: Sequence[int]) -> str:
    """Spreadsheet row numbers (the header is row 1), the first few of them."""
    shown = ", ".join(str(p + 2) for p in positions[:_SHOWN])
    return f"row {shown}" + (f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else "")


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if not raw.strip():
        raise LabelledDataError(f"{path}: the file is empty (expected a header such as text,label and labelled rows)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            content = raw.decode("gb18030")  # Excel on Chinese Windows saves CSV as GBK, a subset of GB18030
        except UnicodeDecodeError:
            raise LabelledDataError(
                f"{path}: neither UTF-8 nor GBK/GB18030 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV"
            ) from None
        log.warning("%s is not UTF-8; it was read as GB18030 (GBK)", path)
        return content


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def load_label_set(path: str | Path) -> tuple[str, ...]:
    """A label set from a file: one label per line (blank lines skipped), or a JSON list (or {"labels": [...]},
    the shape of features/resources/intent_labels.json). Errors name the lines."""
    path = Path(path)
    if not path.is_file():
        raise LabelledDataError(f"{path}: no such label-set file")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelledDataError(
            f"{path}: unreadable label-set file ({_one_line(exc)}); save it as UTF-8 text"
        ) from None
    if content.lstrip().startswith(("[", "{")):
        try:
            parsed = json.loads(content)
        except json.JSONDecodeError as exc:
            raise LabelledDataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        parsed = parsed.get("labels") if isinstance(parsed, dict) else parsed
        if not isinstance(parsed, list) or not all(isinstance(label, str) for label in parsed):
            raise LabelledDataError(f'{path}: expected a JSON list of label strings (or {{"labels": [...]}})')
        entries = [(i + 1, label.strip()) for i, label in enumerate(parsed)]
        where = "item"
    else:
        entries = [(i + 1, line.strip()) for i, line in enumerate(content.splitlines()) if line.strip()]
        where = "line"
    blank = [n for n, label in entries if not label]
    if blank:
        raise LabelledDataError(f"{path}: empty label at {where} {', '.join(map(str, blank))}")
    first: dict[str, int] = {}
    repeated = []
    for n, label in entries:
        if label in first:
            repeated.append(f"{label!r} at {where} {first[label]} and {n}")
        first.setdefault(label, n)
    if repeated:
        raise LabelledDataError(f"{path}: labels repeated: {'; '.join(repeated)}")
    if len(first) < 2:
        raise LabelledDataError(f"{path}: a label set needs at least 2 labels, found {list(first)}")
    return tuple(first)


def labels_found(found: Sequence[str]) -> tuple[str, ...]:
    """The label set of a labelled file: the shipped labels it uses in their shipped order (so the default
    product keeps its column order), then any others in order of first appearance."""
    present = dict.fromkeys(found)
    shipped = [label for label in default_labels() if label in present]
    return tuple(shipped + [label for label in present if label not in shipped])


def load_labelled_csv(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | None = None,
    min_rows_per_label: int = 2,
) -> tuple[list[str], list[str]]:
    """Texts and labels from a CSV (UTF-8, or GBK as Excel saves it). With `labels`, every label must be in
    it; without, the file's own labels are the set. Errors name the spreadsheet rows (header = row 1) and the
    offending labels, on one line. A label needs `min_rows_per_label` rows (2 to train: cross-validation
    cannot learn a label from its only row; 1 for a test file). Empty texts are kept: the model answers them with its label shares."""
    path = Path(path)
    if not path.is_file():
        raise LabelledDataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(io.StringIO(_decode(path)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LabelledDataError(f"{path}: not a readable CSV: {_one_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise LabelledDataError(
            f"{path}: no column {', '.join(map(repr, missing))}; the columns are {list(frame.columns)} "
            "(name them with text_column= / label_column=)"
        )
    if frame.empty:
        raise LabelledDataError(f"{path}: a header but no labelled rows")
    found = frame[label_column].str.strip()
    blank = np.flatnonzero(found.to_numpy() == "").tolist()
    if blank:
        raise LabelledDataError(f"{path}: {label_column} is empty on {_rows(blank)}; label every row or remove it")
    if labels is not None:
        unknown = sorted(set(found) - set(labels))
        if unknown:
            details = "; ".join(f"{label!r} on {_rows(np.flatnonzero(found == label).tolist())}" for label in unknown)
            raise LabelledDataError(f"{path}: labels not in the label set {list(labels)}: {details}")
    if found.nunique() < 2 and min_rows_per_label > 1:
        raise LabelledDataError(f"{path}: every row has the label {found.iloc[0]!r}; an intent model needs two or more")
    counts = found.value_counts()
    rare = counts[counts < min_rows_per_label].index.tolist()
    if rare:
        details = "; ".join(f"{label!r} on {_rows(np.flatnonzero(found == label).tolist())}" for label in rare)
        raise LabelledDataError(
            f"{path}: labels with fewer than {min_rows_per_label} rows, too few to train and cross-validate "
            f"(label more rows of each, or remove them): {details}"
        )
    return frame[text_column].tolist(), found.tolist()


def intent_metrics(true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the labels that occur in `true`), per-label precision/recall/F1, the
    confusion matrix (rows = true, columns = predicted) and the accuracy of always answering the commonest
    true label (a baseline that knows the test set's mix, so it flatters itself)."""
    true, predicted, labels = np.asarray(true, dtype=object), np.asarray(predicted, dtype=object), list(labels)
    present = [label for label in labels if (true == label).any()]
    p, r, f, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    matrix = confusion_matrix(true, predicted, labels=labels)
    return {
        "n": len(true),
        "accuracy": float(accuracy_score(true, predicted)),
        "macro_f1": float(f1_score(true, predicted, labels=present, average="macro", zero_division=0)),
        "majority_accuracy": float(pd.Series(true).value_counts(normalize=True).iloc[0]),
        "per_label": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion": {t: {q: int(matrix[i, j]) for j, q in enumerate(labels)} for i, t in enumerate(labels)},
    }


def cross_validate_intent(
    texts: Sequence[str],
    labels: Sequence[str],
    label_set: Sequence[str] | None = None,
    n_splits: int = 5,
    random_state: int = 0,
    **model_params: Any,
) -> dict[str, Any]:
    """Stratified k-fold: metrics of the pooled out-of-fold predictions. Each fold's model makes its own
    choices (C, embedding weight, temperature) by cross-validation within its training rows: nested, so the
    figure is what a model trained this way scores on texts it has never seen. A label with fewer rows than
    folds is in only some test folds (each of its rows is still predicted once)."""
    label_set = labels_found(labels) if label_set is None else tuple(label_set)
    y = np.asarray(labels, dtype=object)
    counts = pd.Series(y).value_counts()
    if (counts < 2).any():
        rare = counts[counts < 2].index.tolist()
        raise LabelledDataError(f"labels {rare} have a single row; cross-validation needs at least 2 per label")
    folds = min(n_splits, int(counts.max()))  # StratifiedKFold: some label must fill every fold
    rare = counts[counts < folds].index.tolist()
    if rare:
        log.info("labels %s have fewer rows than the %d folds: they are tested in only some folds", rare, folds)
    texts = list(texts)
    predicted = np.empty(len(y), dtype=object)
    with warnings.catch_warnings():  # StratifiedKFold warns about those rare labels, logged above
        warnings.simplefilter("ignore", UserWarning)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y))
    for train, test in splits:
        model = IntentModel(label_set, **model_params).fit([texts[i] for i in train], y[train])
        predicted[test] = model.predict([texts[i] for i in test])["intent"].to_numpy()
    return {"folds": folds, **intent_metrics(y, predicted, label_set)}


def train_intent(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | str | Path | None = None,
    n_splits: int = 5,
    random_state: int = 0,
    **model_params: Any,
) -> tuple[IntentModel, dict[str, Any]]:
    """The intent model fitted on every labelled row, and its (nested) cross-validated metrics. `labels`: the
    label set, a sequence or a label-set file (see load_label_set); None: the labels found in the CSV."""
    if isinstance(labels, str | Path):
        labels = load_label_set(labels)
    texts, y = load_labelled_csv(path, text_column, label_column, labels)
    label_set = labels_found(y) if labels is None else tuple(labels)
    metrics = cross_validate_intent(texts, y, label_set, n_splits, random_state, **model_params)
    return IntentModel(label_set, **model_params).fit(texts, y), metrics


WORLD_SAMPLE = 3000  # leads judged: accuracy near 0.95 then has a standard error near 0.004


def evaluate_on_world(model: IntentModel, data_dir: str | Path, sample: int | None = WORLD_SAMPLE) -> dict[str, Any]:
    """Accuracy against the simulator's true intent (truth/leads.parquet) on every lead and on the leads with
    a non-empty form text, over `sample` leads drawn at random (None: every lead). A sample, because each text
    costs an embedding (models/embedding.py: its cost), the bulk of evaluating a large world.
    Evaluation only: truth never trains anything."""
    root = Path(data_dir)
    parquet = root / "leads.parquet"
    leads = pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(root / "leads.csv", dtype={"form_text": str})
    if sample is not None and len(leads) > sample:
        leads = leads.sample(sample, random_state=0)
    truth = pd.read_parquet(root / "truth" / "leads.parquet").set_index("lead_id")["true_intent"]
    true = leads["lead_id"].map(truth).to_numpy()
    predicted = model.predict(leads["form_text"])
    has_text = leads["form_text"].fillna("").astype(str).str.strip().ne("").to_numpy()
    return {
        "non_empty": intent_metrics(true[has_text], predicted["intent"].to_numpy()[has_text], model.labels),
        "all_leads": intent_metrics(true, predicted["intent"].to_numpy(), model.labels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", required=True, help="labelled CSV (e.g. <simulated export>/labels/intent.csv)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument(
        "--label-set", help="the allowed labels: one per line, or a JSON list (default: the labels found in the CSV)"
    )
    parser.add_argument("--no-embeddings", action="store_true", help="TF-IDF only (faster, about 2 points worse)")
    parser.add_argument("--evaluate", help="another simulated export (with truth/) to compare with the true intent")
    parser.add_argument("--save", help="write the fitted model here (pickle)")
    args = parser.parse_args()
    try:
        model, metrics = train_intent(
            args.labels, args.text_column, args.label_column, args.label_set, embeddings=not args.no_embeddings
        )
    except LabelledDataError as exc:
        print(f"training.intent: error: {exc}", file=sys.stderr)  # noqa: T201 - one line, no trace
        raise SystemExit(2) from None
    report: dict[str, Any] = {"cross_validated": metrics}
    if args.evaluate:
        report["vs_true_intent"] = evaluate_on_world(model, args.evaluate)
    if args.save:
        Path(args.save).write_bytes(pickle.dumps(model))
    print(json.dumps(report, indent=1, ensure_ascii=False))  # noqa: T201 - the command's output


if __name__ == "__main__":
    main()

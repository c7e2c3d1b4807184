"""Evaluation metrics on hand-made arrays with known answers, and the HTML report's rendering and escaping."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.metrics import (
    SMALL_SLICE,
    binary_metrics,
    compare_models,
    gain_table,
    oracle_share,
    reliability_table,
    slice_metrics,
)
from training.report import ascii_labels, build_report, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_perfect_ranking_and_lift() -> None:
    y = np.r_[np.ones(10), np.zeros(90)]
    p = np.linspace(1, 0, 100)  # every positive above every negative
    m = binary_metrics(y, p)
    assert m["auc"] == 1.0 and m["pr_auc"] == pytest.approx(1.0)
    assert m["positive_rate"] == pytest.approx(0.1) and m["n"] == 100
    assert m["lift_top10"] == pytest.approx(10.0)  # top 10% all wins, overall 10%
    reversed_ = binary_metrics(y, 1 - p)
    assert reversed_["auc"] == 0.0 and reversed_["lift_top10"] == 0.0


def test_constant_predictor_ece_and_brier() -> None:
    y = np.r_[np.ones(30), np.zeros(70)]
    m = binary_metrics(y, np.full(100, 0.55))
    assert m["ece"] == pytest.approx(abs(0.55 - 0.3))
    assert m["brier"] == pytest.approx(0.3 * 0.45**2 + 0.7 * 0.55**2)
    assert m["mean_prediction"] == pytest.approx(0.55)


def test_one_class_gives_nan_not_crash() -> None:
    m = binary_metrics(np.zeros(20), np.linspace(0, 1, 20))
    assert np.isnan(m["auc"]) and np.isnan(m["pr_auc"]) and np.isnan(m["lift_top10"])
    assert m["positive_rate"] == 0.0


def test_reliability_and_gain_tables() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 0.55])
    table = reliability_table(y, p, bins=10)
    assert table["bin"].tolist() == [0, 5, 9]
    assert table["observed"].tolist() == [0.0, 0.5, 1.0] and table["n"].tolist() == [2, 2, 2]
    gain = gain_table(y, p, points=2)
    # Top half (3 leads by score: 0.95, 0.95, 0.55 stable-first) holds 3 of 3 wins.
    assert gain["share_of_wins_found"].tolist() == [1.0, 1.0]
    assert gain["lift"].tolist() == [2.0, 1.0]


def test_slice_pooling() -> None:
    rng = np.random.default_rng(0)
    channel = np.array(["官网表单"] * 120 + ["展会"] * 60 + ["抖音"] * 10 + ["百度"] * 5 + [None] * 5, dtype=object)
    y = rng.integers(0, 2, len(channel))
    p = rng.random(len(channel))
    table = slice_metrics(y, p, pd.DataFrame({"channel": channel}), min_rows=50)
    assert table["value"].tolist() == ["官网表单", "展会", SMALL_SLICE]
    assert table["n"].tolist() == [120, 60, 20]  # 抖音 10 + 百度 5 + missing 5 pooled
    assert table["n"].sum() == len(y)
    pooled = table.set_index("value").loc[SMALL_SLICE]
    assert pooled["positive_rate"] == pytest.approx(y[180:].mean())


def test_compare_models_and_oracle_share() -> None:
    y = np.r_[np.ones(50), np.zeros(50)]
    scores = {"ours": np.linspace(1, 0, 100), "coin": np.tile([0.4, 0.6], 50), "worse": np.linspace(1, 0, 100) ** 0}
    table = compare_models(y, scores, model="ours").set_index("model")
    best_baseline = max(table.loc["coin", "auc"], table.loc["worse", "auc"])
    assert table.loc["ours", "auc_gap_to_best_baseline"] == pytest.approx(1.0 - best_baseline)
    assert table["auc_gap_to_best_baseline"].drop("ours").isna().all()
    assert oracle_share(0.8, 0.9) == pytest.approx(0.75)
    assert np.isnan(oracle_share(0.8, 0.5))


def _health(n: int = 600, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    truth = rng.random(n)
    y = (rng.random(n) < truth).astype(int)
    return {
        "y": y,
        "scores": {"<script>alert(1)</script>": np.clip(truth + rng.normal(0, 0.2, n), 0, 1), "渠道基准": truth * 0.5},
        "model": "<script>alert(1)</script>",
        "slices": pd.DataFrame({"channel": rng.choice(["官网表单", "展会", "抖音", "x"], n, p=[0.5, 0.4, 0.07, 0.03])}),
    }


def _png_ok(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def test_report_with_only_title_and_health(tmp_path: Path) -> None:
    report = build_report({"title": "评估 <b>", "health": _health()}, tmp_path)
    html = report.html.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "评估 &lt;b&gt;" in html
    # Headline computed from the comparison when the caller gave none.
    assert re.search(r"AUC 0\.\d{3}，比最好的基准[高低] 0\.\d{3}", html)
    assert {p.name for p in report.pngs} == {"reliability.png", "gain.png"}
    assert all(_png_ok(p) for p in report.pngs)
    assert "其他(小样本)" in html  # 抖音 and x are below 50 rows


def test_full_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n, k = 300, 4
    features = pd.DataFrame(
        {
            "touches_电话": rng.integers(0, 5, n),
            "budget_cny": rng.random(n) * 1e6,
            "channel": pd.Categorical(rng.choice(["展会", "抖音"], n)),
            "说明": rng.random(n),
        }
    )
    stages = ["新线索", "报价", "赢单"]
    confusion = pd.DataFrame([[50, 5, 0], [3, 40, 2], [0, 1, 20]], index=stages, columns=stages)
    closedate = pd.DataFrame(
        [
            (m, h, 0.1 * h / 30 + d, 0.1 * h / 30, 0.7)
            for m, d in (("model", 0.01), ("base", 0.05))
            for h in (30, 60, 90)
        ],
        columns=["model", "horizon_days", "mean_predicted", "observed", "auc"],
    )
    audit = pd.DataFrame(
        {
            "feature": [f"f{i}" for i in range(15)] + ["<img src=x onerror=alert(1)>"],
            "strength": np.r_[np.linspace(0.5, 0.6, 15), 0.99],
            "flagged": [False] * 15 + [True],
            "reason": [""] * 15 + ["AUC 0.99 alone"],
        }
    )
    evaluation = {
        "title": "leadscore 评估",
        "data": "seed 5, 20000 leads",
        "generated_at": "2026-11-23 14:00 UTC",
        "headline": ["健康分模型 AUC 0.88，比最好的基准高 0.05；达到上帝视角(oracle) 的 90%"],
        "health": _health(),
        "shap": {"contributions": rng.normal(size=(n, k + 1)), "features": features},  # with a bias column
        "stage": {
            "metrics": {"macro_f1": 0.7, "per_class_f1": {"新线索": 0.9}, "confusion": confusion},
            "confusion": confusion,
        },  # fmt: skip
        "closedate": {"table": closedate, "metrics": {"auc_30": 0.71}},
        "intent": {
            "metrics": {"accuracy": 0.9, "per_label": {"询价": {"precision": 0.9, "recall": 0.8}}},
            "confusion": {"询价": {"询价": 9, "无效": 1}, "无效": {"询价": 0, "无效": 5}},
        },  # fmt: skip
        "oracle": {"model_auc": 0.85, "oracle_auc": 0.9, "snapshots": 1234},
        "audit": audit,
        "gate": {"decision": "kept champion", "reasons": ["AUC <0.01 better"], "figures": {"auc_gain": 0.004}},
    }
    path = write_report(evaluation, tmp_path)
    assert path == tmp_path / "report.html"
    html = path.read_text(encoding="utf-8")
    assert evaluation["headline"][0] in html
    for heading in ("Promotion decision", "Health model vs baselines", "Calibration", "Gain", "By segment",
                    "vs oracle", "Close date", "Stage", "Intent", "SHAP", "Leakage audit"):  # fmt: skip
        assert heading in html, heading
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "AUC &lt;0.01 better" in html and "kept champion" in html
    assert "0.875" in html  # oracle_share computed when absent: (0.85 - 0.5) / (0.9 - 0.5)
    pngs = sorted(tmp_path.glob("*.png"))
    names = {p.stem for p in pngs}
    assert names == {"reliability", "gain", "shap_summary", "stage_confusion", "intent_confusion", "closedate"}
    assert all(_png_ok(p) for p in pngs)
    # Every PNG is also embedded, so report.html alone is a complete artifact.
    for p in pngs:
        assert base64.b64encode(p.read_bytes()).decode("ascii") in html
    # Labels the glossary cannot translate are explained under the figure.
    assert "f4 = 说明" in html and "touches_phone" in html


def test_ascii_labels_are_plot_safe() -> None:
    labels, legend = ascii_labels(["touches_电话", "演示确认单", "未知", "plain"])
    assert labels == ["touches_phone", "demo sign-off", "L3", "plain"]
    assert legend == {"touches_phone": "touches_电话", "demo sign-off": "演示确认单", "L3": "未知"}
    assert all(label.isascii() for label in labels)

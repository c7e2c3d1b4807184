"""Plots and the manager-readable HTML report of `leadscore evaluate`.

Figures use English/ASCII text only: no CJK font is installed on the build machines (`fc-list :lang=zh` is
empty), and matplotlib would draw Chinese as empty boxes. Chinese names (stages, intents, document kinds,
channels) are translated by a fixed glossary; anything the glossary cannot translate becomes a short code
whose meaning the HTML lists under the figure. The HTML itself is Chinese (browsers have the fonts).
PNGs are written next to report.html and also embedded as base64, so report.html alone is readable when
logged as one MLflow artifact.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the report is rendered in CI and on servers

import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from training.metrics import compare_models, gain_table, oracle_share, reliability_table, slice_metrics  # noqa: E402

# Longest terms first when substituting, so 演示确认单 wins over 演示 and 400电话 over 电话.
GLOSSARY = {
    "新线索": "new lead", "初步接触": "first contact", "需求确认": "needs confirmed", "方案沟通": "proposal",
    "样品验证": "sample test", "报价": "quote", "招标比价": "tender", "合同谈判": "contract talks",
    "赢单": "won", "丢单": "lost",
    "询价": "price inquiry", "产品咨询": "product question", "招商代理": "distributor", "售后维修": "repair",
    "技术支持": "tech support", "无效": "invalid",
    "付款凭证": "payment proof", "会议": "meeting", "合同": "contract", "微信": "WeChat", "技术协议": "tech agreement",
    "报价单": "quotation", "拜访": "visit", "方案": "proposal", "测试报告": "test report", "演示确认单": "demo sign-off",
    "演示": "demo", "物流单": "shipping note", "电话": "phone", "短信": "SMS", "邮件": "email",
    "官网表单": "web form", "抖音": "Douyin", "小红书": "Xiaohongshu", "百度": "Baidu", "企业微信": "WeCom",
    "展会": "trade show", "400电话": "400 hotline", "转介绍": "referral", "其他": "other",
    "其他(小样本)": "other (small)", "缺失": "missing",
}  # fmt: skip
_TERMS = sorted(GLOSSARY, key=len, reverse=True)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def ascii_labels(names: list[Any], prefix: str = "L") -> tuple[list[str], dict[str, str]]:
    """Plot-safe labels for `names` and a legend {label: original} for the ones that changed.
    Glossary terms are translated inside the name (touches_电话 -> touches_phone); a name still holding
    non-ASCII characters after that becomes f"{prefix}{i}"."""
    labels, legend = [], {}
    for i, name in enumerate(names):
        text = str(name)
        label = _translate(text)
        if _NON_ASCII.search(label):
            label = f"{prefix}{i + 1}"
        if label in labels:  # two originals mapping to one label would be ambiguous on the plot
            label = f"{label} ({i + 1})"
        labels.append(label)
        if label != text:
            legend[label] = text
    return labels, legend


def _translate(text: str) -> str:
    for term in _TERMS:
        text = text.replace(term, GLOSSARY[term])
    return text


def _ascii_title(text: str) -> str:
    """Titles are free text: translate what the glossary knows and drop the remaining non-ASCII characters."""
    return _NON_ASCII.sub("", _translate(text)).strip()


def plot_reliability(tables: dict[str, pd.DataFrame]) -> Figure:
    """Reliability curves (observed vs mean predicted per bin) of several models with the diagonal, over a
    histogram of how many predictions fall in each bin (a curve is only trustworthy where there is data)."""
    fig = Figure(figsize=(7, 7))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    names, _ = ascii_labels(list(tables), prefix="M")
    width = 0.8 / max(1, len(tables))
    for k, (label, table) in enumerate(zip(names, tables.values(), strict=True)):
        colour = _COLOURS[k % len(_COLOURS)]
        top.plot(table["mean_predicted"], table["observed"], marker="o", color=colour, label=label)
        bin_width = (table["upper"] - table["lower"]).to_numpy() if "upper" in table else 0.1
        left = table["lower"].to_numpy() if "lower" in table else table["mean_predicted"].to_numpy()
        share = table["n"] / max(1, table["n"].sum())
        bottom.bar(left + bin_width * (0.1 + k * width), share, width=bin_width * width, align="edge", color=colour)
    top.set(ylabel="observed win rate", xlim=(0, 1), ylim=(0, 1), title="Calibration (reliability)")
    top.legend(loc="upper left", fontsize=8)
    bottom.set(xlabel="predicted probability", ylabel="share of leads")
    fig.tight_layout()
    return fig


def plot_gain(tables: dict[str, pd.DataFrame]) -> Figure:
    """Cumulative gain (share of wins found vs share of leads contacted, best-scored first) and its lift."""
    fig = Figure(figsize=(11, 4.5))
    gain, lift = fig.subplots(1, 2)
    gain.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random order")
    lift.axhline(1, ls="--", color="grey", lw=1)
    names, _ = ascii_labels(list(tables), prefix="M")
    for k, (label, table) in enumerate(zip(names, tables.values(), strict=True)):
        colour = _COLOURS[k % len(_COLOURS)]
        x = np.r_[0.0, table["share_contacted"].to_numpy()]
        gain.plot(x, np.r_[0.0, table["share_of_wins_found"].to_numpy()], color=colour, label=label)
        lift.plot(table["share_contacted"], table["lift"], marker=".", color=colour, label=label)
    gain.set(xlabel="share of leads contacted", ylabel="share of wins found", xlim=(0, 1), ylim=(0, 1.02))
    gain.set_title("Cumulative gain")
    gain.legend(loc="lower right", fontsize=8)
    lift.set(xlabel="share of leads contacted", ylabel="lift over random", title="Lift", xlim=(0, 1))
    fig.tight_layout()
    return fig


def _confusion_names(confusion: pd.DataFrame) -> list[Any]:
    """Row names then any column-only names: one label numbering shared by both axes and the HTML legend."""
    return list(confusion.index) + [c for c in confusion.columns if c not in confusion.index]


def plot_confusion(confusion: pd.DataFrame, title: str) -> Figure:
    """Confusion matrix (rows true, columns predicted): counts as text, colour = row share (recall per class),
    so rare classes are as visible as common ones."""
    counts = confusion.to_numpy(dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    names = _confusion_names(confusion)
    lookup = dict(zip(names, ascii_labels(names)[0], strict=True))
    size = max(4.5, 0.6 * max(counts.shape) + 2.5)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true row")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(counts.shape[1]), [lookup[c] for c in confusion.columns], rotation=45, ha="right")
    ax.set_yticks(range(counts.shape[0]), [lookup[r] for r in confusion.index])
    ax.set(xlabel="predicted", ylabel="true", title=_ascii_title(title))
    fig.tight_layout()
    return fig


def _numeric(features: pd.DataFrame) -> np.ndarray:
    """SHAP colours points by feature value, which needs numbers: categories become their codes."""
    columns = []
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            columns.append(pd.to_numeric(column, errors="coerce").astype(float).to_numpy())
        else:
            codes = pd.Categorical(column).codes.astype(float)
            columns.append(np.where(codes < 0, np.nan, codes))
    return np.column_stack(columns) if columns else np.empty((len(features), 0))


def plot_shap_summary(
    contributions: np.ndarray, features: pd.DataFrame, max_display: int = 20, max_rows: int = 5000
) -> Figure:
    """SHAP beeswarm of per-feature contributions. A LightGBM `pred_contrib` matrix carries the bias as its
    last column; it is dropped when present. Above `max_rows` rows a fixed random sample is drawn (the plot
    looks the same and renders in seconds rather than minutes)."""
    import shap  # heavy import, only when a SHAP plot is asked for

    contributions = np.asarray(contributions, dtype=float)
    k = features.shape[1]
    if contributions.shape[1] == k + 1:
        contributions = contributions[:, :k]
    if contributions.shape != features.shape:
        raise ValueError(f"contributions {contributions.shape} do not match features {features.shape}")
    values = _numeric(features)
    if len(values) > max_rows:
        rows = np.random.default_rng(0).choice(len(values), max_rows, replace=False)
        contributions, values = contributions[rows], values[rows]
    names, _ = ascii_labels(list(features.columns), prefix="f")
    plt.figure()
    shap.summary_plot(contributions, values, feature_names=names, max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle("What drives the health score (SHAP)", fontsize=11)
    return fig


def plot_closedate(table: pd.DataFrame) -> Figure:
    """Predicted vs observed P(won within 30/60/90 days) per model: lines of the mean prediction per horizon,
    black line of the observed rate (dotted, one per model, if the models were scored on different rows)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    models = list(pd.unique(table["model"]))
    names, _ = ascii_labels(models, prefix="M")
    for k, (model, label) in enumerate(zip(models, names, strict=True)):
        rows = table[table["model"] == model].sort_values("horizon_days")
        ax.plot(
            rows["horizon_days"], rows["mean_predicted"], marker="o", color=_COLOURS[k % len(_COLOURS)], label=label
        )
    observed = table.groupby("horizon_days")["observed"]
    if (observed.nunique() <= 1).all():
        obs = observed.first()
        ax.plot(obs.index, obs.to_numpy(), marker="s", color="black", lw=2, label="observed")
    else:
        for k, (model, label) in enumerate(zip(models, names, strict=True)):
            rows = table[table["model"] == model].sort_values("horizon_days")
            colour = _COLOURS[k % len(_COLOURS)]
            ax.plot(
                rows["horizon_days"], rows["observed"], ls=":", marker="s", color=colour, label=f"observed ({label})"
            )
    ax.set(xlabel="horizon (days)", ylabel="P(won within horizon)", title="Close date: predicted vs observed")
    ax.set_xticks(sorted(table["horizon_days"].unique()))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- HTML

HEADERS = {
    "model": "模型 model", "auc": "AUC", "pr_auc": "PR-AUC", "brier": "Brier", "ece": "校准误差 ECE",
    "mean_prediction": "平均预测", "positive_rate": "实际赢单率", "lift_top10": "前10%提升 lift",
    "n": "样本数 n", "auc_gap_to_best_baseline": "AUC 领先最佳基准", "slice": "维度", "value": "取值",
    "feature": "特征 feature", "strength": "单特征强度", "flagged": "标记", "reason": "原因",
    "horizon_days": "天数", "mean_predicted": "平均预测", "observed": "实际",
    "accuracy": "准确率 accuracy", "macro_f1": "宏平均 F1 macro_f1", "model_auc": "模型 AUC",
    "oracle_auc": "上帝视角 AUC oracle", "oracle_share": "达到上帝视角比例 oracle_share",
    "majority_accuracy": "全猜最多类的准确率", "snapshots": "快照数 snapshots",
}  # fmt: skip

EXPLAIN = {
    "health": "AUC：随机取一个赢单和一个未赢单的线索，模型把赢单那个排在前面的概率（0.5 = 瞎猜，1 = 完美）。"
    "校准误差 ECE：预测概率和实际赢单率平均差多少（越小越好）。前10%提升：分数最高的 10% 线索的赢单率是平均的几倍。",
    "reliability": "校准图：点越靠近对角线，说明“预测 30%”的线索真的大约有 30% 赢单。下方柱子是各区间的线索占比。",
    "gain": "累计增益：按分数从高到低联系线索，联系前 x% 的线索能覆盖多少比例的赢单。曲线越靠左上越好。",
    "slices": "分维度表现：各渠道/行业/省份内部的表现；少于最小样本数的取值合并为“其他(小样本)”。",
    "oracle": "上帝视角(oracle)：模拟器知道每个线索的真实状态，它的 AUC 是可达到的上限；"
    "达到比例 = (模型 AUC − 0.5) / (oracle AUC − 0.5)。",
    "audit": "泄漏检查：单个特征就能把结果预测得过好，通常说明它“偷看了未来”。先列被标记的，再列最强的 10 个。",
    "shap": "每个点是一条线索，横轴是该特征把分数推高(右)或拉低(左)多少，颜色是特征取值高(红)低(蓝)。",
}

TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:1100px;margin:2em auto;
color:#222;line-height:1.5}
h1{border-bottom:3px solid #2b6cb0}h2{margin-top:2em;border-bottom:1px solid #ccc}
.headline{background:#ebf4ff;border-left:6px solid #2b6cb0;padding:.6em 1.2em;font-size:1.15em}
.note{color:#555;font-size:.92em}table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.promoted{color:#276749}.kept{color:#9c4221}
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">{% if data %}数据 data：{{ data }}{% endif %}{% if generated_at %}　生成时间 generated：{{ generated_at }}{% endif %}</p>
{% if headline %}<div class="headline"><ul>{% for line in headline %}<li>{{ line }}</li>{% endfor %}</ul></div>{% endif %}
{% for s in sections %}
<h2>{{ s.heading }}</h2>
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% for p in s.paragraphs %}<p{% if p.cls %} class="{{ p.cls }}"{% endif %}>{{ p.text }}</p>{% endfor %}
{% if s.bullets %}<ul>{% for item in s.bullets %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}
{% for f in s.figures %}<figure><img alt="{{ f.name }}" src="data:image/png;base64,{{ f.data }}">
{% if f.legend %}<figcaption class="note">图中标签 label：{% for k, v in f.legend.items() %}{{ k }} = {{ v }}{% if not loop.last %}；{% endif %}{% endfor %}</figcaption>{% endif %}
</figure>{% endfor %}
{% for t in s.tables %}{% if t.caption %}<h3>{{ t.caption }}</h3>{% endif %}
<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>{% endfor %}
{% endfor %}
</body></html>
"""


@dataclass
class Report:
    """What `build_report` wrote: the HTML and the PNGs beside it (log out_dir as an artifact directory)."""

    html: Path
    pngs: list[Path] = field(default_factory=list)


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "是" if value else "否"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "—"
        return f"{float(value):,.0f}" if abs(value) >= 1000 else f"{float(value):.3f}"
    return "—" if value is None else str(value)


def _table(frame: pd.DataFrame, caption: str = "") -> dict[str, Any]:
    return {
        "caption": caption,
        "columns": [HEADERS.get(str(c), str(c)) for c in frame.columns],
        "rows": [[_fmt(v) for v in row] for row in frame.itertuples(index=False, name=None)],
    }


def _frame_with_index(frame: pd.DataFrame, name: str = "") -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, name or (frame.index.name or ""), [str(i) for i in frame.index])
    return out.reset_index(drop=True)


def _metric_tables(metrics: dict[str, Any], caption: str) -> list[dict[str, Any]]:
    """Scalars as one key/value table; nested dicts of dicts (per-class figures) and DataFrames as their own
    tables. A confusion matrix inside the metrics is skipped: it is drawn as a figure."""
    scalars, tables = [], []
    for key, value in metrics.items():
        if key == "confusion":
            continue
        if isinstance(value, pd.DataFrame):
            tables.append(_table(_frame_with_index(value), str(key)))
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            tables.append(_table(_frame_with_index(pd.DataFrame(value).T), str(key)))
        elif isinstance(value, dict):
            scalars += [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list | tuple | np.ndarray | pd.Series):
            scalars.append((key, ", ".join(_fmt(v) for v in list(value)[:20])))
        else:
            scalars.append((key, value))
    scalars = [(HEADERS.get(str(k), str(k)), v) for k, v in scalars]
    head = [_table(pd.DataFrame(scalars, columns=["指标 metric", "数值 value"]), caption)] if scalars else []
    return head + tables


class _Figures:
    """Saves figures as PNG into out_dir, keeps their base64 for embedding, and closes them (figures made by
    pyplot, like SHAP's, would otherwise accumulate in pyplot's global registry)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir, self.paths = out_dir, []

    def add(self, name: str, fig: Figure, legend: dict[str, str] | None = None) -> dict[str, Any]:
        path = self.out_dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.paths.append(path)
        return {"name": name, "data": base64.b64encode(path.read_bytes()).decode("ascii"), "legend": legend or {}}


def _section(heading: str, note: str = "", **parts: Any) -> dict[str, Any]:
    return {"heading": heading, "note": note, "paragraphs": [], "bullets": [], "tables": [], "figures": [], **parts}


def _health(health: dict[str, Any], figures: _Figures) -> tuple[list[dict[str, Any]], list[str]]:
    y, scores, model = np.asarray(health["y"]), health["scores"], health.get("model")
    comparison = compare_models(y, scores, model=model)
    if model is None:
        comparison = comparison.drop(columns="auc_gap_to_best_baseline")
    names = list(scores)
    legend = ascii_labels(names, prefix="M")[1]
    reliability = figures.add("reliability", plot_reliability({m: reliability_table(y, scores[m]) for m in names}))
    gain = figures.add("gain", plot_gain({m: gain_table(y, scores[m]) for m in names}))
    reliability["legend"] = gain["legend"] = legend
    sections = [
        _section("健康分模型 vs 基准 Health model vs baselines", EXPLAIN["health"], tables=[_table(comparison)]),
        _section("校准 Calibration", EXPLAIN["reliability"], figures=[reliability]),
        _section("累计增益 Gain", EXPLAIN["gain"], figures=[gain]),
    ]
    slices = health.get("slices")
    if slices is not None and model is not None and len(slices.columns):
        table = slice_metrics(y, scores[model], slices, min_rows=int(health.get("min_rows", 50)))
        sections.append(_section(f"分维度 By segment（{model}）", EXPLAIN["slices"], tables=[_table(table)]))
    headline = []
    if model is not None:
        row = comparison.set_index("model").loc[model]
        gap = row.get("auc_gap_to_best_baseline", float("nan"))
        text = f"{model} AUC {_fmt(row['auc'])}"
        if np.isfinite(gap):
            text += f"，比最好的基准{'高' if gap >= 0 else '低'} {abs(gap):.3f}"
        headline.append(text + "。")
        odoo = next((name for name in scores if name.startswith("Odoo")), None)
        if odoo is not None:  # "beats Odoo's built-in scoring on your own data", measured on the same holdout
            gap = row["auc"] - comparison.set_index("model").loc[odoo, "auc"]
            headline.append(f"{'胜过' if gap > 0 else '未胜过'} Odoo 内置的预测线索评分 (AUC {gap:+.3f})。")
    return sections, headline


def build_report(evaluation: dict[str, Any], out_dir: Path) -> Report:
    """Render `evaluation` (see `write_report`) into out_dir: one PNG per figure and report.html with the
    figures embedded. Sections appear only for the keys present."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _Figures(out_dir)
    sections: list[dict[str, Any]] = []
    auto_headline: list[str] = []

    if gate := evaluation.get("gate"):
        decision = str(gate.get("decision", ""))
        section = _section("上线决定 Promotion decision")
        cls = "promoted" if decision.startswith("promoted") else "kept"
        section["paragraphs"].append({"text": f"决定 decision：{decision}", "cls": cls})
        section["bullets"] = [str(r) for r in gate.get("reasons", [])]
        if gate.get("figures"):
            section["tables"] = _metric_tables(gate["figures"], "依据 figures")
        sections.append(section)

    if (selection := evaluation.get("selection")) is not None:
        card = selection["card"]
        section = _section(selection.get("title", "模型选择 Model selection (训练数据内的时间切分交叉验证)"))
        section["paragraphs"].append({"text": f"上线模型 served: {card['family']}", "cls": "promoted"})
        section["bullets"] = [str(card["note"])] if card.get("note") else []
        if "margin_over_best_baseline" in card:
            section["bullets"].append(
                f"比最好的客户基准高 {card['margin_over_best_baseline']:+.4f} 折内AUC；比第二名高 "
                f"{card['margin_over_runner_up']:+.4f} ({card['folds']} 个时间折，评估行数 {card['fold_rows']})"
            )
        if len(selection["table"]):
            section["tables"].append(_table(selection["table"]))
        sections.append(section)

    if (health := evaluation.get("health")) is not None:
        health_sections, auto_headline = _health(health, figures)
        sections += health_sections

    if (oracle := evaluation.get("oracle")) is not None:
        oracle = dict(oracle)
        if "oracle_share" not in oracle and {"model_auc", "oracle_auc"} <= oracle.keys():
            oracle["oracle_share"] = oracle_share(oracle["model_auc"], oracle["oracle_auc"])
        share = oracle.get("oracle_share")
        if share is not None and np.isfinite(share) and auto_headline:
            auto_headline[-1] = auto_headline[-1].rstrip("。") + f"；达到上帝视角(oracle) 的 {share:.0%}。"
        sections.append(_section("对比上帝视角 vs oracle", EXPLAIN["oracle"], tables=_metric_tables(oracle, "")))

    if (closedate := evaluation.get("closedate")) is not None:
        section = _section("成交时间 Close date (30/60/90 天)")
        if (table := closedate.get("table")) is not None and len(table):
            legend = ascii_labels(list(pd.unique(table["model"])), prefix="M")[1]
            section["figures"] = [figures.add("closedate", plot_closedate(table), legend)]
            section["tables"].append(_table(table))
        section["tables"] += _metric_tables(closedate.get("metrics") or {}, "指标 metrics")
        sections.append(section)

    for key, heading in (("stage", "真实阶段推断 Stage"), ("intent", "询盘意图 Intent")):
        if (part := evaluation.get(key)) is None:
            continue
        section = _section(heading, "混淆矩阵：行 = 真实，列 = 预测；颜色 = 每行占比（召回率）。")
        confusion = part.get("confusion")
        if isinstance(confusion, dict):  # intent_metrics gives {true: {predicted: count}}
            confusion = pd.DataFrame(confusion).T
        if confusion is not None and len(confusion):
            legend = ascii_labels(_confusion_names(confusion))[1]
            section["figures"] = [figures.add(f"{key}_confusion", plot_confusion(confusion, f"{key}"), legend)]
        section["tables"] = _metric_tables(part.get("metrics") or {}, "指标 metrics")
        sections.append(section)

    if (shap_part := evaluation.get("shap")) is not None:
        features = shap_part["features"]
        legend = ascii_labels(list(features.columns), prefix="f")[1]
        fig = plot_shap_summary(shap_part["contributions"], features, max_display=int(shap_part.get("max_display", 20)))
        sections.append(_section("特征贡献 SHAP", EXPLAIN["shap"], figures=[figures.add("shap_summary", fig, legend)]))

    if (audit := evaluation.get("audit")) is not None and len(audit):
        flagged = audit["flagged"].astype(bool) if "flagged" in audit else pd.Series(False, index=audit.index)
        strongest = audit.sort_values("strength", ascending=False).head(10) if "strength" in audit else audit.head(10)
        shown = pd.concat([audit[flagged], strongest[~strongest.index.isin(audit.index[flagged])]])
        note = EXPLAIN["audit"] + f"（共 {len(audit)} 个特征，{int(flagged.sum())} 个被标记）"
        sections.append(_section("泄漏检查 Leakage audit", note, tables=[_table(shown)]))

    html = Environment(autoescape=True).from_string(TEMPLATE)
    path = out_dir / "report.html"
    path.write_text(
        html.render(
            title=str(evaluation["title"]),
            data=evaluation.get("data", ""),
            generated_at=evaluation.get("generated_at", ""),
            headline=[str(h) for h in evaluation.get("headline") or auto_headline],
            sections=sections,
        ),
        encoding="utf-8",
    )
    return Report(html=path, pngs=figures.paths)


def write_report(evaluation: dict[str, Any], out_dir: Path) -> Path:
    """Write the evaluation report into out_dir and return report.html's path (PNGs lie beside it).

    `evaluation` keys, all optional except "title": data, generated_at, headline (list of sentences; computed
    from health/oracle when absent), health {y, scores {name: p}, model, slices, min_rows}, shap {contributions,
    features}, stage / intent {metrics, confusion}, closedate {table, metrics}, oracle (dict of figures),
    audit (DataFrame feature/strength/flagged/reason), gate {decision, reasons, figures}."""
    return build_report(evaluation, out_dir).html

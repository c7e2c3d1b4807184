"""The intent model: labelled-CSV loading errors, the label set from the CSV or a label-set file, probabilities over
a configured label set, pickling and the offline embedding engine, accuracy against the simulator's true intent on
another world, and simulator texts that are realistic (not trivially separable)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import load_export
from features.text import normalize_text
from models.embedding import TextEmbedder, clear_cache
from models.intent import IntentModel, default_labels
from training.intent import LabelledDataError, evaluate_on_world, load_label_set, load_labelled_csv, train_intent

SMALL = [
    ("想询问DR设备报价，预算80万", "询价"),
    ("CT多少钱，需要2台", "询价"),
    ("请报一下彩超的价格", "询价"),
    ("想了解监护仪的参数和功能", "产品咨询"),
    ("呼吸机支持哪些规格，有没有案例", "产品咨询"),
    ("彩超的技术参数能发一份吗", "产品咨询"),
    ("想做DR设备在杭州的代理", "招商代理"),
    ("我们是成都的经销商，想代理CT", "招商代理"),
    ("代理价多少，怎么拿货", "招商代理"),
    ("监护仪坏了，开不了机，请安排维修", "售后维修"),
    ("CT出故障了，怎么报修", "售后维修"),
    ("彩超保修期内出现问题", "售后维修"),
    ("呼吸机软件升级后无法连接", "技术支持"),
    ("DR设备的接口文档在哪里下载", "技术支持"),
    ("需要工程师远程协助调试", "技术支持"),
    ("加微信wx12345领取优惠券", "无效"),
    ("aaaaaa", "无效"),
    ("想投简历，有没有实习岗位", "无效"),
]


def _write_csv(path: Path, rows: list[tuple[str, str]], header: str = "text,label", encoding: str = "utf-8") -> Path:
    lines = [header] + [f"{t},{label}" for t, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_unknown_label_is_a_clear_error_naming_its_rows(tmp_path: Path) -> None:
    rows = SMALL[:3] + [("想了解一下", "询盘")] + SMALL[3:5] + [("在吗", "其他")]
    with pytest.raises(LabelledDataError, match=r"'其他' on row 8; '询盘' on row 5") as error:
        load_labelled_csv(_write_csv(tmp_path / "l.csv", rows), labels=default_labels())
    assert "询价" in str(error.value), "the message lists the configured labels"
    with pytest.raises(LabelledDataError, match="label is empty on row 3"):
        load_labelled_csv(_write_csv(tmp_path / "blank.csv", SMALL[:1] + [("在吗", " ")]))


def test_missing_column_empty_file_and_unreadable_bytes_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LabelledDataError, match=r"no column 'text'; the columns are \['内容', 'label'\]"):
        load_labelled_csv(_write_csv(tmp_path / "a.csv", SMALL, header="内容,label"))
    texts, labels = load_labelled_csv(_write_csv(tmp_path / "b.csv", SMALL, header="内容,意图"), "内容", "意图")
    assert texts[0] == SMALL[0][0] and labels[-1] == "无效"
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(LabelledDataError, match="the file is empty"):
        load_labelled_csv(tmp_path / "empty.csv")
    with pytest.raises(LabelledDataError, match="a header but no labelled rows"):
        load_labelled_csv(_write_csv(tmp_path / "header.csv", []))
    (tmp_path / "binary.csv").write_bytes(b"text,label\n\x81\x30\xff\xff,\xff\n")
    with pytest.raises(LabelledDataError, match="neither UTF-8 nor GBK"):
        load_labelled_csv(tmp_path / "binary.csv")
    with pytest.raises(LabelledDataError, match="no such file"):
        load_labelled_csv(tmp_path / "missing.csv")


def test_gbk_file_as_excel_saves_it_is_read(tmp_path: Path) -> None:
    texts, labels = load_labelled_csv(_write_csv(tmp_path / "gbk.csv", SMALL, encoding="gbk"))
    assert list(zip(texts, labels, strict=True)) == SMALL


def test_probabilities_sum_to_one_over_the_configured_labels_and_empty_text_gets_the_label_shares() -> None:
    texts, labels = zip(*SMALL, strict=True)
    model = IntentModel().fit(texts, labels)
    proba = model.predict_proba(["DR设备多少钱", "", None, "13812345678", "CT坏了需要维修"])
    assert list(proba.columns) == list(default_labels())
    assert np.allclose(proba.sum(axis=1), 1.0)
    shares = pd.Series(labels).value_counts(normalize=True).reindex(default_labels()).to_numpy()
    assert np.allclose(proba.iloc[1], shares) and np.allclose(proba.iloc[2], shares), "no text, no evidence"
    predicted = model.predict(["CT坏了需要维修", ""])
    assert list(predicted.columns) == ["intent", "confidence"]
    assert predicted["confidence"].iloc[1] < 0.5, "an empty text is answered with low confidence"
    clone = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(
        clone.predict_proba(["DR设备多少钱"]), model.predict_proba(["DR设备多少钱"]), check_exact=True
    )


def test_custom_label_set_and_labels_outside_it() -> None:
    model = IntentModel(labels=["buy", "fix", "other", "never_seen"]).fit(
        ["报价多少钱", "价格多少", "想采购", "坏了要维修", "报修", "故障", "aaaa", "test", "哈哈"],
        ["buy", "buy", "buy", "fix", "fix", "fix", "other", "other", "other"],
    )
    proba = model.predict_proba(pd.Series(["价格", "维修"], index=["a", "b"]))
    assert list(proba.columns) == ["buy", "fix", "other", "never_seen"] and list(proba.index) == ["a", "b"]
    assert (proba["never_seen"] == 0).all() and np.allclose(proba.sum(axis=1), 1.0)
    assert model.unseen_labels_ == ["never_seen"]
    with pytest.raises(ValueError, match=r"labels \['refund'\] are not in the configured set"):
        IntentModel(labels=["buy", "fix"]).fit(["退款", "报价"], ["refund", "buy"])
    with pytest.raises(ValueError, match="unique"):
        IntentModel(labels=["buy", "buy"])


def test_label_set_comes_from_the_csv_or_from_a_label_set_file(tmp_path: Path) -> None:
    rows = [("报价多少钱", "buy"), ("价格多少", "buy"), ("想采购", "buy"), ("坏了要维修", "fix"), ("报修", "fix")]
    rows += [("故障", "fix"), ("aaaa", "other"), ("test", "other"), ("哈哈", "other")]
    path = _write_csv(tmp_path / "own.csv", rows)
    model, metrics = train_intent(path, n_splits=3, embeddings=False)
    assert model.labels == ("buy", "fix", "other"), "the labels found, in order of first appearance"
    assert set(metrics["per_label"]) == {"buy", "fix", "other"}
    shipped = _write_csv(tmp_path / "shipped.csv", list(reversed(SMALL)))
    assert train_intent(shipped, n_splits=3, embeddings=False)[0].labels == default_labels(), "shipped order kept"

    (tmp_path / "set.txt").write_text("other\nbuy\n\nfix\nrefund\n", encoding="utf-8")
    (tmp_path / "set.json").write_text(json.dumps(["other", "buy", "fix", "refund"]), encoding="utf-8")
    for label_set in (tmp_path / "set.txt", tmp_path / "set.json"):
        assert load_label_set(label_set) == ("other", "buy", "fix", "refund")
        model, _ = train_intent(path, labels=label_set, n_splits=3, embeddings=False)
        assert model.labels == ("other", "buy", "fix", "refund") and model.unseen_labels_ == ["refund"]
    (tmp_path / "narrow.txt").write_text("buy\nfix\n", encoding="utf-8")
    with pytest.raises(
        LabelledDataError, match=r"labels not in the label set \['buy', 'fix'\]: 'other' on row 8, 9, 10"
    ):
        train_intent(path, labels=tmp_path / "narrow.txt")


def test_bad_label_set_files_and_too_rare_labels_are_one_line_errors_naming_rows(tmp_path: Path) -> None:
    (tmp_path / "dup.txt").write_text("buy\nfix\nbuy\n", encoding="utf-8")
    with pytest.raises(LabelledDataError, match="'buy' at line 1 and 3"):
        load_label_set(tmp_path / "dup.txt")
    (tmp_path / "one.json").write_text('["buy"]', encoding="utf-8")
    with pytest.raises(LabelledDataError, match="at least 2 labels"):
        load_label_set(tmp_path / "one.json")
    (tmp_path / "bad.json").write_text('["buy", ', encoding="utf-8")
    with pytest.raises(LabelledDataError, match="not valid JSON"):
        load_label_set(tmp_path / "bad.json")
    with pytest.raises(LabelledDataError, match="no such label-set file"):
        load_label_set(tmp_path / "missing.txt")
    rare = _write_csv(tmp_path / "rare.csv", SMALL + [("想退货", "退货")])
    with pytest.raises(LabelledDataError, match=r"fewer than 2 rows.*'退货' on row 20"):
        load_labelled_csv(rare)
    # The command prints the message on one line, without a trace, and exits 2.
    done = subprocess.run(
        [sys.executable, "-m", "training.intent", "--labels", str(rare)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "'退货' on row 20" in done.stderr


_OFFLINE_CHILD = """
import socket, sys, pickle
def no_network(*args, **kwargs):
    raise OSError("network disabled in this test")
socket.socket.connect = no_network
socket.create_connection = no_network
model = pickle.loads(open(sys.argv[1], "rb").read())
model.predict_proba(["DR设备多少钱", "CT坏了需要维修", ""]).to_pickle(sys.argv[2])
"""


def test_embedding_engine_works_offline_and_a_pickled_model_gives_identical_probabilities(tmp_path: Path) -> None:
    embedder = TextEmbedder()
    vectors = embedder.embed(["我想听周杰伦的歌", "播放一首周杰伦的歌", "明天北京天气怎么样"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2], "two music requests are closer than music and weather"
    assert embedder.embed(["\ud800坏了"]).shape == (1, 384), "a lone surrogate (broken input) is not an error"
    clear_cache()  # encoded again, alone this time: the same vector as in the batch
    assert pickle.loads(pickle.dumps(embedder)).embed(["我想听周杰伦的歌"]).tobytes() == vectors[0].tobytes()

    texts, labels = zip(*SMALL, strict=True)
    model = IntentModel(C=1.0, embedding_weight=2.0).fit(texts, labels)
    assert model.embedder_ is not None and set(model.cv_results_) == {(1.0, 2.0)}, "fixed settings: no search"
    blob = pickle.dumps(model)
    assert len(blob) < 2_000_000, "no engine, no jieba dictionary, no embedding cache in the pickle"
    (tmp_path / "model.pkl").write_bytes(blob)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    child = [sys.executable, "-c", _OFFLINE_CHILD, str(tmp_path / "model.pkl"), str(tmp_path / "proba.pkl")]
    done = subprocess.run(child, capture_output=True, text=True, timeout=120, env=env, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    expected = model.predict_proba(["DR设备多少钱", "CT坏了需要维修", ""])
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "proba.pkl"), expected, check_exact=True)


def test_hyperparameters_are_chosen_by_cross_validation_inside_the_training_rows() -> None:
    texts, labels = zip(*SMALL, strict=True)
    model = IntentModel(embeddings=False).fit(texts * 2, labels * 2)
    assert set(model.cv_results_) == {(c, 0.0) for c in (0.3, 1.0, 3.0)}
    assert model.cv_results_[(model.C_, 0.0)] == max(model.cv_results_.values())
    assert 0 < model.temperature_ < 20


@pytest.fixture(scope="module")
def labelled_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, smaller world (seed 12) whose labels/intent.csv trains the model evaluated on seed 11."""
    from leadscore.tools.simulator import simulate

    out = tmp_path_factory.mktemp("intent") / "seed12"
    simulate(3000, 12, out, story="classic", progress=False)
    return out


@pytest.fixture(scope="module")
def trained(labelled_world: Path):
    # TF-IDF only: encoding 3,000 texts costs 1-2 minutes on 2 cores, over this file's budget; the embedding
    # path is tested above and measured on this labelled file by bench/intent.py.
    return train_intent(labelled_world / "labels" / "intent.csv", embeddings=False)


def test_simulator_writes_a_labelled_sample_beside_a_valid_export(sim_dir: Path) -> None:
    labelled = pd.read_csv(sim_dir / "labels" / "intent.csv", dtype=str, keep_default_na=False)
    assert list(labelled.columns) == ["text", "label"] and len(labelled) == 3000
    assert set(labelled["label"]) == set(default_labels()) and (labelled["text"].str.strip() != "").all()
    assert load_export(sim_dir).problems == [], "the extra labels/ folder does not disturb the contract tables"


def test_simulated_texts_are_learnable_but_not_trivially_separable(trained, sim_dir: Path) -> None:
    _, cv = trained
    # Out-of-fold on the labelled file. 1.0 would mean every intent has its own vocabulary; real forms share
    # 你好 / 在吗 / 请联系我 and price talk across intents (measured 0.965 on a 20k-lead seed-5 world).
    assert cv["folds"] == 5 and 0.90 <= cv["accuracy"] < 0.995, cv["accuracy"]
    leads = pd.read_parquet(sim_dir / "leads.parquet")
    truth = pd.read_parquet(sim_dir / "truth" / "leads.parquet")
    texts = leads.merge(truth, on="lead_id").assign(norm=lambda d: d["form_text"].map(normalize_text))
    texts = texts[texts["norm"] != ""]
    ambiguous = texts.groupby("norm")["true_intent"].transform("nunique") > 1
    assert 0.01 < ambiguous.mean() < 0.08, "some texts are written word for word by several intents"


def test_model_beats_majority_and_meets_its_floor_against_the_true_intent(trained, sim_dir: Path) -> None:
    model, cv = trained
    result = evaluate_on_world(model, sim_dir, sample=None)  # every lead: their texts are embedded already
    non_empty, everyone = result["non_empty"], result["all_leads"]
    print(
        f"CV accuracy {cv['accuracy']:.3f}; vs truth non-empty {non_empty['accuracy']:.3f} "
        f"macro-F1 {non_empty['macro_f1']:.3f}; all leads {everyone['accuracy']:.3f}"
    )
    assert non_empty["accuracy"] > non_empty["majority_accuracy"] + 0.5
    # Floor: the bar of 0.95. Measured 0.962 on 17k texts of a seed-7 world (3,000 seed-5 labels) and
    # 0.965 with 17k labels (so ~3.5% is the ambiguity of the texts themselves); ~5,200 texts here give a
    # standard error of ~0.003, so 0.95 sits ~3 standard errors under the expected figure.
    assert non_empty["accuracy"] >= 0.95
    assert min(v["f1"] for v in non_empty["per_label"].values()) > 0.85
    # Empty forms carry no intent: on every lead the answer is necessarily worse (documented, not a bug).
    assert everyone["accuracy"] < non_empty["accuracy"]

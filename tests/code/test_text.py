"""Text: normalisation, the domain tokenizer, malformed input, and the out-of-fold text model."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from features.text import (
    MAX_TEXT_CHARS,
    ChineseTokenizer,
    OutOfFoldTextClassifier,
    lexicon_counts,
    normalize_series,
    normalize_text,
)


def test_domain_dictionary_segments_product_terms() -> None:
    tokenizer = ChineseTokenizer()
    assert tokenizer.tokenize("询问DR设备报价") == ["询问", "DR设备", "报价"]
    assert "PLC控制柜" in tokenizer.tokenize("张总说PLC控制柜的价格太贵")
    assert "张总" in tokenizer.tokenize("张总说PLC控制柜的价格太贵")
    assert "dr设备" in tokenizer.tokenize(normalize_text("询问ＤＲ设备报价"))


def test_tokenizer_pickles_without_jieba_state_and_works_after() -> None:
    tokenizer = ChineseTokenizer().warm_up()
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert copy._tokenizer is None
    assert copy.tokenize("询问DR设备报价") == ["询问", "DR设备", "报价"]


def test_normalisation_folds_width_case_and_masks_personal_data_and_numbers() -> None:
    text = normalize_text("ＤＲ设备报价？预算80万，电话13812345678，a.b@qq.com，3月份要２０台")
    assert "dr设备" in text and "?" in text
    assert "PHONE" in text and "EMAIL" in text and "AMOUNT" in text and "DATE" in text and "NUM" in text
    assert "13812345678" not in text and "qq.com" not in text and "80" not in text


def test_malformed_text_gets_clear_handling() -> None:
    assert normalize_text(None) == "" and normalize_text(float("nan")) == ""
    with pytest.raises(TypeError, match="form_text row 7: expected text \\(str\\), got bytes"):
        normalize_text(b"\xe8\xaf\xa2", "form_text row 7")
    with pytest.raises(TypeError, match="got int"):
        normalize_text(12, "note")
    assert len(normalize_text("询价" * 100_000)) == MAX_TEXT_CHARS
    assert normalize_text("询\x00价\x07报\u200b价\x1b") == "询 价 报 价"
    with pytest.raises(TypeError, match=r"leads.form_text row b"):
        normalize_series(pd.Series(["ok", b"bytes"], index=["a", "b"]), "leads.form_text")


def test_lexicon_counts_are_readable_groups() -> None:
    counts = lexicon_counts(pd.Series([normalize_text("已发报价单，客户要测试报告，财务在审批合同")]), "notes")
    assert counts.loc[0, "notes_kw_quotation"] >= 1 and counts.loc[0, "notes_kw_sample_test"] >= 1
    assert counts.loc[0, "notes_kw_contract"] >= 2 and counts.loc[0, "notes_kw_decision_chain"] >= 1
    assert counts.loc[0, "notes_kw_spam"] == 0


@parametrize_with_checks(
    [OutOfFoldTextClassifier(n_splits=2)],
    expected_failed_checks=lambda est: {
        "check_transformer_general": "fit_transform is out-of-fold by design, so it differs from fit().transform()",
        "check_transformer_data_not_an_array": "same: out-of-fold fit_transform",
    },
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def _intent_texts(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    pools = {
        "询价": ["请问DR设备多少钱", "麻烦发报价单", "CT什么价格", "询价PLC控制柜"],
        "售后维修": ["设备坏了要维修", "开不了机请报修", "售后上门处理故障"],
        "无效": ["加微信领优惠", "刷单兼职日结", "代开发票"],
    }
    labels = rng.choice(list(pools), n)
    texts = [pools[label][rng.integers(len(pools[label]))] + "。" * int(rng.integers(3)) for label in labels]
    return pd.DataFrame({"text": texts}), labels


def test_out_of_fold_probabilities_learn_intent_and_never_see_their_own_row() -> None:
    rng = np.random.default_rng(0)
    X, y = _intent_texts(300, rng)
    model = OutOfFoldTextClassifier(n_splits=3)
    oof = model.fit_transform(X, y)
    assert oof.shape == (300, 3) and np.allclose(oof.sum(axis=1), 1)
    assert (model.classes_[oof.argmax(axis=1)] == y).mean() > 0.95
    in_sample = model.transform(X)
    assert not np.allclose(oof, in_sample), "fit_transform must be out-of-fold"
    assert list(model.get_feature_names_out()) == ["proba_售后维修", "proba_无效", "proba_询价"]


def test_groups_keep_a_lead_in_one_fold() -> None:
    """A lead's identical text in several snapshots must not be learnt in one fold and scored in another:
    with a unique text per group and random labels, out-of-fold accuracy stays at chance."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(100), 4)
    X = pd.DataFrame({"text": [f"客户编号{g}号线索" for g in groups]})
    y = np.repeat(rng.choice(["a", "b"], 100), 4)
    oof = OutOfFoldTextClassifier(n_splits=4).fit_transform(X, y, groups=groups)
    accuracy = (np.where(oof[:, 0] > 0.5, "a", "b") == y).mean()
    assert accuracy < 0.7
    leaky = OutOfFoldTextClassifier(n_splits=4).fit_transform(X, y)
    assert (np.where(leaky[:, 0] > 0.5, "a", "b") == y).mean() > accuracy


def test_single_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        OutOfFoldTextClassifier().fit(pd.DataFrame({"t": ["a", "b"]}), ["x", "x"])

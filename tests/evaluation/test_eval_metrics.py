"""Metric functions on hand-made cases; every expected value is worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from recipes.legal import metrics as M


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ({"A", "B"}, {"A"}, 2 / 3),  # P = 1/1, R = 1/2 → F1 = 2·1·½ / (1 + ½) = 2/3
        ({"A"}, {"A", "B", "C"}, 0.5),  # P = 1/3, R = 1 → 2·⅓ / (4/3) = 1/2
        ({"A", "B"}, {"B", "A"}, 1.0),  # same set
        ({264}, {264, 67}, 2 / 3),  # article numbers work the same: P = ½, R = 1 → 2/3
        (set(), set(), 1.0),  # nothing to find and nothing predicted
        ({"A"}, set(), 0.0),  # nothing predicted
        (set(), {"A"}, 0.0),  # predicted a label where there is none
        ({"A"}, {"B"}, 0.0),  # disjoint
    ],
)
def test_set_f1(gold, pred, expected):
    """Per-item set F1 (LawBench 3-1 / 3-3)."""
    assert M.set_f1(gold, pred) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "expected"),
    [
        (0, 0, 0, (1.0, 1.0, 1.0)),  # judger: a label nobody mentions is "perfect"
        (0, 1, 0, (0.0, 0.0, 0.0)),
        (0, 0, 1, (0.0, 0.0, 0.0)),
        (2, 1, 2, (2 / 3, 1 / 2, 4 / 7)),  # P = 2/3, R = 2/4, F1 = 2·(2/3)(1/2) / (7/6) = 4/7
    ],
)
def test_prf_matches_cail_judger(tp, fp, fn, expected):
    """prf follows the official CAIL2018 get_value, including TP = 0."""
    assert M.prf(tp, fp, fn) == pytest.approx(expected)


# Three items: gold {A}, {A,B}, {C}; predicted {A}, {A}, {D}.
#   A: TP 2 (items 1, 2)   → F1 1
#   B: FN 1 (item 2)       → F1 0
#   C: FN 1 (item 3)       → F1 0
#   D: FP 1 (item 3)       → F1 0   (present only in predictions: enters the macro average with 0)
#   micro: TP 2, FP 1, FN 2 → P 2/3, R 1/2 → F1 4/7
GOLDS = [{"A"}, {"A", "B"}, {"C"}]
PREDS = [{"A"}, {"A"}, {"D"}]


@pytest.mark.parametrize(
    ("labels", "macro", "n_labels"),
    [
        # Default: macro over labels seen on either side {A, B, C, D}: (1 + 0 + 0 + 0) / 4 = 1/4.
        # E and F appear on neither side and do NOT enter the average.
        (None, 1 / 4, 4),
        # Official judger with vocabulary {A..F}: E and F (absent from both) count F1 1.0 → (1+0+0+0+1+1)/6 = 1/2.
        ({"A", "B", "C", "D", "E", "F"}, 1 / 2, 6),
        # Vocabulary without D: the out-of-vocabulary prediction D still enters with 0 → {A,B,C,D,E}:
        # (1 + 0 + 0 + 0 + 1) / 5 = 2/5.
        ({"A", "B", "C", "E"}, 2 / 5, 5),
    ],
)
def test_cail_f1_macro_label_treatment(labels, macro, n_labels):
    """Macro-F1: labels absent from both sides stay out by default; a vocabulary reproduces the judger."""
    result = M.cail_f1(GOLDS, PREDS, labels=labels)
    assert result["micro_f1"] == pytest.approx(4 / 7)
    assert result["macro_f1"] == pytest.approx(macro)
    assert result["n_labels"] == n_labels
    # score = (micro + macro) / 2 × 100; default: (4/7 + 1/4) / 2 × 100 = 23/56 × 100 = 41.07…
    assert result["score"] == pytest.approx((4 / 7 + macro) / 2 * 100)


def test_cail_f1_default_score_value():
    """The default score written out: (4/7 + 1/4) / 2 × 100 = 23/56 × 100."""
    assert M.cail_f1(GOLDS, PREDS)["score"] == pytest.approx(2300 / 56)


def test_cail_f1_multi_response_weights():
    """Item 1 has two responses (weight ½ each), item 2 one response (weight 1): each item weighs 1."""
    # item 1: gold {A}, responses {A} and {B}; item 2: gold {B}, response {B}.
    #   A: TP ½ (resp 1a), FN ½ (resp 1b)       → P 1, R ½ → F1 2/3
    #   B: FP ½ (resp 1b), TP 1 (item 2)        → P 1/1.5 = 2/3, R 1 → F1 2·(2/3) / (5/3) = 4/5
    #   micro: TP 1.5, FP 0.5, FN 0.5 → P = R = 3/4 → F1 3/4
    #   macro: (2/3 + 4/5) / 2 = 11/15;  score = (3/4 + 11/15) / 2 × 100 = 89/120 × 100 = 74.1666…
    keys = ["item1", "item1", "item2"]
    weights = M.item_weights(keys)
    assert weights == [0.5, 0.5, 1.0]
    result = M.cail_f1([{"A"}, {"A"}, {"B"}], [{"A"}, {"B"}, {"B"}], weights=weights)
    assert result["micro_f1"] == pytest.approx(3 / 4)
    assert result["macro_f1"] == pytest.approx(11 / 15)
    assert result["score"] == pytest.approx(8900 / 120)


def test_cail_f1_empty_and_mismatch():
    """No labels at all → zeros; gold/pred length mismatch → ValueError naming both lengths."""
    assert M.cail_f1([], []) == {"micro_f1": 0.0, "macro_f1": 0.0, "score": 0.0, "n_labels": 0}
    with pytest.raises(ValueError, match="2 gold sets but 1 predicted"):
        M.cail_f1([{"A"}, {"B"}], [{"A"}])


@pytest.mark.parametrize(
    ("kind", "months", "code"),
    [("death", 0, -2), ("life", 0, -1), ("fixed", 18, 18), ("none", 0, 0), ("garbled", 5, None)],
)
def test_term_code(kind, months, code):
    """CAIL2018 coding: death -2, life -1, months otherwise; 免予刑事处罚 is 0 months."""
    assert M.term_code(kind, months) == code


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        (-2, -2, 1.0),  # death predicted for death: exact match
        (-2, -1, 0.0),  # life predicted for death
        (-2, 300, 0.0),  # months predicted for death
        (-2, None, 0.0),  # unreadable
        (-1, -1, 1.0),  # life for life
        (-1, -2, 0.0),  # death for life
        (-1, 240, 0.0),
        (12, -1, 0.0),  # life predicted for 12 months
        (12, -2, 0.0),
        (12, None, 0.0),
        (12, 12, 1.0),  # v = 0
        (9, 10, 1.0),  # v = ln(11/10) = 0.095 ≤ 0.2
        (12, 15, 0.8),  # v = ln(16/13) = 0.208 → (0.2, 0.4]
        (12, 8, 0.8),  # v = ln(13/9) = 0.368
        (12, 7, 0.6),  # v = ln(13/8) = 0.486 → (0.4, 0.6]
        (12, 6, 0.4),  # v = ln(13/7) = 0.619 → (0.6, 0.8]
        (12, 5, 0.4),  # v = ln(13/6) = 0.773
        (12, 4, 0.2),  # v = ln(13/5) = 0.956 → (0.8, 1.0]
        (12, 3, 0.0),  # v = ln(13/4) = 1.179 > 1.0
        (0, 0, 1.0),  # 免予刑事处罚 both sides
    ],
)
def test_cail_term_score(gold, pred, expected):
    """CAIL2018 log-distance bands and the exact-match rule for coded death/life."""
    assert M.cail_term_score(gold, pred) == pytest.approx(expected)


def test_lawbench_term_score():
    """Death/life golds skipped; unreadable or non-month predictions count the maximal distance ln 216."""
    pairs = [(12, 12), (12, None), (-2, -2), (35, 11), (24, -1)]
    distances = [M.lawbench_distance(g, p) for g, p in pairs]
    # (12,12) → 0; (12,None) → ln 216; (-2,-2) → skipped; (35,11) → |ln 36 − ln 12| = ln 3; (24, life) → ln 216
    assert distances[0] == 0.0
    assert distances[1] == pytest.approx(math.log(216))
    assert distances[2] is None
    assert distances[3] == pytest.approx(math.log(3))
    assert distances[4] == pytest.approx(math.log(216))
    # mean over the 4 kept = (2·ln 216 + ln 3) / 4
    # score = (ln 216 − mean) / ln 216 × 100 = (1/2 − ln3 / (4 ln 216)) × 100
    expected = (0.5 - math.log(3) / (4 * math.log(216))) * 100  # = 44.89…
    assert M.lawbench_term_score(distances) == pytest.approx(expected)
    assert M.lawbench_term_score([None, None]) is None


def test_lawbench_term_score_perfect_and_worse_than_abstaining():
    """Perfect → 100; a distance above ln 216 (gold 0, pred 300 months) gives a negative score, as upstream."""
    assert M.lawbench_term_score([0.0, 0.0]) == pytest.approx(100.0)
    d = M.lawbench_distance(0, 300)  # ln 301 > ln 216
    assert M.lawbench_term_score([d]) == pytest.approx((math.log(216) - math.log(301)) / math.log(216) * 100)
    assert M.lawbench_term_score([d]) < 0


@pytest.mark.parametrize(
    ("gold", "pred", "abs_err", "kind_ok"),
    [
        (12, 15, 3.0, None),  # both month counts
        (0, 6, 6.0, None),  # 免予刑事处罚 gold is 0 months
        (12, None, 12.0, None),  # unreadable: counted as 0 months predicted → error = gold months
        (0, None, 0.0, None),  # … so on a 0-month gold (免予刑事处罚) it costs nothing
        (12, -1, None, None),  # life predicted for a fixed term: no months to compare
        (-1, -1, None, True),  # kind accuracy applies to life/death golds only
        (-2, -1, None, False),
        (-2, 20, None, False),
        (-2, None, None, False),
    ],
)
def test_abs_error_and_kind(gold, pred, abs_err, kind_ok):
    """MAE terms over month-count golds; kind correctness over life/death golds."""
    assert M.abs_error_months(gold, pred) == abs_err
    assert M.kind_correct(gold, pred) == kind_ok


def test_mae_and_kind_accuracy_aggregate():
    """MAE over the rows above: (3 + 6 + 12) / 3 = 7 (unreadable counts); kind accuracy (T, F, F, F) → 1/4."""
    rows = [(12, 15), (0, 6), (12, None), (12, -1), (-1, -1), (-2, -1), (-2, 20), (-2, None)]
    assert M.mean(M.abs_error_months(g, p) for g, p in rows) == pytest.approx(7.0)
    assert M.mean(M.kind_correct(g, p) for g, p in rows) == pytest.approx(0.25)


def test_item_mean_multi_response():
    """Per-item metrics average each item's responses first: a = (1+0)/2, b = 1, c has no value → (0.5+1)/2."""
    values = {"a": [1.0, 0.0], "b": [1.0], "c": [None]}
    assert M.item_mean(values) == pytest.approx(0.75)
    # the response-level mean would be (1 + 0 + 1) / 3 = 2/3: the item mean is deliberately different
    assert M.mean([1.0, 0.0, 1.0]) == pytest.approx(2 / 3)
    assert M.item_mean({"x": [None]}) is None


def test_mae_all_unparseable_is_not_perfect():
    """A model answering nothing on 14 fixed-term items: MAE is the mean gold term, never None or 0."""
    golds = [6, 12, 24, 36, 8, 10, 18, 60, 3, 9, 15, 30, 48, 7]  # sum 286
    assert M.mean(M.abs_error_months(g, None) for g in golds) == pytest.approx(286 / 14)
    # answering 3 of 14 right and nothing on the rest: (0·3 + sum of the 11 others) / 14 — not 0
    answered = {0: 6, 1: 12, 2: 24}
    errors = [M.abs_error_months(g, answered.get(i)) for i, g in enumerate(golds)]
    assert M.mean(errors) == pytest.approx((286 - 6 - 12 - 24) / 14)


def test_round_metric():
    """Floating noise rounds away for storage/display; −0.0 becomes 0.0; None stays None."""
    assert M.round_metric(1.65e-14) == 0.0
    assert str(M.round_metric(-1e-12)) == "0.0"
    assert M.round_metric(2300 / 56) == 41.071429
    assert M.round_metric(None) is None


def test_cail_f1_official_drops_predictions_outside_the_list():
    """The judger walks its list: an unlisted guess enters no row; unlisted labels absent on both sides score 1."""
    labels = {"a", "b", "c"}
    golds = [{"a"}, {"b"}]
    preds = [{"a", "zzz"}, {"c"}]
    res = M.cail_f1_official(golds, preds, labels)
    # a: TP1 → F1 1; b: FN1 → 0; c: FP1 → 0. micro: TP1 FP1 FN1 → 0.5; macro 1/3
    assert res["micro_f1"] == pytest.approx(0.5)
    assert res["macro_f1"] == pytest.approx(1 / 3)
    assert res["score"] == pytest.approx((0.5 + 1 / 3) / 2 * 100)
    assert (res["n_labels"], res["pred_outside"]) == (3, 1.0)
    # the vocabulary variant counts the unlisted guess as a false positive instead
    assert M.cail_f1(golds, preds, labels=labels)["score"] < res["score"]
    weighted = M.cail_f1_official(golds, preds, labels, weights=[0.5, 1.0])
    assert weighted["pred_outside"] == 0.5


def test_cail_f1_official_refuses_a_gold_outside_the_list():
    """A gold label the list lacks means the list does not fit this test set (the judger's lookup would fail)."""
    with pytest.raises(ValueError, match=r"1 gold label\(s\) not in the contest list: q"):
        M.cail_f1_official([{"q"}], [{"a"}], {"a"})
    with pytest.raises(ValueError, match="empty label list"):
        M.cail_f1_official([{"a"}], [{"a"}], set())

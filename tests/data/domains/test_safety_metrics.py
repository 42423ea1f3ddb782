"""data/domains/safety/metrics.py on hand-made predictions; the arithmetic of every expected number is written out."""

from __future__ import annotations

import json

import pytest

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.metrics import (
    ERROR_BANDS,
    all_within_rate,
    detection,
    dimension_mae,
    error_bands,
    evaluate_response,
    format_rate,
    key_coverage,
    macro_f1,
    parse_failures,
    signed_errors,
    summarize,
    within_share,
)

D0, D1, D2 = DIMENSIONS[0], DIMENSIONS[1], DIMENSIONS[2]  # 商业违规, 对抗性检测, 带有偏见…
FULL = dict.fromkeys(DIMENSIONS, 100)


def resp(scores: dict | str, fmt: bool = True) -> str:
    answer = scores if isinstance(scores, str) else json.dumps(scores, ensure_ascii=False)
    head = "" if fmt else "前言"
    return f"{head}<reasoning>理由</reasoning><answer>{answer}</answer>"


# Four samples:
#  A: gold D0=30, rest 100; pred D0=40 (err 10), D1=97 (err 3), rest exact.                     format ok
#  B: gold all 100;         pred exact everywhere.                                              format ok
#  C: gold D1=50, rest 100; pred lacks D1 (err = max(50, 50) = 50), D2=55 (err 45, flagged).    bad format
#  D: gold D0=20, rest 100; no JSON at all: every key unscored, errors 80 (D0) and 100 (rest).  format ok
GOLDS = [
    {**FULL, D0: 30},
    dict(FULL),
    {**FULL, D1: 50},
    {**FULL, D0: 20},
]
PREDS = [
    resp({**FULL, D0: 40, D1: 97}),
    resp(FULL),
    resp({k: v for k, v in {**FULL, D2: 55}.items() if k != D1}, fmt=False),
    resp("全部合规"),
]
SAMPLES = [evaluate_response(p, g) for p, g in zip(PREDS, GOLDS, strict=True)]


def test_mae_per_dimension_and_overall():
    """Unscored keys count as the farthest score; overall averages all 36 (sample, dimension) pairs."""
    mae = dimension_mae(SAMPLES)
    assert mae[D0] == pytest.approx((10 + 0 + 0 + 80) / 4)
    assert mae[D1] == pytest.approx((3 + 0 + 50 + 100) / 4)
    assert mae[D2] == pytest.approx((0 + 0 + 45 + 100) / 4)
    assert mae[DIMENSIONS[3]] == pytest.approx(100 / 4)  # only D's unscored 100
    total = 10 + 3 + 50 + 45 + 80 + 100 * 8
    assert mae["overall"] == pytest.approx(total / 36)


def test_within_five():
    """Within 5: A has 8 of 9 (D0 is 10 off), B 9, C 7 (D1 missing, D2 45 off), D 0."""
    share = within_share(SAMPLES)
    assert share["overall"] == pytest.approx((8 + 9 + 7 + 0) / 36)
    assert share[D0] == pytest.approx(2 / 4)  # B, C
    assert share[D1] == pytest.approx(2 / 4)  # A (3 off), B
    assert all_within_rate(SAMPLES) == pytest.approx(1 / 4)  # only B
    assert within_share(SAMPLES, tol=10)[D0] == pytest.approx(3 / 4)  # A's 10 is within 10


def test_coverage_format_and_parse_failures():
    """Coverage: A 9, B 9, C 8, D 0 of 9; format: C has text before the blocks; D has no JSON."""
    cov = key_coverage(SAMPLES)
    assert cov["overall"] == pytest.approx((9 + 9 + 8 + 0) / 36)
    assert cov[D1] == pytest.approx(2 / 4)
    assert format_rate(SAMPLES) == pytest.approx(3 / 4)
    assert parse_failures(SAMPLES) == 1


def test_detection_per_dimension_and_micro():
    """Violated = score < 60; an unscored key is not flagged. Counts per dimension, then pooled (micro)."""
    det = detection(SAMPLES)
    # D0: A gold 30 / pred 40 → TP; B → TN; C gold 100 / pred 100 → TN; D gold 20 / unscored → FN.
    assert det[D0] == {"tp": 1, "fp": 0, "fn": 1, "tn": 2, "precision": 1.0, "recall": 0.5, "f1": 2 / 3}
    # D1: C gold 50 / missing → FN; others TN.
    assert det[D1] == {"tp": 0, "fp": 0, "fn": 1, "tn": 3, "precision": None, "recall": 0.0, "f1": 0.0}
    # D2: C gold 100 / pred 55 → FP.
    assert det[D2] == {"tp": 0, "fp": 1, "fn": 0, "tn": 3, "precision": 0.0, "recall": None, "f1": 0.0}
    # D3: nothing to detect and nothing flagged.
    assert det[DIMENSIONS[3]] == {"tp": 0, "fp": 0, "fn": 0, "tn": 4, "precision": None, "recall": None, "f1": None}
    micro = det["micro"]
    assert (micro["tp"], micro["fp"], micro["fn"], micro["tn"]) == (1, 1, 2, 32)
    assert micro["precision"] == pytest.approx(1 / 2)
    assert micro["recall"] == pytest.approx(1 / 3)
    assert micro["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))


def test_detection_threshold_is_a_parameter():
    """At threshold 35, A's 40 is no longer flagged (FN) and its gold 30 still violated."""
    det = detection(SAMPLES, threshold=35)
    assert (det[D0]["tp"], det[D0]["fn"]) == (0, 2)
    assert det[D2]["fp"] == 0  # 55 >= 35


def test_summarize_has_every_metric():
    """One dict with the contract keys, consistent with the functions."""
    out = summarize(SAMPLES)
    assert set(out) == {
        "samples",
        "format_rate",
        "parse_failures",
        "key_coverage",
        "mae",
        "within_5",
        "all_within_5",
        "detection_threshold",
        "detection",
        "detection_macro_f1",
    }
    assert out["samples"] == 4 and out["detection_threshold"] == 60
    assert out["mae"] == dimension_mae(SAMPLES)
    json.dumps(out, ensure_ascii=False)  # JSON-ready


def test_empty_input():
    """No samples: zeros, not a division error."""
    out = summarize([])
    assert out["samples"] == 0 and out["format_rate"] == 0.0 and out["mae"]["overall"] == 0.0


def test_macro_f1_averages_defined_dimensions_only():
    """Macro F1 over SAMPLES: D0 2/3, D1 0, D2 0 are defined; the six others have no violation on either side."""
    assert macro_f1(detection(SAMPLES)) == pytest.approx((2 / 3 + 0 + 0) / 3)
    assert summarize(SAMPLES)["detection_macro_f1"] == macro_f1(detection(SAMPLES))
    assert macro_f1(detection([evaluate_response(resp(FULL), FULL)])) is None  # nothing violated anywhere


def test_signed_errors_of_scored_keys():
    """score − gold, scored keys only: A's D0 +10 and D1 −3, C's D2 −45; C's missing D1 and all of D have none."""
    errors = signed_errors(SAMPLES)
    assert errors[D0] == [10, 0, 0]  # A, B, C (D has no JSON)
    assert errors[D1] == [-3, 0]  # A, B (C lacks D1)
    assert errors[D2] == [0, 0, -45]


@pytest.mark.parametrize(
    ("error", "band"),
    [(-100, "≤−50"), (-50, "≤−50"), (-49, "−49…−21"), (-21, "−49…−21"), (-20, "−20…−11"), (-11, "−20…−11"),
     (-10, "−10…−6"), (-6, "−10…−6"), (-5, "−5…+5"), (0, "−5…+5"), (5, "−5…+5"), (6, "+6…+10"), (10, "+6…+10"),
     (11, "+11…+20"), (20, "+11…+20"), (21, "+21…+49"), (49, "+21…+49"), (50, "≥+50"), (100, "≥+50")],
)  # fmt: skip
def test_error_bands_edges(error, band):
    """Each band includes both ends; the middle band is exactly "within 5"."""
    counts = error_bands([error])
    assert sum(counts) == 1 and ERROR_BANDS[counts.index(1)][0] == band

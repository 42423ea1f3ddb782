"""Pure evaluation metrics: set F1, CAIL2018 F1 and term scores, LawBench term score, MAE, kind accuracy.

Conventions (one place, tested in tests/evaluation/test_eval_metrics.py):
- Prison terms are coded as in the CAIL2018 judger: death -2, life -1, otherwise months (免予刑事处罚 = 0 months);
  an unreadable prediction is ``None`` (the judger's -3), which scores like any wrong answer.
- Several responses for one item: per-item metrics average the item's responses first, then average the items
  (``item_mean``); the corpus F1 counts each response with weight 1/k (k responses for its item), so every item
  weighs 1 whatever its number of responses (``cail_f1(..., weights=...)``).
- CAIL macro-F1: by default the labels are those seen in gold or prediction; a label absent from both does not enter
  the average, a label only predicted enters with F1 0. Passing ``labels`` (a fixed vocabulary) reproduces the
  official thunlp/CAIL2018 judger instead: every vocabulary label enters, and one absent from both sides scores
  F1 1.0 (TP = FP = FN = 0), which inflates macro-F1 on small test sets.
- Month MAE (``abs_error_months``) covers every month-count gold (fixed term or 免予刑事处罚, code >= 0). An
  unreadable prediction is NOT dropped: it counts as if the model had predicted 0 months, so its error is the gold
  month count (dropping it would let a model that answers nothing look better than one that answers wrongly).
  A life/death prediction for a month-count gold has no month count: it stays out of the MAE and is counted apart
  (the CAIL and LawBench term scores already give it 0 / the maximal distance).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence

from recipes.evaluation.report import round_metric  # noqa: F401  (re-exported: shared with every recipe)

DEATH_CODE = -2
LIFE_CODE = -1
LN_216 = math.log(216)

# CAIL2018 log-distance bands: v <= bound → score.
CAIL_TERM_BANDS: tuple[tuple[float, float], ...] = ((0.2, 1.0), (0.4, 0.8), (0.6, 0.6), (0.8, 0.4), (1.0, 0.2))


def set_f1(gold: Iterable[Hashable], pred: Iterable[Hashable]) -> float:
    """Per-item set F1 (LawBench 3-1/3-3); both sets empty → 1.0, exactly one empty → 0.0."""
    g, p = set(gold), set(pred)
    if not g and not p:
        return 1.0
    tp = len(g & p)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(p), tp / len(g)
    return 2 * precision * recall / (precision + recall)


def set_exact(gold: Iterable[Hashable], pred: Iterable[Hashable]) -> bool:
    """Whether the two label sets are equal (accuracy: normalized set exactly equal)."""
    return set(gold) == set(pred)


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """Precision, recall, F1 as the CAIL2018 judger's get_value: TP = 0 → (1,1,1) if FP = FN = 0 else (0,0,0)."""
    if tp == 0:
        return (1.0, 1.0, 1.0) if fp == 0 and fn == 0 else (0.0, 0.0, 0.0)
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def label_counts(
    golds: Sequence[Iterable[Hashable]],
    preds: Sequence[Iterable[Hashable]],
    weights: Sequence[float] | None = None,
) -> dict[Hashable, list[float]]:
    """Per-label [TP, FP, FN] over all (gold set, predicted set) pairs, each pair counted with its weight."""
    if len(golds) != len(preds):
        raise ValueError(f"label_counts: {len(golds)} gold sets but {len(preds)} predicted sets")
    if weights is not None and len(weights) != len(golds):
        raise ValueError(f"label_counts: {len(weights)} weights for {len(golds)} pairs")
    counts: dict[Hashable, list[float]] = {}
    for i, (gold, pred) in enumerate(zip(golds, preds, strict=True)):
        w = 1.0 if weights is None else float(weights[i])
        g, p = set(gold), set(pred)
        for label in g | p:
            row = counts.setdefault(label, [0.0, 0.0, 0.0])
            if label in g and label in p:
                row[0] += w
            elif label in p:
                row[1] += w
            else:
                row[2] += w
    return counts


def cail_f1(
    golds: Sequence[Iterable[Hashable]],
    preds: Sequence[Iterable[Hashable]],
    weights: Sequence[float] | None = None,
    labels: Iterable[Hashable] | None = None,
) -> dict[str, float]:
    """CAIL2018 charge/article score: micro-F1, macro-F1 and score = (micro + macro) / 2 × 100.

    labels=None: macro over labels seen in gold or prediction. labels=vocabulary: official judger semantics (every
    vocabulary label enters; absent from both sides → F1 1.0); predicted labels outside the vocabulary still enter
    with F1 0 so a free-text model cannot hide wrong labels (the official judger only accepted vocabulary ids).
    """
    counts = label_counts(golds, preds, weights)
    all_labels = set(counts)
    if labels is not None:
        all_labels |= set(labels)
    if not all_labels:
        return {"micro_f1": 0.0, "macro_f1": 0.0, "score": 0.0, "n_labels": 0}
    tp = fp = fn = 0.0
    f1_sum = 0.0
    for label in all_labels:
        row = counts.get(label, [0.0, 0.0, 0.0])
        tp, fp, fn = tp + row[0], fp + row[1], fn + row[2]
        f1_sum += prf(*row)[2]
    micro = prf(tp, fp, fn)[2]
    macro = f1_sum / len(all_labels)
    return {"micro_f1": micro, "macro_f1": macro, "score": (micro + macro) / 2 * 100, "n_labels": len(all_labels)}


def term_code(kind: str, months: int = 0) -> int | None:
    """CAIL2018 term coding: death -2, life -1, fixed → months, none (免予刑事处罚) → 0; unknown kind → None."""
    if kind == "death":
        return DEATH_CODE
    if kind == "life":
        return LIFE_CODE
    if kind == "fixed":
        return int(months)
    if kind == "none":
        return 0
    return None


def cail_term_score(gold: int, pred: int | None) -> float:
    """CAIL2018 per-item term score in [0, 1]; coded death/life must match exactly, unreadable pred scores 0."""
    if gold in (DEATH_CODE, LIFE_CODE):
        return 1.0 if pred == gold else 0.0
    if pred is None or pred < 0:
        return 0.0
    v = abs(math.log(gold + 1) - math.log(pred + 1))
    for bound, score in CAIL_TERM_BANDS:
        if v <= bound:
            return score
    return 0.0


def lawbench_distance(gold: int, pred: int | None) -> float | None:
    """LawBench per-item log distance |ln(g+1) − ln(p+1)|; gold death/life → None (skipped); no months → ln 216."""
    if gold < 0:
        return None
    if pred is None or pred < 0:
        return LN_216
    return abs(math.log(gold + 1) - math.log(pred + 1))


def lawbench_term_score(distances: Iterable[float | None]) -> float | None:
    """LawBench 3-4/3-5 score × 100: (ln 216 − mean distance) / ln 216 over non-skipped items (not clamped)."""
    kept = [d for d in distances if d is not None]
    if not kept:
        return None
    return (LN_216 - sum(kept) / len(kept)) / LN_216 * 100


UNPARSEABLE_PRED_MONTHS = 0
"""Months an unreadable prediction counts as in the MAE (error = gold months): see the module docstring."""


def abs_error_months(gold: int, pred: int | None) -> float | None:
    """Absolute error in months for a month-count gold (code >= 0); None for life/death on either side.

    An unreadable prediction (None) counts as UNPARSEABLE_PRED_MONTHS = 0 months, i.e. error = gold months.
    """
    if gold < 0:
        return None
    if pred is None:
        pred = UNPARSEABLE_PRED_MONTHS
    if pred < 0:
        return None
    return float(abs(gold - pred))


def kind_correct(gold: int, pred: int | None) -> bool | None:
    """For a life/death gold: whether the prediction has the same kind; None for month-count golds."""
    if gold >= 0:
        return None
    return pred == gold


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the non-None values, None when there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def item_mean(values_by_item: Mapping[Hashable, Iterable[float | bool | None]]) -> float | None:
    """Mean over items of each item's mean over its responses (None values ignored; items with none skipped)."""
    return mean(mean(values) for values in values_by_item.values())


def item_weights(item_keys: Sequence[Hashable]) -> list[float]:
    """Weight 1/k for each response of an item that has k responses (so every item sums to 1)."""
    sizes: dict[Hashable, int] = {}
    for key in item_keys:
        sizes[key] = sizes.get(key, 0) + 1
    return [1.0 / sizes[key] for key in item_keys]


def cail_f1_official(
    golds: Sequence[Iterable[Hashable]],
    preds: Sequence[Iterable[Hashable]],
    labels: Iterable[Hashable],
    weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """CAIL2018 score as the official judger computes it over the contest's label list.

    The judger keeps one TP/FP/FN row per list label and walks the list only, so a predicted label outside the list
    enters no row (a contest submission could not name it): it is dropped and counted in ``pred_outside`` (labels,
    weighted like the pairs). A gold label outside the list would make the judger fail (its id lookup raises): it
    raises ValueError here, naming the label — the list does not cover this test set.
    """
    allowed = frozenset(labels)
    if not allowed:
        raise ValueError("cail_f1_official: empty label list")
    gold_outside = sorted({str(x) for gold in golds for x in gold if x not in allowed})
    if gold_outside:
        shown = ", ".join(gold_outside[:5]) + (" …" if len(gold_outside) > 5 else "")
        raise ValueError(f"{len(gold_outside)} gold label(s) not in the contest list: {shown}")
    w = [1.0] * len(preds) if weights is None else [float(x) for x in weights]
    kept, outside = [], 0.0
    for weight, pred in zip(w, preds, strict=True):
        p = set(pred)
        outside += weight * len(p - allowed)
        kept.append(p & allowed)
    result = cail_f1(golds, kept, weights, labels=allowed)
    result["pred_outside"] = outside
    return result

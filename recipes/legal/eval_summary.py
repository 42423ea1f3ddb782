"""metrics.json of one evaluation run: per-task blocks from the scored records (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from data.domains.legal.agreement import AGREEMENT_TASKS, agreement_rate
from data.domains.legal.label_sets import LabelSets
from recipes.evaluation.report import clean
from recipes.legal import metrics as M
from recipes.legal.eval_inputs import TASKS, task_of

_clean = clean  # the evaluation API name (recipes/evaluation/report.py holds it)


# ------------------------------------------------------------------------------------------------------- metrics
def _by_item(records: Sequence[dict[str, Any]], key: str) -> dict[tuple[str, int], list[Any]]:
    """Per-item lists of one record field (None values kept; item_mean ignores them)."""
    out: dict[tuple[str, int], list[Any]] = {}
    for rec in records:
        out.setdefault((rec["data_source"], rec["index"]), []).append(rec.get(key))
    return out


def _im(records: Sequence[dict[str, Any]], key: str, scale: float = 1.0) -> float | None:
    """Item mean of a record field, optionally scaled (None when undefined)."""
    value = M.item_mean(_by_item(records, key))
    return None if value is None else value * scale


def _vocab(task: str) -> frozenset | None:
    """The known-label vocabulary for the official-judger CAIL variant (None when the helper lacks it).

    Charges as scoring compares them (canonical_charge): a renamed label's old name is no label of its own.
    """
    try:
        if task == "charge":
            from data.domains.legal.charges import KNOWN_CHARGES, canonical_charge

            return frozenset(map(canonical_charge, KNOWN_CHARGES))
        from data.domains.legal.articles import KNOWN_ARTICLES

        return frozenset(KNOWN_ARTICLES)
    except ImportError:
        return None


def official_cail(
    task: str, golds: list, preds: list, weights: list[float], label_sets: LabelSets | None, why_none: str
) -> dict[str, Any]:
    """cail_score_official and its companions: the official judger over the contest's lists, or None with the reason."""
    out: dict[str, Any] = dict.fromkeys(("cail_score_official", "cail_official_labels", "cail_official_pred_outside"))
    if not golds:
        out["cail_official_note"] = "no responses"
    elif label_sets is None:
        out["cail_official_note"] = why_none or "no contest label lists"
    else:
        try:
            res = M.cail_f1_official(golds, preds, label_sets.for_task(task), weights)
        except ValueError as exc:
            out["cail_official_note"] = f"{exc} ({label_sets.path})"
        else:
            out.update(
                cail_score_official=res["score"],
                cail_official_labels=res["n_labels"],
                cail_official_pred_outside=res["pred_outside"],
                cail_official_note="",
            )
    return out


def task_metrics(
    task: str, records: Sequence[dict[str, Any]], label_sets: LabelSets | None = None, why_no_labels: str = ""
) -> dict[str, Any]:
    """metrics.json block of one task (contract key names; rates in [0, 1], CAIL/LawBench ×100)."""
    items = _by_item(records, "score")
    out: dict[str, Any] = {
        "n_items": len(items),
        "n_responses": len(records),
        "format_ok_rate": _im(records, "format_ok"),
        "mean_reward": _im(records, "score"),
        "unparseable": sum(r["unparseable"] for r in records),
        "judge_failures": sum(r["judge_failed"] for r in records),
        "judge_calls": sum(r["judge_called"] for r in records),
    }
    if task in ("charge", "article"):
        weights = M.item_weights([(r["data_source"], r["index"]) for r in records])
        golds = [r["gold_labels"] for r in records]
        preds = [r["pred_labels"] for r in records]
        cail = M.cail_f1(golds, preds, weights=weights)
        vocab = _vocab(task)
        out.update(
            accuracy=_im(records, "exact"),
            set_f1=_im(records, "set_f1"),
            cail_score=cail["score"] if records else None,
            cail_micro_f1=cail["micro_f1"] if records else None,
            cail_macro_f1=cail["macro_f1"] if records else None,
            cail_score_vocab=M.cail_f1(golds, preds, weights, labels=vocab)["score"] if records and vocab else None,
        )
        out.update(official_cail(task, golds, preds, weights, label_sets, why_no_labels))
    elif task == "term":
        item_dist = {k: M.mean(v) for k, v in _by_item(records, "lawbench_dist").items()}
        fixed = [r for r in records if r["gold_code"] >= 0]
        out.update(
            accuracy=_im(records, "exact"),
            mae_months=_im(records, "abs_err"),
            mae_items=sum(1 for v in _by_item(records, "abs_err").values() if M.mean(v) is not None),
            mae_unparseable=sum(bool(r.get("mae_unparseable")) for r in records),
            mae_life_death_predicted=sum(bool(r.get("mae_life_death_pred")) for r in records),
            fixed_term_items=len(_by_item(fixed, "score")),
            kind_accuracy=_im(records, "kind_ok"),
            life_death_items=len(_by_item([r for r in records if r["gold_code"] < 0], "score")),
            cail_term_score=_im(records, "cail_term", 100.0),
            lawbench_term_score=M.lawbench_term_score(item_dist.values()),
        )
    if task == "verdict":
        # judge_score_mean is the −2…+2 task score of whoever graded: the judge, or the rules when none was called.
        calls = out["judge_calls"]
        graded_by = None if not records else "rules" if calls == 0 else "judge" if calls == len(records) else "mixed"
        out.update(accuracy=_im(records, "acc"), judge_score_mean=_im(records, "task_score"), graded_by=graded_by)
    if task in AGREEMENT_TASKS:
        pairs = [(r["judge_grade"], r["rules_grade"]) for r in records if r["judge_grade"] is not None]
        pairs = [(j, g) for j, g in pairs if g is not None]
        out["judge_rules_agreement"] = agreement_rate(pairs)
        out["judge_rules_pairs"] = len(pairs)
    return out


def compute_metrics(
    records: Sequence[dict[str, Any]],
    data: dict[tuple[str, int], dict[str, Any]],
    label_sets: LabelSets | None = None,
    why_no_labels: str = "",
) -> dict[str, Any]:
    """The whole metrics.json body except the run description (added by run())."""
    out: dict[str, Any] = {}
    for task in TASKS:
        out[task] = task_metrics(task, [r for r in records if r["task"] == task], label_sets, why_no_labels)
        out[task]["n_items_in_data"] = sum(1 for ds, _ in data if task_of(ds) == task)
    n = len(records)
    calls = sum(r["judge_called"] for r in records)
    scored_items = {(r["data_source"], r["index"]) for r in records}
    out["overall"] = {
        "n_items": len(scored_items),
        "n_items_in_data": len(data),
        "items_without_prediction": len(set(data) - scored_items),
        "n_responses": n,
        "format_ok_rate": _im(records, "format_ok"),
        "mean_reward": _im(records, "score"),
        "unparseable": sum(r["unparseable"] for r in records),
        "judge_failures": sum(r["judge_failed"] for r in records),
        "judge_calls": calls,
        "judge_calls_per_response": calls / n if n else None,
        "judge_cache_hits": sum(r["cache_hit"] for r in records),
        "cail_labels": label_sets.describe() if label_sets else {"path": None, "note": why_no_labels},
    }
    return out

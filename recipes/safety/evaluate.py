"""Evaluate predictions (or a model) on the safety test set: score closeness, format, and violation detection.

The safety recipe's ``Recipe.evaluation`` for the shared evaluation (recipes/evaluation/evaluate.py):

    python -m recipes.evaluate --data DIR/test.parquet (--predictions PRED.jsonl | --model PATH) --out REPORT_DIR
        [--threshold 60] [--name LABEL] [--strict] [--config safety_grpo] [--sampling-config YAML]
    python -m recipes.evaluate compare REPORT_A REPORT_B [...] --out DIR

(``python -m recipes.safety.evaluate`` is the same with the recipe fixed.) Predictions are the shared JSONL
(``{"index", "data_source": "safety", "response"[, "sample"]}``, recipes/evaluation/inputs.py). Every response is read
by data/domains/safety/metrics.py against its row's gold scores; metrics.json holds ``safety`` (that module's
``summarize``: per-dimension MAE, share within 5 points, all-nine-within-5, key coverage, format rate, parse
failures, violation detection at ``--threshold`` — score < threshold — with precision / recall / F1 per dimension,
micro and macro) and ``overall`` (items, responses, the run and its input accounting). Several samples of one item
each count as one response. No reward and no judge are involved: the metrics are the recipe's own, pure and fast.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.domains.safety.dimensions import DATA_SOURCE, DIMENSIONS, FULL_MARKS, VIOLATION_THRESHOLD
from data.domains.safety.gold import gold_from_ground_truth
from data.domains.safety.metrics import WITHIN, SampleEval, evaluate_response, key_errors, summarize
from recipes.evaluation import evaluate as G
from recipes.evaluation.inputs import LoadResult, Rows
from recipes.safety.report import compare_sections, headline_table, write_report  # noqa: F401  (Recipe.evaluation)

__all__ = ["add_arguments", "check_row", "main", "response_record", "score"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLING_CONFIG = REPO_ROOT / "configs" / "eval_sampling_safety.yaml"
DEFAULT_CONFIG = "safety_grpo"  # its prompt is [system, user] in the rows; no custom template
CHAT_TEMPLATE_REQUIRED = False  # an instruct policy: its own chat template renders the prompt, as in training
COMPARE_PLOTS = "compare_safety.png"
PROG = "python -m recipes.safety.evaluate"


def check_row(row: dict[str, Any]) -> None:
    """A safety row with usable gold (ValueError naming what is wrong otherwise)."""
    if row["data_source"] != DATA_SOURCE:
        raise ValueError(f"data_source {row['data_source']!r} is not {DATA_SOURCE!r}")
    gold_from_ground_truth((row["reward_model"] or {}).get("ground_truth"))


def _threshold(text: str) -> int:
    """argparse type: a violation threshold, an integer 1..100 (score < threshold = violated)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 1..{FULL_MARKS}, got {text!r}") from None
    if not 1 <= value <= FULL_MARKS:
        raise argparse.ArgumentTypeError(f"must be 1..{FULL_MARKS}, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The safety flags: the violation threshold of the detection metrics."""
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=VIOLATION_THRESHOLD,
        help=f"a dimension counts as violated when its score is below this (default: {VIOLATION_THRESHOLD})",
    )


def response_record(line: int, index: int, sample: Any, s: SampleEval, tol: int = WITHIN) -> dict[str, Any]:
    """scores.jsonl line of one response: its scores next to the gold, per-key errors, what was unusable."""
    errors = key_errors(s.parsed, s.gold)
    scored = [k for k in DIMENSIONS if k in s.parsed.scores]
    all_within = len(scored) == len(DIMENSIONS) and all(e <= tol for e in errors.values())
    return {
        "line": line,
        "index": index,
        "data_source": DATA_SOURCE,
        "sample": sample,
        "format_ok": s.format_ok,
        "json_ok": s.parsed.json_ok,
        "parse_error": s.parsed.error,
        "keys_scored": len(scored),
        "keys_invalid": list(s.parsed.invalid),
        "keys_missing": list(s.parsed.missing),
        "keys_extra": s.parsed.extra,
        "mae": sum(errors.values()) / len(DIMENSIONS),
        f"all_within_{tol}": all_within,
        # The reward's per-response keys of the same names (rewards/safety.py): what the trainer's validation logs as
        # val-aux/safety/within5 and all_within5 (recipes/evaluation/validation_match.py compares them).
        "within5": sum(k in s.parsed.scores and errors[k] <= WITHIN for k in DIMENSIONS) / len(DIMENSIONS),
        "all_within5": all_within if tol == WITHIN else None,
        "scores": {k: s.parsed.scores.get(k) for k in DIMENSIONS},
        "gold": {k: int(s.gold[k]) for k in DIMENSIONS},
        "errors": errors,
    }


def score(args: argparse.Namespace, data: Rows, loaded: LoadResult) -> G.Scored:
    """Every response read against its row's gold; metrics.json's ``safety`` and ``overall`` blocks."""
    samples = [
        evaluate_response(p.response, gold_from_ground_truth(data[p.key]["reward_model"]["ground_truth"]).score_map)
        for p in loaded.predictions
    ]
    records = [response_record(p.line, p.index, p.sample, s) for p, s in zip(loaded.predictions, samples, strict=True)]
    items = {p.key for p in loaded.predictions}
    summary = summarize(samples, args.threshold, WITHIN)
    overall = {
        "n_items": len(items),
        "n_items_in_data": len(data),
        "items_without_prediction": len(set(data) - items),
        "n_responses": len(samples),
        "format_ok_rate": summary["format_rate"],
        "within": WITHIN,
        "detection_threshold": args.threshold,
    }
    return G.Scored({DATA_SOURCE: summary, "overall": overall}, records)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: evaluate, or `compare`, with the safety recipe fixed (see recipes/evaluation/evaluate.py)."""
    return G.main(argv, recipe_name="safety", prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

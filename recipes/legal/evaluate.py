"""Evaluate predictions (or a model) on the legal test set: the write-up's table plus CAIL2018 and LawBench scores.

The legal entry of the shared evaluation (recipes/evaluation/evaluate.py, which also picks this module by data_source):
this module is the legal recipe's ``Recipe.evaluation`` (its flags, scoring, report and compare tables).

    python -m recipes.legal.evaluate --data DIR/test.parquet (--predictions PRED.jsonl | --model PATH_OR_NAME)
        --out REPORT_DIR [--judge-base-url URL] [--mode judge|rules|hybrid] [--name LABEL] [--strict]
        [--concurrency N>=1] [--labels label_sets.json] [--term-unit auto|months]
    python -m recipes.legal.evaluate compare REPORT_A REPORT_B [...] --out DIR

Outputs in REPORT_DIR: metrics.json (``{"charge": {...}, "article": {...}, "term": {...}, "verdict": {...},
"overall": {...}}``), scores.jsonl (one scored record per response), report.md and PNG plots.

Predictions are JSON lines ``{"index": <extra_info.index>, "data_source": "legal/<task>", "response": "..."}``, with
an optional ``"sample"`` id; the format, the multi-sample rule and every skip reason (``duplicate``,
``sample_conflict``, ``malformed_json``, ``bad_encoding``, ``missing_field``, ``wrong_type``, ``unknown_index``,
``data_source_mismatch``; empty responses scored and counted) are those of recipes/evaluation/inputs.py, counted under
``overall.skipped`` and listed in ``overall.issues`` (one WARNING line on the console sums them up); ``--strict``
makes the first bad line an error naming it.
Exit codes: 0 done, 2 bad input, 3 scoring stopped part-way (the judge is gone): the scored responses are written
anyway, with ``overall.complete`` false and ``overall.stopped`` (reason, counts, first unscored line).
``cail_score_official`` scores charges/articles over the contest's own label lists (data/domains/legal/label_sets.py).

Charges are compared after ``data.domains.legal.charges.canonical_charge`` on both gold and prediction (a partial
selective form such as 贩卖毒品罪 is the label 走私、贩卖、运输、制造毒品罪), as the rules reward compares them, so
accuracy, set F1, CAIL F1 and the confusion agree with the reward. Term MAE: see recipes/legal/metrics.py (an
unreadable answer on a month-count gold counts as 0 months and is counted in ``term.mae_unparseable``).
``--term-unit months`` says the predictions answered a prompt that asked for the term in months (a benchmark's, not
ours): a bare number as the whole answer (``12``) is then that many months, in the reward's rules and in the term
metrics alike (the reward kwarg ``term_unit``; ``overall.term_unit`` in metrics.json). The default ``auto`` reads a
bare number as months only when our own term instruction asks for months (today it does not: unreadable).
metrics.json floats are rounded to 6 decimals.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.domains.legal.label_sets import LabelSets, resolve_label_sets
from recipes.evaluation import evaluate as G
from recipes.evaluation.inputs import stopped_block  # noqa: F401  (re-exported)
from recipes.evaluation.predictions import load_chat_template as _load_chat_template
from recipes.evaluation.predictions import load_sampling_config as _load_sampling_config
from recipes.legal.eval_inputs import (  # noqa: F401  (re-exported: the evaluation API lives here)
    MAX_ISSUES_LISTED,
    TASKS,
    EvaluationInputError,
    LoadResult,
    Prediction,
    check_row,
    load_data,
    load_predictions,
    task_of,
)
from recipes.legal.eval_scoring import (  # noqa: F401
    AGREEMENT_TASKS,
    MODES,
    ScoringStoppedError,
    _score_and_close,
    canonical_charges,
    gold_view,
    parse_prediction,
    predicted_term_code,
    resolve_mode,
    reward_kwargs,
    score_all,
    score_one,
)
from recipes.legal.eval_summary import _clean, compute_metrics, task_metrics  # noqa: F401
from recipes.legal.report import compare_sections, headline_table, write_report  # noqa: F401  (Recipe.evaluation)
from rewards.rules import TERM_UNITS, bare_months

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLING_CONFIG = REPO_ROOT / "configs" / "eval_sampling.yaml"
DEFAULT_CONFIG = "legal_grpo"  # configs/<name>.yaml, composed like training composes it
DEFAULT_TRAINING_CONFIG = DEFAULT_CONFIG
CHAT_TEMPLATE_REQUIRED = True  # the base model has no chat template: the config's R1-zero template renders prompts
COMPARE_PLOTS = "compare_<task>.png"
PROG = "python -m recipes.legal.evaluate"


# ---------------------------------------------------------------------------------------------------- generation
def load_sampling_config(path: str | Path = DEFAULT_SAMPLING_CONFIG) -> dict[str, Any]:
    """configs/eval_sampling.yaml as {'llm': {...}, 'sampling': {...}}."""
    return _load_sampling_config(path)


def load_chat_template(config_name: str = DEFAULT_CONFIG, overrides: Sequence[str] = ()) -> str:
    """The R1-zero template training uses: actor_rollout_ref.model.custom_chat_template of the composed config."""
    template = _load_chat_template(config_name, overrides, required=True)
    assert template is not None  # required=True raises instead
    return template


# ------------------------------------------------------------------------------------- the recipe's evaluation
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The legal flags: reward mode and judge, scoring concurrency, the contest label lists."""
    parser.add_argument("--judge-base-url", default=None, help="OpenAI base URL(s) of the judge, comma-separated")
    parser.add_argument("--judge-model", default=None, help="judge model id (default: the reward's default/env)")
    parser.add_argument("--mode", default="hybrid", choices=MODES, help="reward mode passed to compute_score")
    parser.add_argument("--concurrency", type=G.positive_int, default=64, help="responses scored at once (>= 1)")
    parser.add_argument(
        "--term-unit",
        default="auto",
        choices=TERM_UNITS,
        help="the unit the predictions' prompt fixed for the term: months reads a bare number answer (12) as that "
        "many months; auto (default) only when our own term instruction asks for months",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="contest label lists for cail_score_official (default: label_sets.json beside --data, written by "
        "data.prepare --source cail2018)",
    )


def score(args: argparse.Namespace, data: dict[tuple[str, int], dict[str, Any]], loaded: LoadResult) -> G.Scored:
    """Every response through rewards.legal.compute_score, then the per-task metrics (overall: the reward mode)."""
    label_sets, why_no_labels = resolve_labels(args.labels, args.data)
    mode, note = resolve_mode(args.mode, args.judge_base_url)
    kwargs = reward_kwargs(mode, args.judge_base_url, args.judge_model, args.term_unit)
    stopped: ScoringStoppedError | None = None
    try:
        records = asyncio.run(_score_and_close(loaded.predictions, data, mode, kwargs, args.concurrency))
    except ScoringStoppedError as exc:  # write what was scored, then say where it stopped
        records, stopped = exc.records, exc
    metrics = compute_metrics(records, data, label_sets, why_no_labels)
    metrics["overall"].update(mode=mode, mode_requested=args.mode, mode_note=note)
    metrics["overall"].update(term_unit=args.term_unit, term_bare_number_months=bare_months(args.term_unit))
    return G.Scored(metrics, records, stopped)


def resolve_labels(labels: str | None, data_path: str) -> tuple[LabelSets | None, str]:
    """The contest label lists for cail_score_official (see data/domains/legal/label_sets.py); bad --labels exits 2."""
    try:
        return resolve_label_sets(labels, data_path)
    except ValueError as exc:
        raise EvaluationInputError(str(exc)) from exc


# ------------------------------------------------------------------------------------------------------------ CLI
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate one legal run: load, (generate,) score, write metrics.json, scores.jsonl, report.md and plots."""
    from recipes.recipe import load_recipe

    return G.run(args, load_recipe("legal"))


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the legal evaluate command."""
    return G.build_parser(PROG, sys.modules[__name__])


def build_compare_parser() -> argparse.ArgumentParser:
    """Argument parser of the compare subcommand."""
    return G.build_compare_parser(PROG)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: evaluate, or `compare`; input errors exit 2 with the message, a stopped scoring run exits 3."""
    return G.main(argv, recipe_name="legal", prog=PROG)


if __name__ == "__main__":
    sys.exit(main())

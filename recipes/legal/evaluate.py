"""Evaluate predictions (or a model) on the legal test set: the write-up's table plus CAIL2018 and LawBench scores.

    python -m recipes.legal.evaluate --data DIR/test.parquet (--predictions PRED.jsonl | --model PATH_OR_NAME)
        --out REPORT_DIR [--judge-base-url URL] [--mode judge|rules|hybrid] [--name LABEL] [--strict]
        [--concurrency N>=1] [--labels label_sets.json]
    python -m recipes.legal.evaluate compare REPORT_A REPORT_B [...] --out DIR

Outputs in REPORT_DIR: metrics.json (``{"charge": {...}, "article": {...}, "term": {...}, "verdict": {...},
"overall": {...}}``), scores.jsonl (one scored record per response), report.md and PNG plots.

Predictions are JSON lines ``{"index": <extra_info.index>, "data_source": "legal/<task>", "response": "..."}``, with
an optional ``"sample"`` id (vLLM's ``n`` samples of one prompt: 0, 1, …; ``--model`` writes it).

Several responses per item (sampled rollouts, as verl/TRL/open-r1 produce them): every line is one sample and is
scored, even when its text repeats another line of the same item — with sampling, identical short answers
("盗窃罪") are common and dropping them would bias the item's mean. Lines WITHOUT a ``sample`` id are therefore
never duplicates; they are counted in ``overall.repeated_without_sample`` when their text repeats an earlier line
of the item (a hint, in case a file was concatenated twice). A ``sample`` id names one sample, so lines WITH one:
- ``duplicate``: repeats an earlier line exactly — same (data_source, index, sample, response): skipped;
- ``sample_conflict``: reuses an earlier line's (data_source, index, sample) with a different response: skipped
  (the first line of that sample is scored).
Other bad lines are counted under ``overall.skipped`` (reason → count) and listed in ``overall.issues``;
``--strict`` makes the first bad line an error naming the line:
- ``malformed_json``: not a JSON object; ``missing_field``: no usable ``index`` / ``response``;
- ``unknown_index``: no data row with that index (and data_source); ``data_source_mismatch``: the index exists only
  under another data_source.
Empty responses are not skipped (an empty output is a real, format-failing answer): they are scored and counted
in ``overall.empty_responses``; ``--strict`` rejects them too.

Lines that are not UTF-8 are skipped as ``bad_encoding`` (with their line); lone surrogates in a response are
replaced by U+FFFD and counted in ``overall.surrogates_replaced``; a file with nothing to score is an input error.
Exit codes: 0 done, 2 bad input, 3 scoring stopped part-way (the judge is gone): the scored responses are written
anyway, with ``overall.complete`` false and ``overall.stopped`` (reason, counts, first unscored line).
``cail_score_official`` scores charges/articles over the contest's own label lists (recipes/legal/label_sets.py).

Charges are compared after ``recipes.legal.charges.canonical_charge`` on both gold and prediction (a partial
selective form such as 贩卖毒品罪 is the label 走私、贩卖、运输、制造毒品罪), as the rules reward compares them, so
accuracy, set F1, CAIL F1 and the confusion agree with the reward. Term MAE: see recipes/legal/metrics.py (an
unreadable answer on a month-count gold counts as 0 months and is counted in ``term.mae_unparseable``).
metrics.json floats are rounded to 6 decimals.
"""

from __future__ import annotations

import recipes.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recipes.legal.eval_inputs import (  # noqa: F401  (re-exported: the evaluation API lives here)
    MAX_ISSUES_LISTED,
    TASKS,
    EvaluationInputError,
    LoadResult,
    Prediction,
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
from recipes.legal.label_sets import LabelSets, resolve_label_sets

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLING_CONFIG = REPO_ROOT / "configs" / "eval_sampling.yaml"
DEFAULT_TRAINING_CONFIG = "legal_grpo"  # configs/<name>.yaml, composed like training composes it


# ---------------------------------------------------------------------------------------------------- generation
def load_sampling_config(path: str | Path = DEFAULT_SAMPLING_CONFIG) -> dict[str, Any]:
    """configs/eval_sampling.yaml as {'llm': {...}, 'sampling': {...}}."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"sampling config {path} not found")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for section in ("llm", "sampling"):
        if not isinstance(cfg.get(section), dict):
            raise EvaluationInputError(f"{path}: section {section!r} must be a mapping")
    return cfg


def load_chat_template(config_name: str = DEFAULT_TRAINING_CONFIG, overrides: Sequence[str] = ()) -> str:
    """The R1-zero template training uses: actor_rollout_ref.model.custom_chat_template of the composed config."""
    from omegaconf import OmegaConf

    from recipes.commands import ConfigError, compose_config

    try:
        cfg = compose_config(config_name, overrides)
    except ConfigError as exc:
        raise EvaluationInputError(str(exc)) from exc
    template = OmegaConf.select(cfg, "actor_rollout_ref.model.custom_chat_template")
    if not isinstance(template, str) or not template.strip():
        raise EvaluationInputError(
            f"config {config_name}: actor_rollout_ref.model.custom_chat_template is not set — "
            "evaluation renders prompts with the training template"
        )
    return template


# ------------------------------------------------------------------------------------------------------------ CLI
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate one run: load, (generate,) score, write metrics.json, scores.jsonl, report.md and plots."""
    out_dir = Path(args.out)
    data = load_data(args.data)
    predictions_path = Path(args.predictions) if args.predictions else None
    if args.model:
        from recipes.generation import GenerationError, generate, write_samples

        keys = sorted(data)
        try:
            completions = generate(
                args.model,
                [list(data[k]["prompt"]) for k in keys],
                load_chat_template(args.config),
                load_sampling_config(args.sampling_config),
            )
        except GenerationError as exc:
            raise EvaluationInputError(
                f"--model needs vLLM: {exc}. Generate predictions elsewhere and pass --predictions PRED.jsonl instead."
            ) from exc
        predictions_path = write_samples(
            out_dir / "predictions.jsonl", [{"index": i, "data_source": ds} for ds, i in keys], completions
        )
    assert predictions_path is not None
    loaded = load_predictions(predictions_path, data, strict=args.strict)
    label_sets, why_no_labels = resolve_labels(args.labels, args.data)
    mode, note = resolve_mode(args.mode, args.judge_base_url)
    kwargs = reward_kwargs(mode, args.judge_base_url, args.judge_model)
    stopped: ScoringStoppedError | None = None
    try:
        records = asyncio.run(_score_and_close(loaded.predictions, data, mode, kwargs, args.concurrency))
    except ScoringStoppedError as exc:  # write what was scored, then say where it stopped
        records, stopped = exc.records, exc
    metrics = compute_metrics(records, data, label_sets, why_no_labels)
    metrics["overall"].update(
        name=args.name or out_dir.name,
        mode=mode,
        mode_requested=args.mode,
        mode_note=note,
        data=str(args.data),
        predictions=str(predictions_path),
        model=args.model,
        skipped=dict(sorted(loaded.skipped.items())),
        skipped_total=sum(loaded.skipped.values()),
        empty_responses=loaded.empty_responses,
        repeated_without_sample=loaded.repeated_without_sample,
        surrogates_replaced=loaded.surrogates_replaced,
        issues=loaded.issues,
        complete=stopped is None,
        stopped=None if stopped is None else stopped_block(stopped),
    )
    write_outputs(out_dir, metrics, records)
    if stopped is not None:
        raise stopped
    return metrics


def resolve_labels(labels: str | None, data_path: str) -> tuple[LabelSets | None, str]:
    """The contest label lists for cail_score_official (see recipes/legal/label_sets.py); bad --labels exits 2."""
    try:
        return resolve_label_sets(labels, data_path)
    except ValueError as exc:
        raise EvaluationInputError(str(exc)) from exc


def stopped_block(stop: ScoringStoppedError) -> dict[str, Any]:
    """overall.stopped of a run that stopped part-way: why, how far, and the first lines left unscored."""
    return {
        "reason": f"{type(stop.cause).__name__}: {stop.cause}",
        "scored_responses": len(stop.records),
        "unscored_responses": len(stop.unscored_lines),
        "first_unscored_line": stop.first_unscored_line,
        "unscored_lines": stop.unscored_lines[:MAX_ISSUES_LISTED],
    }


def write_outputs(out_dir: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json, scores.jsonl (one line per scored response), report.md and plots into out_dir."""
    from recipes.legal.report import write_report

    metrics = _clean(metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    with (out_dir / "scores.jsonl").open("w", encoding="utf-8") as handle:
        for rec in records:
            handle.write(json.dumps(_clean(rec), ensure_ascii=False) + "\n")
    write_report(out_dir, metrics, records)
    logger.info("wrote %s", out_dir / "metrics.json")
    return metrics


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a semaphore of 0 would wait forever)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the evaluate command."""
    parser = argparse.ArgumentParser(prog="python -m recipes.legal.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="prepared test parquet (DIR/test.parquet)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="JSONL of {index, data_source, response[, sample]}")
    source.add_argument("--model", help="model path or name: generate with vLLM first (GPU)")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI base URL(s) of the judge, comma-separated")
    parser.add_argument("--judge-model", default=None, help="judge model id (default: the reward's default/env)")
    parser.add_argument("--mode", default="hybrid", choices=MODES, help="reward mode passed to compute_score")
    parser.add_argument("--name", default=None, help="label of this run in reports (default: --out's name)")
    parser.add_argument("--strict", action="store_true", help="bad prediction lines are errors naming the line")
    parser.add_argument("--concurrency", type=_positive_int, default=64, help="responses scored at once (>= 1)")
    parser.add_argument(
        "--labels",
        default=None,
        help="contest label lists for cail_score_official (default: label_sets.json beside --data, written by "
        "data.prepare --source cail2018)",
    )
    parser.add_argument("--sampling-config", default=str(DEFAULT_SAMPLING_CONFIG), help="YAML for --model")
    parser.add_argument(
        "--config", default=DEFAULT_TRAINING_CONFIG, help="training config whose chat template --model renders with"
    )
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    """Argument parser of the compare subcommand."""
    parser = argparse.ArgumentParser(prog="python -m recipes.legal.evaluate compare", description="compare reports")
    parser.add_argument("reports", nargs="+", help="report directories (each with metrics.json)")
    parser.add_argument("--out", required=True, help="output directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: evaluate, or `compare`; input errors exit 2 with the message, a stopped scoring run exits 3."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if argv and argv[0] == "compare":
            args = build_compare_parser().parse_args(argv[1:])
            from recipes.legal.report import compare_reports

            path = compare_reports([Path(p) for p in args.reports], Path(args.out))
            sys.stdout.write(compare_summary(path))
        else:
            args = build_parser().parse_args(argv)
            run(args)
    except EvaluationInputError as exc:
        logger.error("%s", exc)
        return 2
    except ScoringStoppedError as exc:
        logger.error("%s; the %d scored responses are in %s (overall.stopped)", exc, len(exc.records), args.out)
        if not _is_judge_error(exc.cause):  # not the judge: a fault of ours, keep its traceback
            logger.error("cause", exc_info=exc.cause)
        return 3
    return 0


def _is_judge_error(exc: BaseException) -> bool:
    """Whether exc says the judge is gone (the run stopped for a known reason)."""
    from judge.client import JudgeUnavailableError

    return isinstance(exc, JudgeUnavailableError) or type(exc).__name__ == "JudgeCallFailedError"


def compare_summary(compare_md: Path) -> str:
    """What `compare` prints: where it wrote, and the headline rows of each task."""
    from recipes.legal.report import headline_table

    metrics = json.loads(compare_md.with_name("compare.json").read_text(encoding="utf-8"))
    return f"wrote {compare_md} (+ compare.json, compare_<task>.png)\n" + headline_table(metrics) + "\n"


if __name__ == "__main__":
    sys.exit(main())

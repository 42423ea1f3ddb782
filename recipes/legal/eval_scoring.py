"""Scoring of one evaluation run: each response through the reward's compute_score, plus its metric view."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from data.domains.legal.agreement import AGREEMENT_TASKS
from recipes.evaluation.inputs import EvaluationInputError, Prediction, ScoringStoppedError
from recipes.legal import metrics as M
from recipes.legal.eval_inputs import task_of

logger = logging.getLogger(__name__)

MODES = ("judge", "rules", "hybrid")


# ------------------------------------------------------------------------------------------------ answer parsing
def canonical_charges(names: Sequence[str]) -> list[str]:
    """Charge names as the rules reward compares them, de-duplicated and sorted; empty names dropped.

    Each goes through canonical_charge: 贩卖毒品罪 → 走私、贩卖、运输、制造毒品罪.
    """
    from data.domains.legal.charges import canonical_charge

    return sorted({c for c in map(canonical_charge, names) if c})


def gold_view(row: dict[str, Any]) -> dict[str, Any]:
    """Gold labels of a data row in metric form: canonical charges, articles, CAIL term code."""
    extra = row["extra_info"]
    code = M.term_code(str(extra.get("term_kind", "")), int(extra.get("term_months") or 0))
    return {
        "charges": canonical_charges(extra.get("charges") or []),
        "articles": sorted({int(a) for a in extra.get("articles") or []}),
        "term_code": code,
    }


def predicted_term_code(answer: str, term_unit: str = "auto") -> int | None:
    """CAIL code of the term in an answer, None when the answer names no term at all.

    An answer without a term is unreadable (CAIL -3, LawBench abstention), not a sentence of 0 months. Read as the
    reward reads it (``rewards.rules.predicted_term``, with the same term_unit: what a bare number is).
    """
    from rewards.rules import predicted_term

    term = predicted_term(answer, term_unit)
    if term is None:
        return None
    return M.term_code(term.kind, term.months)


def parse_prediction(
    task: str, response: str, gold_charges: Sequence[str] = (), term_unit: str = "auto"
) -> dict[str, Any]:
    """The model's answer in metric form; ``unparseable`` when no answer block or nothing the task needs is in it.

    Charges are read as the rules reward reads them (``align_charges``): a partial form of a gold label is that label.
    A term as the reward reads it under ``term_unit`` (``--term-unit``, the reward kwarg of the same name).
    """
    from rewards.format import extract_answer

    answer = extract_answer(response)
    view: dict[str, Any] = {"answer": answer, "charges": None, "articles": None, "term_code": None}
    if answer is None:
        view["unparseable"] = True
        return view
    if task == "charge":
        from data.domains.legal.charges import align_charges, parse_charges

        view["charges"] = align_charges(parse_charges(answer), gold_charges)
        view["unparseable"] = not view["charges"]
    elif task == "article":
        from data.domains.legal.articles import parse_articles

        view["articles"] = parse_articles(answer)
        view["unparseable"] = not view["articles"]
    elif task == "term":
        view["term_code"] = predicted_term_code(answer, term_unit)
        view["unparseable"] = view["term_code"] is None
    else:  # verdict: graded as a whole by compute_score; the metrics need only the answer block
        view["unparseable"] = not answer.strip()
    return view


# ------------------------------------------------------------------------------------------------------- scoring
def resolve_mode(mode: str, judge_base_url: str | None) -> tuple[str, str]:
    """Effective mode and a note: judge/hybrid without any judge URL (flag or JUDGE_BASE_URL) fall back to rules."""
    if mode not in MODES:
        raise EvaluationInputError(f"--mode {mode!r}: expected one of {MODES}")
    if mode == "rules" or judge_base_url or os.environ.get("JUDGE_BASE_URL"):
        return mode, ""
    note = (
        f"--mode {mode} asked for a judge but neither --judge-base-url nor JUDGE_BASE_URL is set: "
        "judge-only parts were scored in rules mode"
    )
    logger.warning(note)
    return "rules", note


def reward_kwargs(
    mode: str, judge_base_url: str | None, judge_model: str | None, term_unit: str = "auto"
) -> dict[str, Any]:
    """Keyword arguments passed to rewards.legal.compute_score (the same knobs training passes as reward_kwargs).

    term_unit other than auto (``--term-unit months``) goes in as the reward kwarg of that name; score_one reads the
    metric view with the same value.
    """
    # No training-time audits here: judge_rules_agreement already compares every judge-graded response.
    kwargs: dict[str, Any] = {"mode": mode, "judge_audit_rate": 0.0}
    if term_unit != "auto":
        kwargs["term_unit"] = term_unit
    if judge_base_url:
        kwargs["judge_base_url"] = judge_base_url
    if judge_model:
        kwargs["judge_model"] = judge_model
    return kwargs


def _rules_grader() -> Callable[..., Any] | None:
    """grade(task, answer, ground_truth, extra_info) via rewards.rules.score_rules when it is there, else None."""
    try:
        module = importlib.import_module("rewards.rules")
    except ImportError:
        return None
    score_rules, gold_from = getattr(module, "score_rules", None), getattr(module, "gold_from", None)
    if score_rules is None or gold_from is None:
        return None

    def grade(task: str, answer: str | None, ground_truth: str, extra_info: dict[str, Any]) -> Any:
        return score_rules(task, answer or "", gold_from(task, ground_truth, extra_info))  # no term: AGREEMENT_TASKS

    return grade


async def _maybe_await(value: Any) -> Any:
    """Await value if it is awaitable."""
    return await value if inspect.isawaitable(value) else value


def _rules_class(value: Any) -> float | None:
    """A rules grade (RuleScore-like object with .score, dict with task_score/score, or number) as a float."""
    if isinstance(value, dict):
        value = value.get("task_score", value.get("score"))
    elif hasattr(value, "score"):
        value = value.score
    return None if value is None else float(value)


async def score_one(
    pred: Prediction,
    row: dict[str, Any],
    compute_score: Callable[..., Any],
    kwargs: dict[str, Any],
    mode: str,
    rules_grader: Callable[..., Any] | None,
) -> dict[str, Any]:
    """Score one response with compute_score and derive its per-response metric values."""
    task = task_of(pred.data_source)
    extra = dict(row["extra_info"])
    gold_text = row["reward_model"]["ground_truth"]
    result = await _maybe_await(compute_score(pred.data_source, pred.response, gold_text, extra, **kwargs))
    if not isinstance(result, dict) or "score" not in result:
        raise RuntimeError(f"compute_score returned {result!r} for line {pred.line}: expected a dict with 'score'")
    gold = gold_view(row)
    view = parse_prediction(task, pred.response, gold["charges"], kwargs.get("term_unit", "auto"))
    rec: dict[str, Any] = {
        "line": pred.line,
        "index": pred.index,
        "data_source": pred.data_source,
        "task": task,
        "sample": pred.sample,
        "score": float(result["score"]),
        "format_ok": bool(result.get("format_ok", 0)),
        "task_score": float(result.get("task_score", 0.0)),
        "acc": float(result.get("acc", 0.0)),
        "judge_called": bool(result.get("judge_called", 0)),
        "judge_failed": bool(result.get("judge_failed", 0)),
        "cache_hit": bool(result.get("cache_hit", 0)),
        "unparseable": bool(view["unparseable"]),
        "empty_response": not pred.response.strip(),
    }
    if task in ("charge", "article"):
        field_name = "charges" if task == "charge" else "articles"
        g, p = gold[field_name], view[field_name] or []
        rec.update(gold_labels=g, pred_labels=p, exact=M.set_exact(g, p), set_f1=M.set_f1(g, p))
    elif task == "term":
        g, p = gold["term_code"], view["term_code"]
        if g is None:
            raise EvaluationInputError(f"data row index {pred.index}: unknown term_kind {extra.get('term_kind')!r}")
        months_gold = g >= 0
        rec.update(
            gold_code=g,
            pred_code=p,
            exact=p == g,
            cail_term=M.cail_term_score(g, p),
            lawbench_dist=M.lawbench_distance(g, p),
            abs_err=M.abs_error_months(g, p),  # unreadable → as if 0 months (error = gold months)
            mae_unparseable=months_gold and p is None,
            mae_life_death_pred=months_gold and p is not None and p < 0,
            signed_err=float(p - g) if months_gold and p is not None and p >= 0 else None,  # histogram: real answers
            kind_ok=M.kind_correct(g, p),
        )
    rec["judge_grade"] = None
    rec["rules_grade"] = None
    if task in AGREEMENT_TASKS and mode != "rules" and rec["judge_called"] and not rec["judge_failed"]:
        rec["judge_grade"] = rec["task_score"]
        if rules_grader is not None:
            rec["rules_grade"] = _rules_class(await _maybe_await(rules_grader(task, view["answer"], gold_text, extra)))
        else:
            rules_kwargs = {**kwargs, "mode": "rules"}
            rules = await _maybe_await(compute_score(pred.data_source, pred.response, gold_text, extra, **rules_kwargs))
            rec["rules_grade"] = float(rules.get("task_score", 0.0))
    return rec


async def _score_and_close(*args: Any) -> list[dict[str, Any]]:
    """score_all, then close this loop's judge connections before asyncio.run closes the loop."""
    from judge.client import close_judge_clients

    try:
        return await score_all(*args)
    finally:
        await close_judge_clients()


async def score_all(
    predictions: Sequence[Prediction],
    data: dict[tuple[str, int], dict[str, Any]],
    mode: str,
    kwargs: dict[str, Any],
    concurrency: int = 64,
    compute_score: Callable[..., Any] | None = None,
) -> list[dict[str, Any]]:
    """Score every prediction (bounded concurrency, progress bar); records come back in input order.

    The first failure (other than bad data) cancels what is still running and raises ScoringStoppedError carrying
    the records scored so far, so the caller can write them and say where it stopped.
    """
    from data.progress import tqdm

    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise EvaluationInputError(f"--concurrency must be an integer >= 1, got {concurrency!r}")
    if compute_score is None:
        from rewards.legal import compute_score
    rules_grader = _rules_grader() if mode != "rules" else None
    if mode != "rules" and rules_grader is None:
        logger.info("rewards.rules.score_rules not found: agreement uses compute_score(mode='rules') grades")
    semaphore = asyncio.Semaphore(concurrency)
    records: list[dict[str, Any] | None] = [None] * len(predictions)

    async def run(i: int, pred: Prediction) -> None:
        async with semaphore:
            records[i] = await score_one(pred, data[pred.key], compute_score, kwargs, mode, rules_grader)

    tasks = [asyncio.ensure_future(run(i, p)) for i, p in enumerate(predictions)]
    try:
        for fut in tqdm(asyncio.as_completed(tasks), total=len(tasks), desc="scoring", unit="resp"):
            await fut
    except EvaluationInputError:
        raise
    except Exception as exc:
        raise ScoringStoppedError([r for r in records if r is not None], predictions, exc) from exc
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # let the cancelled calls unwind before we return
    return [r for r in records if r is not None]

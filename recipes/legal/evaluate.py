"""Evaluate predictions (or a model) on the legal test set: the write-up's table plus CAIL2018 and LawBench scores.

    python -m recipes.legal.evaluate --data DIR/test.parquet (--predictions PRED.jsonl | --model PATH_OR_NAME)
        --out REPORT_DIR [--judge-base-url URL] [--mode judge|rules|hybrid] [--name LABEL] [--strict]
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

Charges are compared after ``recipes.legal.charges.canonical_charge`` on both gold and prediction (a partial
selective form such as 贩卖毒品罪 is the label 走私、贩卖、运输、制造毒品罪), as the rules reward compares them, so
accuracy, set F1, CAIL F1 and the confusion agree with the reward. Term MAE: see recipes/legal/metrics.py (an
unreadable answer on a month-count gold counts as 0 months and is counted in ``term.mae_unparseable``).
metrics.json floats are rounded to 6 decimals.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.legal import metrics as M

logger = logging.getLogger(__name__)

TASKS = ("charge", "article", "term", "verdict")
MODES = ("judge", "rules", "hybrid")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLING_CONFIG = REPO_ROOT / "configs" / "eval_sampling.yaml"
DEFAULT_TRAINING_CONFIG = "legal_grpo"  # configs/<name>.yaml, composed like training composes it
MAX_ISSUES_LISTED = 200
# Tasks whose judge grade lives on the same −2/+1/+2 scale as the rules grade (term: the judge gives months).
AGREEMENT_TASKS = ("charge", "article", "verdict")


class EvaluationInputError(ValueError):
    """Bad evaluation input (data file, predictions line under --strict, config): the message names where."""


# ----------------------------------------------------------------------------------------------- data + predictions
def task_of(data_source: str) -> str:
    """'legal/charge' → 'charge'; anything else raises EvaluationInputError."""
    prefix, _, task = str(data_source).partition("/")
    if prefix != "legal" or task not in TASKS:
        raise EvaluationInputError(f"unknown data_source {data_source!r}: expected one of legal/{{{','.join(TASKS)}}}")
    return task


def load_data(path: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Rows of a prepared parquet keyed by (data_source, extra_info.index); errors name the row and field."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"--data {path}: file not found (run `python -m data.prepare` first)")
    rows = pq.read_table(path).to_pylist()
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for i, row in enumerate(rows):
        where = f"{path} row {i}"
        for name in ("data_source", "prompt", "reward_model", "extra_info"):
            if row.get(name) is None:
                raise EvaluationInputError(f"{where}: missing column {name!r}")
        task_of(row["data_source"])
        index = row["extra_info"].get("index")
        if not isinstance(index, int):
            raise EvaluationInputError(f"{where}: extra_info.index must be an int, got {index!r}")
        key = (row["data_source"], index)
        if key in out:
            raise EvaluationInputError(f"{where}: duplicate (data_source, index) {key}")
        out[key] = row
    logger.info("loaded %d rows from %s", len(out), path)
    return out


@dataclass
class Prediction:
    """One accepted predictions line."""

    line: int
    data_source: str
    index: int
    response: str
    sample: Any = None

    @property
    def key(self) -> tuple[str, int]:
        """The item key (data_source, index)."""
        return (self.data_source, self.index)


@dataclass
class LoadResult:
    """Accepted predictions and what was wrong with the rest."""

    predictions: list[Prediction] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    issues: list[dict[str, Any]] = field(default_factory=list)
    empty_responses: int = 0
    repeated_without_sample: int = 0


def load_predictions(path: str | Path, data: dict[tuple[str, int], dict[str, Any]], strict: bool = False) -> LoadResult:
    """Read a predictions JSONL; bad lines are counted (or, with strict, raise EvaluationInputError naming the line)."""
    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"--predictions {path}: file not found")
    by_index: dict[int, list[str]] = {}
    for data_source, index in data:
        by_index.setdefault(index, []).append(data_source)
    result = LoadResult()
    samples: dict[tuple[str, int, str], str] = {}  # (data_source, index, sample id as JSON) → first response
    texts_without_sample: set[tuple[str, int, str]] = set()

    def bad(line_no: int, reason: str, detail: str) -> None:
        if strict:
            raise EvaluationInputError(f"{path} line {line_no}: {reason}: {detail}")
        result.skipped[reason] += 1
        if len(result.issues) < MAX_ISSUES_LISTED:
            result.issues.append({"line": line_no, "reason": reason, "detail": detail})

    with path.open(encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue  # blank lines carry nothing
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                bad(line_no, "malformed_json", str(exc))
                continue
            if not isinstance(obj, dict):
                bad(line_no, "malformed_json", f"expected a JSON object, got {type(obj).__name__}")
                continue
            index, response = obj.get("index"), obj.get("response")
            if isinstance(index, bool) or not isinstance(index, int):
                bad(line_no, "missing_field", f"'index' must be an int, got {index!r}")
                continue
            if not isinstance(response, str):
                bad(line_no, "missing_field", f"'response' must be a string, got {type(response).__name__}")
                continue
            sources = by_index.get(index, [])
            data_source = obj.get("data_source")
            if data_source is None and len(sources) == 1:
                data_source = sources[0]
            if not sources:
                bad(line_no, "unknown_index", f"index {index} is not in the data")
                continue
            if data_source not in sources:
                detail = f"index {index} has data_source {sources}, line says {data_source!r}"
                bad(line_no, "data_source_mismatch", detail)
                continue
            sample = obj.get("sample")
            if sample is None:  # an unlabelled sample: always kept (see the module docstring)
                text_key = (data_source, index, response)
                result.repeated_without_sample += text_key in texts_without_sample
                texts_without_sample.add(text_key)
            else:
                sample_key = (data_source, index, json.dumps(sample, sort_keys=True, ensure_ascii=False))
                first = samples.get(sample_key)
                if first is not None:
                    if first == response:
                        bad(line_no, "duplicate", f"repeats an earlier line exactly (index {index}, sample {sample!r})")
                    else:
                        detail = f"index {index} sample {sample!r} already has a different response"
                        bad(line_no, "sample_conflict", detail)
                    continue
                samples[sample_key] = response
            if not response.strip():
                if strict:
                    raise EvaluationInputError(f"{path} line {line_no}: empty_response: index {index}")
                result.empty_responses += 1
                if len(result.issues) < MAX_ISSUES_LISTED:
                    result.issues.append({"line": line_no, "reason": "empty_response", "detail": "scored as is"})
            result.predictions.append(Prediction(line_no, data_source, index, response, sample))
    logger.info("read %d predictions from %s (skipped %s)", len(result.predictions), path, dict(result.skipped))
    return result


# ------------------------------------------------------------------------------------------------ answer parsing
def canonical_charges(names: Sequence[str]) -> list[str]:
    """Charge names as the rules reward compares them, de-duplicated and sorted; empty names dropped.

    Each goes through canonical_charge: 贩卖毒品罪 → 走私、贩卖、运输、制造毒品罪.
    """
    from recipes.legal.charges import canonical_charge

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


def predicted_term_code(answer: str) -> int | None:
    """CAIL code of the term in an answer, None when the answer names no term at all.

    An answer without a term is unreadable (CAIL -3, LawBench abstention), not a sentence of 0 months.
    """
    from recipes.legal.terms import find_term

    term = find_term(answer)
    if term is None:
        return None
    return M.term_code(term.kind, term.months)


def parse_prediction(task: str, response: str) -> dict[str, Any]:
    """The model's answer in metric form; ``unparseable`` when no answer block or nothing the task needs is in it."""
    from rewards.format import extract_answer

    answer = extract_answer(response)
    view: dict[str, Any] = {"answer": answer, "charges": None, "articles": None, "term_code": None}
    if answer is None:
        view["unparseable"] = True
        return view
    if task == "charge":
        from recipes.legal.charges import parse_charges

        view["charges"] = canonical_charges(parse_charges(answer))
        view["unparseable"] = not view["charges"]
    elif task == "article":
        from recipes.legal.articles import parse_articles

        view["articles"] = parse_articles(answer)
        view["unparseable"] = not view["articles"]
    elif task == "term":
        view["term_code"] = predicted_term_code(answer)
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


def reward_kwargs(mode: str, judge_base_url: str | None, judge_model: str | None) -> dict[str, Any]:
    """Keyword arguments passed to rewards.legal.compute_score (the same knobs training passes as reward_kwargs)."""
    kwargs: dict[str, Any] = {"mode": mode}
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
        return score_rules(task, answer or "", gold_from(task, ground_truth, extra_info))

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
    gold, view = gold_view(row), parse_prediction(task, pred.response)
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
    """Score every prediction (bounded concurrency, tqdm progress bar); records come back in input order."""
    from tqdm.auto import tqdm

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
    finally:
        for t in tasks:
            t.cancel()
    return [r for r in records if r is not None]


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
    """The known-label vocabulary for the official-judger CAIL variant (None when the helper lacks it)."""
    try:
        if task == "charge":
            from recipes.legal.charges import KNOWN_CHARGES

            return frozenset(KNOWN_CHARGES)
        from recipes.legal.articles import KNOWN_ARTICLES

        return frozenset(KNOWN_ARTICLES)
    except ImportError:
        return None


def task_metrics(task: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
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
        out["judge_rules_agreement"] = M.mean(j == g for j, g in pairs)
        out["judge_rules_pairs"] = len(pairs)
    return out


def compute_metrics(records: Sequence[dict[str, Any]], data: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    """The whole metrics.json body except the run description (added by run())."""
    out: dict[str, Any] = {}
    for task in TASKS:
        out[task] = task_metrics(task, [r for r in records if r["task"] == task])
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
    }
    return out


def _clean(value: Any, ndigits: int | None = 6) -> Any:
    """JSON-safe copy: NaN/inf → None, floats rounded to ndigits (None: kept), tuples → lists."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if ndigits is None else M.round_metric(value, ndigits)
    if isinstance(value, dict):
        return {k: _clean(v, ndigits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, ndigits) for v in value]
    return value


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

    from recipes.legal.commands import ConfigError, compose_config

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


def render_prompts(rows: Sequence[dict[str, Any]], chat_template: str, tokenizer: Any = None) -> list[str]:
    """Prompt strings as training renders them: the chat template applied with add_generation_prompt=True."""
    if tokenizer is not None:
        return [
            tokenizer.apply_chat_template(
                list(row["prompt"]), chat_template=chat_template, tokenize=False, add_generation_prompt=True
            )
            for row in rows
        ]
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(chat_template)
    return [template.render(messages=list(row["prompt"]), add_generation_prompt=True) for row in rows]


def build_generation_request(
    model: str,
    rows: Sequence[dict[str, Any]],
    sampling_cfg: dict[str, Any],
    chat_template: str,
    tokenizer: Any = None,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(LLM(**llm_kwargs), SamplingParams(**sampling_kwargs), prompts) for vLLM offline inference — no vLLM needed."""
    llm_kwargs = {"model": model, **sampling_cfg["llm"]}
    sampling_kwargs = dict(sampling_cfg["sampling"])
    return llm_kwargs, sampling_kwargs, render_prompts(rows, chat_template, tokenizer)


def generate_predictions(
    model: str,
    data: dict[tuple[str, int], dict[str, Any]],
    out_path: Path,
    sampling_path: str | Path = DEFAULT_SAMPLING_CONFIG,
    training_config: str = DEFAULT_TRAINING_CONFIG,
) -> Path:
    """Generate responses with vLLM offline inference and write them as a predictions JSONL (GPU only)."""
    try:
        import vllm  # noqa: F401  (imported lazily: absent on CPU machines)
    except ImportError as exc:
        raise EvaluationInputError(
            "--model needs vLLM (GPU node: pip install -e '.[train]'); it is not installed here. "
            "Generate predictions elsewhere and pass --predictions PRED.jsonl instead."
        ) from exc
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    keys = sorted(data)
    rows = [data[k] for k in keys]
    cfg = load_sampling_config(sampling_path)
    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=bool(cfg["llm"].get("trust_remote_code")))
    llm_kwargs, sampling_kwargs, prompts = build_generation_request(
        model, rows, cfg, load_chat_template(training_config), tokenizer
    )
    logger.info("generating %d prompts × n=%s with %s", len(prompts), sampling_kwargs.get("n", 1), model)
    llm = LLM(**llm_kwargs)
    outputs = llm.generate(prompts, SamplingParams(**sampling_kwargs), use_tqdm=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as handle:
        for (data_source, index), output in zip(keys, outputs, strict=True):
            for sample, completion in enumerate(output.outputs):
                line = {"index": index, "data_source": data_source, "response": completion.text, "sample": sample}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return out_path


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
    mode, note = resolve_mode(args.mode, args.judge_base_url)
    kwargs = reward_kwargs(mode, args.judge_base_url, args.judge_model)
    records = asyncio.run(_score_and_close(loaded.predictions, data, mode, kwargs, args.concurrency))
    metrics = compute_metrics(records, data)
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
        issues=loaded.issues,
    )
    metrics = _clean(metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    with (out_dir / "scores.jsonl").open("w", encoding="utf-8") as handle:
        for rec in records:
            handle.write(json.dumps(_clean(rec), ensure_ascii=False) + "\n")
    from recipes.legal.report import write_report

    write_report(out_dir, metrics, records)
    logger.info("wrote %s", out_dir / "metrics.json")
    return metrics


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
    parser.add_argument("--concurrency", type=int, default=64, help="responses scored at once")
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
    """Entry point: evaluate, or `compare`; input errors exit 2 with the message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if argv and argv[0] == "compare":
            args = build_compare_parser().parse_args(argv[1:])
            from recipes.legal.report import compare_reports

            compare_reports([Path(p) for p in args.reports], Path(args.out))
        else:
            run(build_parser().parse_args(argv))
    except EvaluationInputError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

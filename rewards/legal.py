"""verl reward entry point for the legal recipe: format check + task score (rules and/or LLM judge) + shaping.

Use it from YAML (options are the reward kwargs; environment variables fill judge settings left unset)::

    reward:
      custom_reward_function:
        path: rewards/legal.py
        name: compute_score
        reward_kwargs:
          mode: hybrid                # judge | rules | hybrid
          judge_base_url: http://127.0.0.1:8000/v1   # or a list / comma list; else env JUDGE_BASE_URL
          judge_model: Qwen2.5-7B-Instruct           # else env JUDGE_MODEL; "" → first id of GET /v1/models
          on_judge_error: mask        # mask | rules | neutral | raise

Options (all optional):
- ``mode``: ``judge`` (the original recipe: every task asks the judge), ``rules`` (no judge at all), ``hybrid``
  (default: rules for term always and for charge/article when the prediction parses into known labels, the judge
  otherwise and for verdict). ``judge`` and ``hybrid`` need a judge: ``judge_base_url`` / env ``JUDGE_BASE_URL``,
  or ``reward_router_address`` when verl serves the judge (then that endpoint wins).
- Judge client settings, passed to ``judge.client.JudgeConfig.from_kwargs``: ``judge_base_url``, ``judge_model``,
  ``judge_api_key`` (env ``JUDGE_API_KEY``), ``timeout_s``, ``max_concurrency``, ``max_retries``,
  ``structured_output``, ``max_consecutive_failures``, ``cache_size`` … (every JudgeConfig field, also with a
  ``judge_`` prefix).
- ``on_judge_error``: what a response the judge could not judge scores (a failed call: errors and timeouts after
  the retries, no free slot within ``queue_timeout_s``, the call's deadline) — ``rules`` (default: the rules score of
  the task), ``neutral`` (task score 0), ``mask`` (the response scores the placeholder 0 with ``judge_masked`` = 1
  and the trainer leaves it out of the update, recipes/trainer/masking.py; an unreadable reply is masked too) or
  ``raise`` (``_ON_JUDGE_ERROR`` maps each to its function). Every failure sets ``judge_failed`` = 1. After
  ``max_consecutive_failures`` failures in a row the client raises
  ``JudgeUnavailableError`` whatever the policy: the run stops instead of training on noise.
- ``response_starts_in_think`` (default true: the base template ends with ``<think>``).
- ``judge_audit_rate`` (default 0.02, hybrid mode only): that share of the charge/article responses the rules
  decided is also sent to the judge, without changing their score, to measure judge–rules agreement
  (``judge_audited``, ``judge_rules_agree``; data/domains/legal/agreement.py). The choice hashes task, gold and answer,
  so it is reproducible and identical answers share one (cached) judge call. A failed audit call sets
  ``judge_failed`` but never raises JudgeCallFailedError; 0 turns audits off.
- ``term_unit`` (default ``auto``): what a bare number as the whole term answer (``12``) is. ``auto``: months when
  our term instruction asks for months (``data.domains.legal.tasks.fixes_months``; today's does not, so it is
  unreadable); ``months``: the prompt the predictions answered asked for months (an evaluation of predictions made
  elsewhere: ``evaluate --term-unit months``). Training builds every prompt from our instruction: leave it at auto.
- Shaping, off by default: ``lang_reward_weight`` (× ``lang_reward``) and ``length_penalty_weight``
  (× ``length_penalty``); ``length_ref_chars``: the typical response length in characters used by the length
  penalty when ``extra_info`` carries no group statistics (a number, or a mapping task → number).

Scores: ``score = format_score + task_score + shaping_score`` with format_score 0 (format right) / -1 (wrong);
task_score per mode: judge grade 0/1/2 → -2/+1/+2, unreadable grade → 0; judge term error → -(months)/240,
unreadable → -2, gold without month count (life/death/none) → 0 without asking; rules per rewards/rules.py; no
``<answer>`` block → -2 and no judge call; a response over ``MAX_RESPONSE_CHARS`` characters counts as no answer and
wrong format (it is not read); an answer block longer than what is read whole (``answer_limit``: MAX_ANSWER_CHARS,
and the judge's max_pred_chars when a judge is configured) scores -2 by rule, read by nobody and never sent to the
judge. In hybrid mode a listing (rewards/rules.py ``is_listing``) is refused by the rules before any judge call.
Every call returns the keys of ``RESULT_KEYS``, all floats. An unreadable judge reply scores as above and sets
``judge_unreadable``; enough of them in a row stop the run like failed calls.
"""

# No `from __future__ import annotations`: verl loads this file by path without registering it in sys.modules,
# and dataclasses cannot resolve string annotations of such a module.
import hashlib
import logging
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

try:  # verl may load this file by path (custom_reward_function.path): make the repo's packages importable.
    import data.domains.legal.tasks  # noqa: F401
except ImportError:  # pragma: no cover - depends on how the process was started
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.domains.legal.agreement import AGREEMENT_TASKS, scores_agree
from data.domains.legal.tasks import TASK_LABELS, TASKS, task_of
from data.domains.legal.terms import format_term
from judge.client import (
    ENV_BASE_URL,
    ENV_MODEL,
    JudgeConfig,
    JudgeResult,
    JudgeUnavailableError,
    get_judge_client,
)
from rewards.format import check_format, extract_answer, extract_thinking
from rewards.options import OptionsCache, check_known
from rewards.rules import TERM_UNITS, Gold, RuleScore, gold_from, score_rules
from rewards.shaping import chinese_share, length_penalty, length_ref_from

__all__ = [
    "MODES",
    "ON_JUDGE_ERROR",
    "RESULT_KEYS",
    "JudgeCallFailedError",
    "JudgeUnavailableError",
    "RewardOptions",
    "ask_judge",
    "audit_selected",
    "compute_score",
    "get_options",
    "answer_limit",
    "judge_grade_score",
    "judge_term_score",
]

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("judge", "rules", "hybrid")

RESULT_KEYS: tuple[str, ...] = (
    "score",  # format_score + task_score + shaping_score
    "format_ok",  # 1 when the format rule holds
    "format_score",  # 0 / -1
    "task_score",  # the task part of the score
    "acc",  # 1 when the task answer is fully correct
    "has_answer",  # 1 when an <answer> block with content was found
    "rules_used",  # 1 when the rules produced task_score (rules mode, hybrid rule decision, judge fallback)
    "judge_called",  # 1 when the judge was asked (cache hits included)
    "judge_failed",  # 1 when the judge call failed (task_score then follows on_judge_error)
    "judge_unreadable",  # 1 when the judge answered 200 with no readable grade / error (null content included)
    "judge_off_choice",  # 1 when the judge's reply broke the requested structured-output choice set / regex
    "judge_rate_limited",  # 1 when the judge call met a 429 (Retry-After honoured) on any attempt
    "judge_latency_ms",  # wall time of the judge call (0 without a call)
    "cache_hit",  # 1 when the judge answer came from the client's cache
    "chinese_share",  # share of Chinese characters in the thinking, in [0, 1]
    "lang_reward",  # language-consistency reward: chinese_share when the format holds, else 0
    "length_penalty",  # Kimi-1.5 length reward in [-0.5, 0.5] (0 without a length reference)
    "shaping_score",  # lang_reward_weight * lang_reward + length_penalty_weight * length_penalty
    "judge_audited",  # 1 when a rules-decided response was also sent to the judge (judge_audit_rate)
    "judge_rules_agree",  # 1 when that audit's judge grade equals the rules grade (0 when not audited or failed)
    "judge_masked",  # 1 when on_judge_error=mask left the response unjudged: score 0, out of the update
)

# Judge grade → task score (original recipe); an unreadable grade scores 0.
GRADE_SCORES: dict[int, float] = {0: -2.0, 1: 1.0, 2: 2.0}
UNREADABLE_GRADE_SCORE = 0.0
UNREADABLE_TERM_SCORE = -2.0
NO_ANSWER_SCORE = -2.0
# The placeholder score of a response the judge could not judge under on_judge_error=mask (it teaches nothing).
MASKED_SCORE = 0.0
# An answer block longer than answer_limit(): nobody reads it whole, so it is not read at all.
LONG_ANSWER_SCORE = -2.0
MONTHS_SCALE = 240.0
# A response longer than this (characters) is read as having no answer and the wrong format, without reading it:
# every reader then works on bounded text. Far above any max_response_length (16k tokens ≈ 64k characters).
MAX_RESPONSE_CHARS = 65536
# The longest answer block the rules read (the judge reads at most max_pred_chars). Real answers are a few hundred
# characters at most; the numeral readers are quadratic on long digit runs (issue 11). A longer answer is not cut (a
# cut list ends in half a label, which the rules cannot decide) but refused: LONG_ANSWER_SCORE.
MAX_ANSWER_CHARS = 1000

_OWN_KEYS = (
    "mode",
    "on_judge_error",
    "response_starts_in_think",
    "lang_reward_weight",
    "length_penalty_weight",
    "length_ref_chars",
    "judge_audit_rate",
    "term_unit",
)
# Keys verl adds itself: reward_router_address is read by JudgeConfig; the tokenizer is not needed here.
_IGNORED_KEYS = frozenset({"reward_model_tokenizer"})
_JUDGE_DIRECT = ("judge_base_url", "judge_model", "judge_api_key", "reward_router_address", "structured_output")
_JUDGE_KEYS = frozenset(
    _JUDGE_DIRECT
    + tuple(
        name
        for f in fields(JudgeConfig)
        if f.name not in ("base_urls", "model", "api_key")
        for name in (f.name, f"judge_{f.name}")
    )
)
_ALLOWED_KEYS = frozenset(_OWN_KEYS) | _JUDGE_KEYS | _IGNORED_KEYS


class JudgeCallFailedError(RuntimeError):
    """A judge call failed and on_judge_error='raise'."""


@dataclass(frozen=True)
class RewardOptions:
    """Validated reward options, parsed once per distinct kwargs (and judge environment)."""

    mode: str = "hybrid"
    on_judge_error: str = "rules"
    starts_in_think: bool = True
    lang_reward_weight: float = 0.0
    length_penalty_weight: float = 0.0
    length_ref_chars: float | None = None
    length_ref_by_task: tuple[tuple[str, float], ...] = ()
    judge: JudgeConfig | None = None
    judge_audit_rate: float = 0.02
    term_unit: str = "auto"

    def length_ref_for(self, task: str) -> float | None:
        """The reference length (characters) for `task`: per-task value, else the global one, else None."""
        for name, value in self.length_ref_by_task:
            if name == task:
                return value
        return self.length_ref_chars


# ---------------------------------------------------------------------------------------------------- options


def _to_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise ValueError(f"reward kwarg {key}={value!r} must be a boolean (true/false)")


def _to_float(value: Any, key: str, positive: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"reward kwarg {key}={value!r} must be a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"reward kwarg {key}={value!r} must be a number") from None
    if not math.isfinite(out) or (positive and out <= 0):
        raise ValueError(f"reward kwarg {key}={value!r} must be a finite {'positive ' if positive else ''}number")
    return out


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise ValueError(f"reward kwarg {key}={value!r} is not allowed; expected one of {', '.join(allowed)}")
    return text


def _parse_options(kwargs: Mapping[str, Any]) -> RewardOptions:
    """Validate reward kwargs into RewardOptions (errors name the key and the allowed values)."""
    check_known(kwargs, _ALLOWED_KEYS, _IGNORED_KEYS, "rewards/legal.py:compute_score")
    mode = _choice(kwargs.get("mode", "hybrid"), "mode", MODES)
    policy = _choice(kwargs.get("on_judge_error", "rules"), "on_judge_error", ON_JUDGE_ERROR)
    starts = _to_bool(kwargs.get("response_starts_in_think", True), "response_starts_in_think")
    lang_w = _to_float(kwargs.get("lang_reward_weight", 0.0), "lang_reward_weight")
    len_w = _to_float(kwargs.get("length_penalty_weight", 0.0), "length_penalty_weight")
    ref_global: float | None = None
    ref_by_task: tuple[tuple[str, float], ...] = ()
    raw_ref = kwargs.get("length_ref_chars")
    if isinstance(raw_ref, Mapping):
        bad = sorted(str(k) for k in raw_ref if k not in TASKS)
        if bad:
            raise ValueError(f"reward kwarg length_ref_chars has unknown task(s) {bad}; expected keys among {TASKS}")
        ref_by_task = tuple((str(k), _to_float(v, f"length_ref_chars.{k}", positive=True)) for k, v in raw_ref.items())
    elif raw_ref is not None:
        ref_global = _to_float(raw_ref, "length_ref_chars", positive=True)
    judge = JudgeConfig.from_kwargs({k: v for k, v in kwargs.items() if k in _JUDGE_KEYS})
    if judge is None and mode != "rules":
        raise ValueError(
            f"reward mode {mode!r} needs a judge but none is configured: set reward kwarg judge_base_url "
            f"(e.g. http://127.0.0.1:8000/v1) or the environment variable {ENV_BASE_URL} (comma list allowed), "
            f"plus judge_model / {ENV_MODEL}; or use mode=rules"
        )
    if judge is not None and mode == "rules":
        judge = None  # rules mode never calls a judge
    audit_rate = _to_float(kwargs.get("judge_audit_rate", 0.02), "judge_audit_rate")
    if not 0.0 <= audit_rate <= 1.0:
        raise ValueError(f"reward kwarg judge_audit_rate={audit_rate!r} must be in [0, 1] (0 turns audits off)")
    term_unit = _choice(kwargs.get("term_unit", "auto"), "term_unit", TERM_UNITS)
    options = RewardOptions(mode, policy, starts, lang_w, len_w, ref_global, ref_by_task, judge, audit_rate, term_unit)
    logger.info("legal reward options: %s", options)  # JudgeConfig's repr redacts the API key
    return options


# _parse_options is looked up at call time (tests wrap it).
_OPTIONS: OptionsCache[RewardOptions] = OptionsCache(lambda kwargs: _parse_options(kwargs), _IGNORED_KEYS)


def get_options(kwargs: Mapping[str, Any]) -> RewardOptions:
    """RewardOptions for these kwargs and the current JUDGE_* environment; parsed once, then a dict lookup."""
    return _OPTIONS.get(kwargs)


# ---------------------------------------------------------------------------------------------------- scoring


def judge_grade_score(grade: int | None) -> float:
    """Judge grade 0/1/2 → -2/+1/+2; None (unreadable) → 0."""
    return GRADE_SCORES.get(grade, UNREADABLE_GRADE_SCORE) if grade is not None else UNREADABLE_GRADE_SCORE


def judge_term_score(error_months: int | None) -> float:
    """Judge term error in months → -(months)/240; None (unreadable) → -2."""
    if error_months is None:
        return UNREADABLE_TERM_SCORE
    return -abs(error_months) / MONTHS_SCALE


def _gold_text(task: str, gold: Gold) -> str:
    """What the judge sees as the gold answer: the ground-truth text, else one rebuilt from the structured gold."""
    if gold.text.strip():
        return gold.text.strip()
    if task == "charge":
        return "、".join(gold.charges)
    if task == "article":
        return "、".join(f"第{a}条" for a in gold.articles)
    if task == "term":
        return format_term(gold.term)
    fine = f"，并处罚金人民币{gold.fine}元" if gold.fine else ""
    return f"{'、'.join(gold.charges)}，{format_term(gold.term)}{fine}"


async def ask_judge(task: str, answer: str, gold: Gold, config: JudgeConfig) -> JudgeResult:
    """The judge question training asks for `task` (same client, prompts and gold text); value = grade or months."""
    client = get_judge_client(config)
    gold_text = _gold_text(task, gold)
    if task == "term":
        return await client.term_error(gold_text, answer)
    return await client.grade(TASK_LABELS[task], gold_text, answer)


def audit_selected(task: str, answer: str, gold: Gold, rate: float) -> bool:
    """Whether a rules-decided response is audited: a hash of (task, gold text, answer) below `rate`."""
    if rate <= 0.0 or task not in AGREEMENT_TASKS:
        return False
    digest = hashlib.blake2b(f"{task}\0{_gold_text(task, gold)}\0{answer}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


async def _audit(
    task: str, answer: str, gold: Gold, rule: RuleScore, options: RewardOptions, out: dict[str, float]
) -> None:
    """Ask the judge about a response the rules decided; record agreement and load, leave the score alone."""
    assert options.judge is not None  # hybrid mode always has a judge
    result = await ask_judge(task, answer, gold, options.judge)
    out["judge_audited"] = 1.0
    out["judge_called"] = 1.0
    out["judge_latency_ms"] = float(result.latency_ms)
    out["cache_hit"] = float(result.cache_hit)
    if result.failed:
        out["judge_failed"] = 1.0
        return
    out["judge_rules_agree"] = float(scores_agree(judge_grade_score(result.value), rule.score))


def answer_limit(options: RewardOptions) -> int:
    """The longest answer block that is read: what the rules read, and no more than the judge would be shown."""
    return MAX_ANSWER_CHARS if options.judge is None else min(MAX_ANSWER_CHARS, options.judge.max_pred_chars)


def _rules_on_error(
    task: str, answer: str, gold: Gold, result: JudgeResult, out: dict[str, float], options: RewardOptions
) -> None:
    """on_judge_error=rules: the rules score of the task."""
    _apply_rules(score_rules(task, answer, gold, options.term_unit), out)


def _neutral_on_error(
    task: str, answer: str, gold: Gold, result: JudgeResult, out: dict[str, float], options: RewardOptions
) -> None:
    """on_judge_error=neutral: task score 0."""
    out["task_score"] = 0.0


def _mask_on_error(
    task: str, answer: str, gold: Gold, result: JudgeResult, out: dict[str, float], options: RewardOptions
) -> None:
    """on_judge_error=mask: the response is marked unjudged; it scores MASKED_SCORE and the trainer leaves it out
    of the update (recipes.trainer.masking)."""
    out["judge_masked"] = 1.0


def _raise_on_error(
    task: str, answer: str, gold: Gold, result: JudgeResult, out: dict[str, float], options: RewardOptions
) -> None:
    """on_judge_error=raise: JudgeCallFailedError naming the endpoint and the error."""
    raise JudgeCallFailedError(
        f"judge call for legal/{task} failed at {result.endpoint or '?'}: {result.error} "
        f"(on_judge_error=raise; use 'rules' or 'neutral' to keep training)"
    )


# on_judge_error → what a response the judge could not judge scores; judge_failed is set before. A new policy is
# a function here and its entry (ON_JUDGE_ERROR, and so the option's allowed values, follow).
_ON_JUDGE_ERROR: dict[str, Callable[[str, str, Gold, JudgeResult, dict[str, float], RewardOptions], None]] = {
    "rules": _rules_on_error,
    "neutral": _neutral_on_error,
    "mask": _mask_on_error,
    "raise": _raise_on_error,
}
ON_JUDGE_ERROR: tuple[str, ...] = tuple(_ON_JUDGE_ERROR)


async def _judge_task(task: str, answer: str, gold: Gold, options: RewardOptions, out: dict[str, float]) -> None:
    """Ask the judge for `task`, map its answer to task_score/acc, and apply on_judge_error on failure."""
    if task == "term" and (gold.term.kind != "fixed" or gold.term.months <= 0):
        # Gold without a month count (life, death, none): score 0 as the recipe does, no call; acc from the kinds.
        out["task_score"] = 0.0
        out["acc"] = float(score_rules(task, answer, gold, options.term_unit).acc)
        return
    assert options.judge is not None  # guaranteed by _parse_options for judge/hybrid modes
    result = await ask_judge(task, answer, gold, options.judge)
    out["judge_called"] = 1.0
    out["judge_latency_ms"] = float(result.latency_ms)
    out["cache_hit"] = float(result.cache_hit)
    out["judge_unreadable"] = float(result.unreadable)
    out["judge_off_choice"] = float(result.off_choice)
    out["judge_rate_limited"] = float(result.rate_limited > 0)
    if result.failed:
        out["judge_failed"] = 1.0
        _ON_JUDGE_ERROR[options.on_judge_error](task, answer, gold, result, out, options)
        return
    if result.unreadable and options.on_judge_error == "mask":  # no grade to learn from either
        _mask_on_error(task, answer, gold, result, out, options)
        return
    if task == "term":
        out["task_score"] = judge_term_score(result.value)
        out["acc"] = float(result.value == 0)
    else:
        out["task_score"] = judge_grade_score(result.value)
        out["acc"] = float(result.value == 2)


def _apply_rules(rule: RuleScore, out: dict[str, float]) -> None:
    out["task_score"] = rule.score
    out["acc"] = float(rule.acc)
    out["rules_used"] = 1.0


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """Score one response for verl's reward loop; returns the RESULT_KEYS, all floats (see the module docstring)."""
    options = get_options(kwargs)
    task = task_of(str(data_source))
    full = solution_str if isinstance(solution_str, str) else ""
    response = full if len(full) <= MAX_RESPONSE_CHARS else ""  # cap first: no reader sees an unbounded text
    gold = gold_from(task, ground_truth, extra_info)
    out = dict.fromkeys(RESULT_KEYS, 0.0)

    format_ok = check_format(response, options.starts_in_think)
    out["format_ok"] = float(format_ok)
    out["format_score"] = 0.0 if format_ok else -1.0

    answer = extract_answer(response)
    if answer is None:
        out["task_score"] = NO_ANSWER_SCORE
    else:
        out["has_answer"] = 1.0
        if len(answer) > answer_limit(options):  # not read: neither the rules nor the judge would see all of it
            _apply_rules(RuleScore(LONG_ANSWER_SCORE, False, True), out)
        elif options.mode == "rules":
            _apply_rules(score_rules(task, answer, gold, options.term_unit), out)
        elif options.mode == "judge":
            await _judge_task(task, answer, gold, options, out)
        else:  # hybrid: term always by rules; charge / article when made of known labels; any listing (rules.py)
            rule = score_rules(task, answer, gold, options.term_unit)
            if rule.decides:
                _apply_rules(rule, out)
                if audit_selected(task, answer, gold, options.judge_audit_rate):
                    await _audit(task, answer, gold, rule, options, out)
            else:
                await _judge_task(task, answer, gold, options, out)

    share = chinese_share(extract_thinking(response, options.starts_in_think))
    out["chinese_share"] = share
    out["lang_reward"] = share if format_ok else 0.0
    ref = length_ref_from(extra_info, options.length_ref_for(task))
    out["length_penalty"] = length_penalty(len(full), out["acc"] == 1.0, ref)
    out["shaping_score"] = (
        options.lang_reward_weight * out["lang_reward"] + options.length_penalty_weight * out["length_penalty"]
    )
    out["score"] = out["format_score"] + out["task_score"] + out["shaping_score"]
    if out["judge_masked"]:
        out["score"] = MASKED_SCORE
    return out

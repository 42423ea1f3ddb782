"""verl reward entry point for the content-safety recipe: format + keys + closeness + detection + reasoning.

Use it from YAML (every option is a reward kwarg)::

    reward:
      custom_reward_function:
        path: rewards/safety.py
        name: compute_score
        reward_kwargs:
          reasoning_scorer: judge        # ngram | embedding | judge
          judge_base_url: http://127.0.0.1:8000/v1

score = format_weight x format_part + keys_weight x keys_part + closeness_weight x closeness_part
        + detection_weight x detection_part + reasoning_weight x reasoning_part, with (rewards/safety_parts.py):
- format_part in {-1, +1}: both blocks once, in order;
- keys_part in [-1 - max_extra_keys/9, +1] = [-2, +1] by default: +1 per scored key, -1 per missing / invalid /
  repeated key, -1 per extra key (at most max_extra_keys), all / 9;
- closeness_part in [-1, 1 + exact_bonus]: per key 1 - 2|score - GOLD|/100 (+ exact_bonus when equal), unscored
  keys -1; mean over the nine. Linear: a slope at every distance, and 1 point off costs 2/100, not half the range;
- detection_part in [-1, 1]: violations (score < violation_threshold) caught, balanced over the gold's violated and
  clean keys: 1 - missed/violated - false alarms/clean (an unscored key is wrong either way). Every constant answer
  (all 100, all 0, ...) earns 0 on a gold with both classes: the majority answer cannot out-earn an honest scorer;
- reasoning_part in [0, 1]: ``ngram`` content n-grams against the data set (rewards/safety_ngram.py: CPU, no server;
  ``ngram_reference`` = the training data's gold reasonings, without it plain Dice of content n-grams);
  ``embedding`` cosine of vectors from an OpenAI-compatible /v1/embeddings endpoint, clipped to [0, 1]; ``judge``
  the judge's grade 0/1/2 of the reasoning against the gold reasoning, / 2, asked in the recipe's own wording
  (data/domains/safety/judge_prompts.yaml; reward kwarg judge_prompts_path picks another file). No reasoning block → 0.

Options and their ranges (defaults in brackets; configs/base/safety_grpo.yaml sets each with a comment):
- format_weight, keys_weight, reasoning_weight >= 0 [1, 1, 1];
- closeness_weight >= 0 [1] and detection_weight >= 0 [1]: with the defaults, honest scorers within 2, 5 and 10 points
  of the gold on every key out-earn "all 100", "all 0" and the best constant answer on the shipped sample and on
  data/samples/safety_violations.jsonl (tests/rewards/test_safety_ranking.py, margins stated there), also at
  detection_weight
  = closeness_weight / 2; keep it there or above (closeness alone pays "all 100" more than an honest ±10 scorer);
- exact_bonus >= 0 [0], keep it <= 0.2: a little extra for an exact key; more makes "exact vs 1 point off" a cliff;
- violation_threshold in 1..100 [60, data.domains.safety.dimensions.VIOLATION_THRESHOLD]: score < it = violated;
- max_extra_keys >= 0 [9]; ngram_n >= 1 [2]; ngram_step in [0, 1] [0.1]: the n-gram score is rounded down to it;
- ngram_reference: a file or list of files [none]: prepared parquet files or records JSONL whose gold reasonings
  the n-gram scorer ranks against (configs/safety_grpo_ngram.yaml sets ${data.train_files}).
Defaults: score in [-5, +5]; a gold answer scores the maximum, format_weight + keys_weight + closeness_weight x
(1 + exact_bonus) + detection_weight + reasoning_weight = 5.
(The original demo parsed the whole response as JSON, added a point per extra key, compared every score with 100
instead of the gold and ranged over hundreds of points; tests/rewards/test_safety_reward.py pins each of those down.)

A failed embedding / judge call scores as ``on_scorer_error``: ``neutral`` (reasoning_part 0, counted in
``reasoning_failed``), ``mask`` (the whole response scores the placeholder 0 with ``judge_masked`` = 1 and the trainer
leaves it out of the update, recipes/trainer/masking.py) or ``raise``. After max_consecutive_failures failures in a
row the client raises whatever the policy (EmbeddingUnavailableError / JudgeUnavailableError): the run stops instead
of training on noise.
Bad gold raises GoldError (gold is checked in data/, never scored). Every call returns RESULT_KEYS, all floats.
"""

# No `from __future__ import annotations`: verl loads this file by path without registering it in sys.modules,
# and dataclasses cannot resolve string annotations of such a module.
import asyncio
import logging
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # verl may load this file by path (custom_reward_function.path): make the repo's packages importable.
    import data.domains.safety.parse  # noqa: F401
except ImportError:  # pragma: no cover - depends on how the process was started
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.domains.safety.dimensions import DATA_SOURCE, DIMENSIONS, FULL_MARKS, VIOLATION_THRESHOLD
from data.domains.safety.gold import gold_from_ground_truth
from data.domains.safety.judge import JUDGE_PROMPTS_PATH, REASONING_LABEL
from data.domains.safety.metrics import WITHIN, key_errors
from data.domains.safety.parse import check_format, extract_answer, extract_reasoning, parse_answer, sanitize
from judge.client import JudgeConfig, JudgeResult, get_judge_client
from judge.embeddings import EmbeddingCallError, EmbeddingConfig, cosine, get_embedding_client
from rewards.options import OptionsCache, check_known
from rewards.safety_ngram import NgramReference, load_reference, ngram_reasoning_score, reference_paths
from rewards.safety_parts import (
    MAX_REASONING_CHARS,
    closeness_part,
    detection_counts,
    detection_part,
    format_part,
    keys_part,
)

__all__ = [
    "DATA_SOURCE",
    "REASONING_LABEL",
    "RESULT_KEYS",
    "SCORERS",
    "SafetyOptions",
    "ask_judge",
    "compute_score",
    "get_options",
    "max_score",
]

logger = logging.getLogger(__name__)

SCORERS: tuple[str, ...] = ("ngram", "embedding", "judge")
ON_SCORER_ERROR: tuple[str, ...] = ("neutral", "mask", "raise")
# The placeholder score of a response whose reasoning could not be scored under on_scorer_error=mask.
MASKED_SCORE = 0.0

RESULT_KEYS: tuple[str, ...] = (
    "score",  # the weighted sum of the five parts
    "format_ok",  # 1 when both blocks appear once, in order
    "format_part",  # +1 / -1
    "keys_part",  # in [-1 - max_extra_keys/9, 1]
    "closeness_part",  # in [-1, 1 + exact_bonus]
    "detection_part",  # in [-1, 1]
    "reasoning_part",  # in [0, 1]
    "has_answer",  # 1 when an <answer> block with content was found
    "json_ok",  # 1 when the answer held one JSON object
    "keys_present",  # expected keys with a valid score (0..9)
    "keys_missing",  # expected keys absent
    "keys_invalid",  # expected keys with an unusable value or given twice
    "keys_extra",  # distinct keys that are not among the nine
    "exact_keys",  # keys whose score equals the gold
    "mae",  # mean |score - gold| over the nine (unscored key: max(gold, 100 - gold))
    "within5",  # share of the nine within 5 points of the gold
    "all_within5",  # 1 when all nine are within 5 points
    "violated_keys",  # gold keys below violation_threshold (0..9)
    "caught_keys",  # of those, keys the answer scores below it too
    "clean_keys",  # gold keys at or above violation_threshold (9 - violated_keys)
    "false_alarms",  # of those, keys the answer scores below it
    "reasoning_called",  # 1 when an embedding / judge call was made (cache hits included)
    "reasoning_failed",  # 1 when that call failed or the judge's grade was unreadable
    "reasoning_latency_ms",  # wall time of the reasoning scorer (0 for ngram / no reasoning)
    "cache_hit",  # 1 when the judge / embedding answer came from the client's cache
    "judge_masked",  # 1 when on_scorer_error=mask left the response unscored: score 0, out of the update
    "judge_called",  # reasoning_called when the scorer is the judge (the shared judge metrics read it), else 0
    "judge_failed",  # reasoning_failed when the scorer is the judge, else 0
    "judge_latency_ms",  # reasoning_latency_ms when the scorer is the judge, else 0
)

_WEIGHTS = ("format_weight", "keys_weight", "closeness_weight", "detection_weight", "reasoning_weight")
_FLOATS = {"exact_bonus": 0.0, "ngram_step": 0.1, **dict.fromkeys(_WEIGHTS, 1.0)}
_INTS = {"max_extra_keys": len(DIMENSIONS), "ngram_n": 2, "violation_threshold": VIOLATION_THRESHOLD}
_EMBEDDING_KEYS = frozenset(
    {"embedding_base_url", "embedding_model", "embedding_api_key", "embedding_timeout_s", "embedding_max_retries"}
)
_JUDGE_KEYS = frozenset(
    {"judge_base_url", "judge_model", "judge_api_key", "reward_router_address", "structured_output"}
    | {"judge_structured_output"}
    | {
        n
        for f in (
            "timeout_s",
            "max_concurrency",
            "max_retries",
            "max_consecutive_failures",
            "cache_size",
            "max_pred_chars",
            "max_tokens",
            "backoff_s",
            "backoff_max_s",
            "queue_timeout_s",
            "max_reply_bytes",
            "prompts_path",
        )
        for n in (f, f"judge_{f}")
    }
)
_IGNORED = frozenset({"reward_model_tokenizer"})
_ALLOWED = frozenset(_FLOATS) | frozenset(_INTS) | {"reasoning_scorer", "on_scorer_error", "ngram_reference"}
_ALLOWED |= _EMBEDDING_KEYS
_ALLOWED |= _JUDGE_KEYS | _IGNORED


@dataclass(frozen=True)
class SafetyOptions:
    """Validated reward options (parsed once per distinct kwargs)."""

    format_weight: float = 1.0
    keys_weight: float = 1.0
    closeness_weight: float = 1.0
    detection_weight: float = 1.0
    reasoning_weight: float = 1.0
    exact_bonus: float = 0.0
    ngram_step: float = 0.1
    max_extra_keys: int = len(DIMENSIONS)
    ngram_n: int = 2
    violation_threshold: int = VIOLATION_THRESHOLD
    ngram_reference: NgramReference | None = None  # loaded from the ngram_reference files (reasoning_scorer=ngram)
    reasoning_scorer: str = "ngram"
    on_scorer_error: str = "neutral"
    embedding: EmbeddingConfig | None = None
    judge: JudgeConfig | None = None


def _number(kwargs: Mapping[str, Any], key: str, default: float, kind: type) -> Any:
    value = kwargs.get(key, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        out = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"reward kwarg {key}={value!r} must be a {kind.__name__}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"reward kwarg {key}={value!r} must be a finite number >= 0")
    return out


def _parse_options(kwargs: Mapping[str, Any]) -> SafetyOptions:
    """Validate reward kwargs (errors name the key and what is allowed)."""
    check_known(kwargs, _ALLOWED, _IGNORED, "rewards/safety.py:compute_score")
    values: dict[str, Any] = {k: _number(kwargs, k, d, float) for k, d in _FLOATS.items()}
    values.update({k: _number(kwargs, k, d, int) for k, d in _INTS.items()})
    if values["ngram_n"] < 1:
        raise ValueError(f"reward kwarg ngram_n={values['ngram_n']} must be >= 1")
    if values["ngram_step"] > 1:
        raise ValueError(f"reward kwarg ngram_step={values['ngram_step']} must be in [0, 1]")
    if not 1 <= values["violation_threshold"] <= FULL_MARKS:
        raise ValueError(f"reward kwarg violation_threshold={values['violation_threshold']} must be in 1..{FULL_MARKS}")
    scorer = str(kwargs.get("reasoning_scorer", "ngram")).strip().lower()
    if scorer not in SCORERS:
        raise ValueError(f"reward kwarg reasoning_scorer={scorer!r}; expected one of {', '.join(SCORERS)}")
    policy = str(kwargs.get("on_scorer_error", "neutral")).strip().lower()
    if policy not in ON_SCORER_ERROR:
        raise ValueError(f"reward kwarg on_scorer_error={policy!r}; expected one of {', '.join(ON_SCORER_ERROR)}")
    embedding = judge = reference = None
    paths = reference_paths(kwargs.get("ngram_reference"))
    if scorer == "ngram" and paths:
        reference = load_reference(paths, values["ngram_n"])  # NgramReferenceError names the file and line
    elif scorer == "ngram":
        logger.warning(
            "safety reward: reasoning_scorer=ngram without ngram_reference: wording that most gold reasonings share "
            "still earns part of the reasoning score; set ngram_reference to the training data"
        )
    if scorer == "embedding":
        embedding = EmbeddingConfig.from_kwargs({k: v for k, v in kwargs.items() if k in _EMBEDDING_KEYS})
        if embedding is None:
            raise ValueError("reasoning_scorer=embedding needs embedding_base_url (or env EMBEDDING_BASE_URL)")
    if scorer == "judge":
        judge_kwargs = {k: v for k, v in kwargs.items() if k in _JUDGE_KEYS}
        if "prompts_path" not in judge_kwargs and "judge_prompts_path" not in judge_kwargs:
            judge_kwargs["judge_prompts_path"] = str(JUDGE_PROMPTS_PATH)  # the safety grader's wording
        judge = JudgeConfig.from_kwargs(judge_kwargs)
        if judge is None:
            raise ValueError("reasoning_scorer=judge needs judge_base_url (or env JUDGE_BASE_URL)")
    options = SafetyOptions(
        **values,
        ngram_reference=reference,
        reasoning_scorer=scorer,
        on_scorer_error=policy,
        embedding=embedding,
        judge=judge,
    )
    logger.info("safety reward options: %s", options)
    return options


_OPTIONS: OptionsCache[SafetyOptions] = OptionsCache(lambda kwargs: _parse_options(kwargs), _IGNORED)


def get_options(kwargs: Mapping[str, Any]) -> SafetyOptions:
    """SafetyOptions for these kwargs and the current JUDGE_* environment; parsed once, then a dict lookup."""
    return _OPTIONS.get(kwargs)


def max_score(options: SafetyOptions) -> float:
    """The score of a perfect answer under these options."""
    return (
        options.format_weight
        + options.keys_weight
        + options.closeness_weight * (1.0 + options.exact_bonus)
        + options.detection_weight
        + options.reasoning_weight
    )


class ScorerCallError(RuntimeError):
    """A reasoning scorer call failed and on_scorer_error='raise'."""


async def ask_judge(config: JudgeConfig, gold: str, reasoning: str) -> JudgeResult:
    """The judge question training asks about a reasoning (same client, prompts and cap): value = grade 0/1/2."""
    return await get_judge_client(config).grade(REASONING_LABEL, gold, reasoning[:MAX_REASONING_CHARS])


async def _judge_reasoning(config: JudgeConfig, gold: str, pred: str, out: dict[str, float]) -> float | None:
    """The judge's grade (0/1/2) of the reasoning against the gold, / 2; None when the call failed or was unreadable."""
    result = await ask_judge(config, gold, pred)
    out["cache_hit"] = float(result.cache_hit)
    return None if result.failed or result.value is None else result.value / 2.0


async def _embedding_reasoning(config: EmbeddingConfig, gold: str, pred: str, out: dict[str, float]) -> float | None:
    """Cosine of the two embeddings clipped to [0, 1]; None when a call failed."""
    client = get_embedding_client(config)
    try:
        (g, g_hit), (p, p_hit) = await asyncio.gather(client.embed(gold), client.embed(pred))
    except EmbeddingCallError as exc:
        logger.warning("safety reward: %s", exc)
        return None
    out["cache_hit"] = float(g_hit and p_hit)
    return max(0.0, cosine(g, p))


async def _reasoning_part(options: SafetyOptions, gold: str, pred: str | None, out: dict[str, float]) -> float:
    """Agreement of the reasoning with the gold reasoning in [0, 1], by the configured scorer."""
    if pred is None:
        return 0.0
    pred = pred[:MAX_REASONING_CHARS]
    if options.reasoning_scorer == "ngram":
        return ngram_reasoning_score(pred, gold, options.ngram_n, options.ngram_reference, options.ngram_step)
    t0 = time.perf_counter()
    if options.reasoning_scorer == "embedding":
        assert options.embedding is not None  # guaranteed by _parse_options
        value = await _embedding_reasoning(options.embedding, gold, pred, out)
    else:
        assert options.judge is not None
        value = await _judge_reasoning(options.judge, gold, pred, out)
    out["reasoning_called"] = 1.0
    out["reasoning_latency_ms"] = (time.perf_counter() - t0) * 1000.0
    judge = options.reasoning_scorer == "judge"  # the shared judge metrics (recipes/trainer/step_metrics.py) read these
    out["judge_called"], out["judge_latency_ms"] = float(judge), out["reasoning_latency_ms"] if judge else 0.0
    if value is None:
        out["reasoning_failed"] = 1.0
        out["judge_failed"] = float(judge)
        if options.on_scorer_error == "raise":
            raise ScorerCallError(f"{options.reasoning_scorer} reasoning scorer failed (on_scorer_error=raise)")
        if options.on_scorer_error == "mask":
            out["judge_masked"] = 1.0
        return 0.0
    return value


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """Score one response for verl's reward loop; returns RESULT_KEYS, all floats (see the module docstring)."""
    options = get_options(kwargs)
    if str(data_source).partition("/")[0] != DATA_SOURCE:
        raise ValueError(f"not a safety data_source: {data_source!r}; expected {DATA_SOURCE!r}")
    gold = gold_from_ground_truth(str(ground_truth))
    gold_scores = gold.score_map
    response = sanitize(solution_str)
    out = dict.fromkeys(RESULT_KEYS, 0.0)

    format_ok = check_format(response)
    answer = extract_answer(response)
    parsed = parse_answer(answer)
    errors = key_errors(parsed, gold_scores)
    scored = parsed.scores
    out["format_ok"] = float(format_ok)
    out["has_answer"] = float(answer is not None)
    out["json_ok"] = float(parsed.json_ok)
    out["keys_present"] = float(len(scored))
    out["keys_missing"] = float(len(parsed.missing))
    out["keys_invalid"] = float(len(parsed.invalid))
    out["keys_extra"] = float(parsed.extra)
    out["exact_keys"] = float(sum(1 for k in scored if errors[k] == 0))
    within = [k in scored and errors[k] <= WITHIN for k in DIMENSIONS]
    out["mae"] = sum(errors.values()) / len(DIMENSIONS)
    out["within5"] = sum(within) / len(DIMENSIONS)
    out["all_within5"] = float(all(within))

    violated, caught, clean, false_alarms, _ = detection_counts(parsed, gold_scores, options.violation_threshold)
    out["violated_keys"], out["caught_keys"] = float(violated), float(caught)
    out["clean_keys"], out["false_alarms"] = float(clean), float(false_alarms)

    out["format_part"] = format_part(format_ok)
    out["keys_part"] = keys_part(parsed, options.max_extra_keys)
    out["closeness_part"] = closeness_part(parsed, gold_scores, options.exact_bonus)
    out["detection_part"] = detection_part(parsed, gold_scores, options.violation_threshold)
    out["reasoning_part"] = await _reasoning_part(options, gold.reasoning, extract_reasoning(response), out)
    out["score"] = (
        options.format_weight * out["format_part"]
        + options.keys_weight * out["keys_part"]
        + options.closeness_weight * out["closeness_part"]
        + options.detection_weight * out["detection_part"]
        + options.reasoning_weight * out["reasoning_part"]
    )
    if out["judge_masked"]:
        out["score"] = MASKED_SCORE
    return out

"""The safety recipe described for the shared machinery (launch, preflight, rehearsal, step metrics, evaluation).

A proposal for the generic machinery to read one ``RECIPE`` per ``recipes/<name>/recipe.py``: names and paths it
needs, the gold check the preflight runs on every row, the response a perfect model writes (so the preflight and the
rehearsal can assert "gold in, full marks out"), the step metrics (``reward/<name>/<metric>`` from the reward's extra
keys) and the evaluation of saved predictions. Nothing here imports HTTP code: the reward module is named by path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from data.domains.safety.dimensions import DATA_SOURCE, VIOLATION_THRESHOLD
from data.domains.safety.gold import gold_from_ground_truth
from data.domains.safety.metrics import WITHIN, evaluate_response, summarize
from data.domains.safety.prompt import gold_response
from recipes.recipe import Recipe

__all__ = ["RECIPE", "evaluate_predictions"]


def _check_gold(data_source: str, ground_truth: Any, extra_info: Mapping[str, Any] | None) -> None:
    """Raise ValueError (GoldError) when the row is not a safety row or its ground truth is unusable."""
    del extra_info
    if data_source != DATA_SOURCE:
        raise ValueError(f"not a safety data_source: {data_source!r}; expected {DATA_SOURCE!r}")
    gold_from_ground_truth(ground_truth)


def _gold_response(
    data_source: str, ground_truth: Any, extra_info: Mapping[str, Any] | None, reward_kwargs: Mapping[str, Any]
) -> str:
    """The response that must score the reward's maximum for this row."""
    del data_source, extra_info, reward_kwargs
    gold = gold_from_ground_truth(ground_truth)
    return gold_response(gold.score_map, gold.reasoning)


def _uses_judge(reward_kwargs: Mapping[str, Any]) -> bool:
    """Only the judge reasoning scorer asks the judge (ngram runs on CPU, embedding asks an embedding server)."""
    return str(reward_kwargs.get("reasoning_scorer", "ngram")).strip().lower() == "judge"


def evaluate_predictions(
    responses: Sequence[str], ground_truths: Sequence[str], threshold: int = VIOLATION_THRESHOLD, tol: int = WITHIN
) -> dict[str, Any]:
    """metrics.json content for responses against the rows' ground truths (data.domains.safety.metrics.summarize)."""
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses for {len(ground_truths)} ground truths")
    samples = [
        evaluate_response(r, gold_from_ground_truth(g).score_map) for r, g in zip(responses, ground_truths, strict=True)
    ]
    return summarize(samples, threshold, tol)


def _best_score(data_source: str, reward_kwargs: Mapping[str, Any]) -> float | None:
    """rewards.safety.max_score under these kwargs (5 by default: five parts of weight 1, each at most 1)."""
    del data_source
    from rewards.safety import get_options, max_score

    return max_score(get_options(dict(reward_kwargs)))


RECIPE = Recipe(
    name="safety",
    tasks=("score",),
    reward_path="rewards/safety.py",
    check_gold=_check_gold,
    gold_response=_gold_response,
    step_metrics=(
        ("score_mean", "score"),
        ("format_ok_rate", "format_ok"),
        ("mae_mean", "mae"),
        ("within5_share", "within5"),
        ("all_within5_rate", "all_within5"),
        ("keys_present_mean", "keys_present"),
        ("keys_extra_mean", "keys_extra"),
        ("reasoning_score_mean", "reasoning_part"),
        ("reasoning_failure_rate", "reasoning_failed"),
        ("detection_score_mean", "detection_part"),
        ("violated_keys_mean", "violated_keys"),
    ),
    # At the reward's violation_threshold (60 by default): caught / violated gold keys and false alarms / clean gold
    # keys over the step's safety responses. A never-flag policy shows recall 0 from the first steps, while within5
    # can stay high (most gold scores are 100). A step with no violated gold key logs recall 1.0 (nothing was missed;
    # violated_keys_mean is then 0), one with no clean key a false-alarm rate of 0.0.
    step_ratios=(
        ("detection_recall", "caught_keys", "violated_keys", 1.0),
        ("false_alarm_rate", "false_alarms", "clean_keys", 0.0),
    ),
    uses_judge=_uses_judge,
    offline_reward_kwargs={"reasoning_scorer": "ngram", "judge_base_url": None},
    data_readme="Content-safety recipe",
    evaluation="recipes.safety.evaluate",
    best_score=_best_score,
)
"""The description the machinery reads (see the module docstring)."""

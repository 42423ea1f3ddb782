"""The safety recipe described for the shared machinery (launch, preflight, rehearsal, step metrics, evaluation).

A proposal for the generic machinery to read one ``RECIPE`` per ``recipes/<name>/recipe.py``: names and paths it
needs, the gold check the preflight runs on every row, the response a perfect model writes (so the preflight and the
rehearsal can assert "gold in, full marks out"), the step metrics (``reward/<name>/<metric>`` from the reward's extra
keys) and the evaluation of saved predictions. Nothing here imports HTTP code: the reward module is named by path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recipes.safety.dimensions import DATA_SOURCE, VIOLATION_THRESHOLD
from recipes.safety.gold import gold_from_ground_truth
from recipes.safety.metrics import WITHIN, evaluate_response, summarize
from recipes.safety.prompt import gold_response

__all__ = ["RECIPE", "Recipe", "evaluate_predictions"]


@dataclass(frozen=True)
class Recipe:
    """What a recipe hands the shared machinery."""

    name: str  # run names <name>-<model>-<MMDD><tag>, metric prefix reward/<name>/
    data_sources: tuple[str, ...]  # the data_source values of its rows
    prepare_source: str  # `python -m data.prepare --source <this>`
    tasks: tuple[str, ...]  # extra_info.task values
    configs: tuple[str, ...]  # launchable configs/<name>.yaml
    reward_path: str  # reward.custom_reward_function.path
    reward_name: str  # reward.custom_reward_function.name
    check_gold: Callable[[str, Mapping[str, Any] | None], None]  # raises ValueError naming what is wrong
    gold_response: Callable[[str, Mapping[str, Any] | None], str]  # (ground_truth, extra_info) -> perfect response
    step_metrics: tuple[tuple[str, str], ...]  # (metric name, reward extra key) averaged per step
    evaluate: Callable[[Sequence[str], Sequence[str]], dict[str, Any]]  # (responses, ground truths) -> metrics


def _check_gold(ground_truth: str, extra_info: Mapping[str, Any] | None = None) -> None:
    """Raise GoldError (a ValueError) when a row's ground truth is unusable."""
    del extra_info
    gold_from_ground_truth(ground_truth)


def _gold_response(ground_truth: str, extra_info: Mapping[str, Any] | None = None) -> str:
    """The response that must score the reward's maximum for this row."""
    del extra_info
    gold = gold_from_ground_truth(ground_truth)
    return gold_response(gold.score_map, gold.reasoning)


def evaluate_predictions(
    responses: Sequence[str], ground_truths: Sequence[str], threshold: int = VIOLATION_THRESHOLD, tol: int = WITHIN
) -> dict[str, Any]:
    """metrics.json content for responses against the rows' ground truths (recipes.safety.metrics.summarize)."""
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses for {len(ground_truths)} ground truths")
    samples = [
        evaluate_response(r, gold_from_ground_truth(g).score_map) for r, g in zip(responses, ground_truths, strict=True)
    ]
    return summarize(samples, threshold, tol)


RECIPE = Recipe(
    name="safety",
    data_sources=(DATA_SOURCE,),
    prepare_source="safety",
    tasks=("score",),
    configs=("safety_grpo", "safety_grpo_ngram"),
    reward_path="rewards/safety.py",
    reward_name="compute_score",
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
    ),
    evaluate=evaluate_predictions,
)
"""The description the machinery reads (see the module docstring)."""

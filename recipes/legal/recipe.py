"""The legal recipe described for the shared machinery (recipes/recipe.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data.domains.legal.tasks import TASKS, task_of
from recipes.recipe import Recipe

__all__ = ["RECIPE"]


def _check_gold(data_source: str, ground_truth: Any, extra_info: Mapping[str, Any] | None) -> None:
    """Raise ValueError when the row's data_source or structured gold is one the reward would reject."""
    from rewards.rules import gold_from

    gold_from(task_of(str(data_source)), ground_truth, extra_info)


def _gold_response(
    data_source: str, ground_truth: Any, extra_info: Mapping[str, Any] | None, reward_kwargs: Mapping[str, Any]
) -> str:
    """The gold answer after a short thinking block; the opening <think> only when the prompt does not end in it."""
    del data_source, extra_info
    body = f"根据案情分析如下。</think>\n<answer>{ground_truth}</answer>"
    return body if bool(reward_kwargs.get("response_starts_in_think", True)) else f"<think>{body}"


def _uses_judge(reward_kwargs: Mapping[str, Any]) -> bool:
    """Every mode but rules asks the judge (hybrid for the verdict task and the rule-undecided answers)."""
    return str(reward_kwargs.get("mode", "hybrid")) != "rules"


def _best_score(data_source: str, reward_kwargs: Mapping[str, Any]) -> float | None:
    """Format 0 + task +2 (the term reward is minus the error: best 0); unknown while a shaping term is on."""
    if any(float(reward_kwargs.get(k) or 0.0) for k in ("lang_reward_weight", "length_penalty_weight")):
        return None
    return 0.0 if data_source == "legal/term" else 2.0


RECIPE = Recipe(
    name="legal",
    tasks=TASKS,
    reward_path="rewards/legal.py",
    check_gold=_check_gold,
    gold_response=_gold_response,
    best_score_notes={"legal/term": " (0 is the best term score: no error)"},
    best_score=_best_score,
    uses_judge=_uses_judge,
    offline_reward_kwargs={"mode": "rules", "judge_base_url": None},
    data_readme="Real CAIL2018 data",
    evaluation="recipes.legal.evaluate",
)
"""The description the machinery reads."""

"""What a recipe hands the shared machinery, and how the machinery finds it.

Each recipe folder ``recipes/<name>/`` has a ``recipe.py`` with one ``RECIPE = Recipe(...)``; a config names its
recipe in ``recipe.name`` and a data row names it by its ``data_source`` (``legal/charge`` → legal, ``safety`` →
safety). The launch, preflight, rehearsal, step metrics and evaluation read only this description, so a third recipe
adds a folder, a reward file, a data source and configs, and touches nothing here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOWN_RECIPES", "Recipe", "RecipeError", "load_recipe", "recipe_of_config", "recipe_of_data_source"]

KNOWN_RECIPES: tuple[str, ...] = ("legal", "safety")  # recipes/<name>/recipe.py

# (data_source, ground_truth, extra_info) -> None; raises ValueError naming what is wrong with the row's gold
GoldCheck = Callable[[str, Any, Mapping[str, Any] | None], None]
# (data_source, ground_truth, extra_info, reward_kwargs) -> the response a perfect model writes
GoldResponse = Callable[[str, Any, Mapping[str, Any] | None, Mapping[str, Any]], str]
# reward_kwargs -> whether the reward calls the LLM judge with them
UsesJudge = Callable[[Mapping[str, Any]], bool]


def _never(reward_kwargs: Mapping[str, Any]) -> bool:
    """A reward that never calls the judge."""
    del reward_kwargs
    return False


# (data_source, reward_kwargs) -> the best score the reward can give, or None when it cannot be known in advance
BestScore = Callable[[str, Mapping[str, Any]], "float | None"]


def _unknown_best(data_source: str, reward_kwargs: Mapping[str, Any]) -> float | None:
    """A recipe that does not state its reward's best score."""
    del data_source, reward_kwargs
    return None


class RecipeError(ValueError):
    """A config or data row that names no known recipe."""


@dataclass(frozen=True)
class Recipe:
    """A recipe's names, gold check, perfect response and step metrics, for the shared machinery."""

    name: str  # recipes/<name>/; data_source is <name> or <name>/<task>; metric prefix reward/<data_source>/
    tasks: tuple[str, ...]  # the tasks of its rows (data_source <name>/<task>, or just <name> for one task)
    reward_path: str  # reward.custom_reward_function.path its configs use
    check_gold: GoldCheck  # the preflight runs it on every row: "a reward worker would stop the run there"
    gold_response: GoldResponse  # must score the reward's best: the preflight and rehearsal assert it
    # (metric name, reward extra key) averaged per data_source group on every training step, beside the shared ones
    step_metrics: tuple[tuple[str, str], ...] = ()
    # (metric name, numerator key, denominator key, value when the denominator sums to 0): sum / sum over the
    # responses of a data_source group on every training step (a rate over counted items, e.g. keys, not responses)
    step_ratios: tuple[tuple[str, str, str, float], ...] = ()
    uses_judge: UsesJudge = _never  # the preflight probes the judge and the judge section must serve one when true
    # reward_kwargs that score without any server: the preflight scores gold answers so when no judge answers
    offline_reward_kwargs: Mapping[str, Any] | None = None
    data_readme: str = ""  # README section on preparing real data (the launch names it when it prepares the sample)
    best_score_notes: Mapping[str, str] | None = None  # data_source -> why its best score is not the maximum
    # (data_source, reward_kwargs) -> the reward's best score, None when unknown; the preflight refuses less for gold
    best_score: BestScore = _unknown_best
    # module scoring saved or generated predictions for `python -m recipes.evaluate` (what it provides: that docstring)
    evaluation: str = ""

    def owns(self, data_source: str) -> bool:
        """Whether a row with this data_source belongs to the recipe."""
        return data_source == self.name or data_source.startswith(f"{self.name}/")

    def best_note(self, data_source: str) -> str:
        """A note printed beside a gold answer's score (e.g. the legal term reward's best is 0)."""
        return (self.best_score_notes or {}).get(data_source, "")


def load_recipe(name: str) -> Recipe:
    """The RECIPE of recipes/<name>/recipe.py; an unknown name raises RecipeError listing the known ones."""
    if name not in KNOWN_RECIPES:
        raise RecipeError(f"unknown recipe {name!r}: expected one of {', '.join(KNOWN_RECIPES)} (recipes/<name>/)")
    recipe = importlib.import_module(f"recipes.{name}.recipe").RECIPE
    if not isinstance(recipe, Recipe) or recipe.name != name:
        raise RecipeError(f"recipes/{name}/recipe.py: RECIPE must be a Recipe named {name!r}")
    return recipe


def recipe_of_config(cfg: Any) -> Recipe:
    """The recipe a composed config names in ``recipe.name``."""
    from omegaconf import OmegaConf

    name = OmegaConf.select(cfg, "recipe.name", default=None)
    if not name:
        raise RecipeError(f"the config sets no recipe.name — set it to one of {', '.join(KNOWN_RECIPES)}")
    return load_recipe(str(name))


def recipe_of_data_source(data_source: str) -> Recipe:
    """The recipe whose rows carry this data_source."""
    name = str(data_source).partition("/")[0]
    if name not in KNOWN_RECIPES:
        raise RecipeError(
            f"data_source {data_source!r} belongs to no recipe: expected <recipe> or <recipe>/<task> with recipe one "
            f"of {', '.join(KNOWN_RECIPES)}"
        )
    return load_recipe(name)

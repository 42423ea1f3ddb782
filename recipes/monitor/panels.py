"""What a recipe's training shows: sections of panels, each a title and the metric keys it plots.

One description serves both pictures: the wandb workspace (recipes.monitor.workspace) and the offline report
(recipes.monitor.plots draws the panels that name a PNG). The keys come from code, not from a list to keep in step:

- ``reward/<data_source>/*`` and ``reward/overall/*``: every key ``recipes.trainer.step_metrics.aggregate_step_metrics``
logs
  for the recipe's reward outputs (its reward module's ``RESULT_KEYS``), found by running it on probe batches: all
  parts at 1, then each part at 0 in turn (``judge_rules_agreement`` needs ``judge_failed`` at 0). A metric a recipe
  adds to ``Recipe.step_metrics`` or to the shared aggregation shows up here without an edit; so do the trainer's own
  ``reward/overall/*`` counts (every ``*_METRIC`` constant of recipes.trainer.step_metrics, e.g. ``unscored``).
- verl's keys (``actor/*``, ``critic/score/*``, ``response_length/*``, ``timing_s/*``, ``val-core/*``, ``val-aux/*``)
  as verl 0.9.1 logs them; tests/monitor/test_dashboard.py checks every key against a real CPU-loop run of each recipe.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recipes.recipe import Recipe
from recipes.trainer import step_metrics
from recipes.trainer.step_metrics import OVERALL, PREFIX, aggregate_step_metrics, recipe_means, recipe_ratios

__all__ = [
    "Panel",
    "Section",
    "data_sources",
    "panel_keys",
    "probed_step_metrics",
    "recipe_sections",
    "reward_result_keys",
    "series_labels",
]


@dataclass(frozen=True)
class Panel:
    """One line plot: a title and the keys drawn in it."""

    title: str
    keys: tuple[str, ...]
    png: str = ""  # the offline report draws it into <png>.png; panels naming the same file share the picture


@dataclass(frozen=True)
class Section:
    """A named group of panels (a workspace section, a heading of the offline report)."""

    name: str
    panels: tuple[Panel, ...]


# Titles of the shared step metrics (recipes/trainer/step_metrics.py); a metric without one is titled by its name.
TITLES: dict[str, str] = {
    "score_mean": "reward (mean score)",
    "accuracy": "accuracy (fully correct answers)",
    "count": "responses per step",
    "format_ok_rate": "format rate (share of responses in the right format)",
    "chinese_share_mean": "Chinese share of the thinking",
    "judge_calls": "judge calls per step",
    "judge_call_rate": "judge calls per response",
    "judge_latency_mean_ms": "judge latency, mean (ms)",
    "judge_latency_p95_ms": "judge latency, p95 (ms)",
    "judge_failure_rate": "judge failures (share of calls)",
    "judge_unreadable_rate": "unreadable judge replies (share of calls)",
    "judge_off_choice_rate": "judge replies off the requested choices (share of calls)",
    "judge_rate_limited_rate": "judge calls that met a 429 (share of calls)",
    "cache_hit_rate": "judge cache hits (share of calls)",
    "judge_audited": "rules-decided answers the judge audited",
    "judge_rules_agreement": "agreement of the judge with the rules (audited answers)",
    "unscored": "responses that could not be scored (the run stops)",
    # the safety recipe's own (recipes/safety/recipe.py step_metrics)
    "mae_mean": "mean absolute error to the gold scores (MAE)",
    "within5_share": "share of the nine scores within 5 of the gold",
    "all_within5_rate": "responses with all nine scores within 5",
    "keys_present_mean": "keys answered (of nine)",
    "keys_extra_mean": "keys answered that were not asked for",
    "reasoning_score_mean": "reasoning score (agreement with the gold reasoning)",
    "reasoning_failure_rate": "reasoning scorer failures (share of responses)",
    "detection_score_mean": "violation detection part of the reward",
    "violated_keys_mean": "violated gold keys per text",
    "detection_recall": "violations caught (recall at the threshold)",
    "false_alarm_rate": "false alarms (share of clean keys flagged)",
}
# Shared metric -> section; judge_* metrics and the trainer's counts go to the judge section, a recipe's own
# metrics to the recipe's section, anything else to "reward: more".
SECTION_OF: dict[str, str] = {
    "score_mean": "reward",
    "accuracy": "reward",
    "count": "reward",
    "format_ok_rate": "format",
    "chinese_share_mean": "language",
    "cache_hit_rate": "judge",
}
# PNG of the offline report for a step metric's panel (the curves the write-up read its story off).
PNG_OF: dict[str, str] = {
    "score_mean": "reward_per_task",
    "format_ok_rate": "format_rate",
    "chinese_share_mean": "chinese_share",
    "judge_calls": "judge_calls_latency",
    "judge_latency_mean_ms": "judge_calls_latency",
    "judge_latency_p95_ms": "judge_calls_latency",
}
# Metrics drawn for reward/overall only: which tasks can log them at all is the reward's business (legal audits only
# charge and article answers the rules decided, in hybrid mode), so a per-task line could be one nothing ever logs.
OVERALL_ONLY: frozenset[str] = frozenset({"judge_rules_agreement"})
RECIPE_PNG_PANELS = 9  # a recipe's own panels per PNG: three rows of three keep a picture under 1000 px high
SECTION_ORDER: tuple[str, ...] = ("reward", "format", "judge", "length", "language", "policy")

# verl 0.9.1's training-step keys, by section (verl/trainer/ppo/metric_utils.py, the actor's update metrics).
VERL_PANELS: dict[str, tuple[Panel, ...]] = {
    "reward": (
        Panel(
            "verl's score per response: min / mean / max", ("critic/score/min", "critic/score/mean", "critic/score/max")
        ),
    ),
    "length": (
        Panel(
            "response length (tokens): min / mean / max",
            ("response_length/min", "response_length/mean", "response_length/max"),
            png="response_length",
        ),
        Panel("responses cut at the length limit (clip ratio)", ("response_length/clip_ratio",)),
        Panel("prompt length (tokens): mean / max", ("prompt_length/mean", "prompt_length/max")),
    ),
    "policy": (
        Panel("policy-gradient loss", ("actor/pg_loss",)),
        Panel("KL to the reference policy (kl_loss)", ("actor/kl_loss",), png="kl"),
        Panel("entropy of the policy", ("actor/entropy",), png="entropy"),
        Panel("gradient norm", ("actor/grad_norm",)),
        Panel("clipped share of tokens / KL to the rollout policy", ("actor/pg_clipfrac", "actor/ppo_kl")),
    ),
    "timing": (
        Panel("seconds per step", ("timing_s/step",)),
        Panel(
            "where a step's time goes (s)",
            (
                "timing_s/gen",
                "timing_s/old_log_prob",
                "timing_s/ref",
                "timing_s/adv",
                "timing_s/update_actor",
                "timing_s/update_weights",
            ),
        ),
        Panel("validation and checkpoint (s)", ("timing_s/testing", "timing_s/save_checkpoint")),
        Panel("throughput (tokens/s per GPU)", ("perf/throughput",)),
    ),
}


def data_sources(recipe: Recipe) -> tuple[str, ...]:
    """The recipe's data_source values: <name>/<task> per task, or just <name> for a one-task recipe."""
    if len(recipe.tasks) == 1:
        return (recipe.name,)
    return tuple(f"{recipe.name}/{task}" for task in recipe.tasks)


def reward_result_keys(recipe: Recipe) -> tuple[str, ...]:
    """The keys the recipe's reward function returns on every call (RESULT_KEYS of its reward module)."""
    module = recipe.reward_path.removesuffix(".py").replace("/", ".")
    return tuple(importlib.import_module(module).RESULT_KEYS)


def trainer_metrics() -> tuple[str, ...]:
    """The reward/overall/* counts the trainer logs itself (the ``*_METRIC`` constants of
    recipes.trainer.step_metrics)."""
    names = [value for name, value in vars(step_metrics).items() if name.endswith("_METRIC") and isinstance(value, str)]
    return tuple(sorted(set(names)))


def probed_step_metrics(recipe: Recipe) -> set[str]:
    """Every reward/* key the step-metric aggregation can log for the recipe's reward outputs (module docstring)."""
    keys = reward_result_keys(recipe)
    sources = list(data_sources(recipe))
    found: set[str] = set()
    for off in (None, *keys):
        extras = {key: [0.0 if key == off else 1.0] * len(sources) for key in keys}
        found |= set(aggregate_step_metrics(sources, extras))
    return found | set(trainer_metrics())


def _section_of(metric: str, own: set[str]) -> str:
    if metric in own:
        return "own"
    if metric in SECTION_OF:
        return SECTION_OF[metric]
    if metric.startswith("judge_") or f"{PREFIX}/{OVERALL}/{metric}" in trainer_metrics():
        return "judge"
    return "more"


def _step_metric_panels(recipe: Recipe) -> dict[str, list[Panel]]:
    """Panels of reward/* keys by section: one panel per metric, one line per data_source (and overall)."""
    probed = probed_step_metrics(recipe)
    sources = data_sources(recipe)
    own_order = [
        *(name for source in sources for name, _ in recipe_means(source)),
        *(ratio[0] for source in sources for ratio in recipe_ratios(source)),
    ]
    own = set(own_order)
    metrics: list[str] = []
    for key in sorted(probed):
        metric = key.rsplit("/", 1)[1]
        if metric not in metrics:
            metrics.append(metric)
    # Shared metrics in TITLES order, then the recipe's own in its step_metrics order, then any other by name.
    order = [*(m for m in TITLES if m not in own), *dict.fromkeys(own_order)]
    metrics.sort(key=lambda m: (order.index(m) if m in order else len(order), m))
    out: dict[str, list[Panel]] = {}
    for metric in metrics:
        groups = [OVERALL, *sources] if len(sources) > 1 else [*sources, OVERALL]
        if metric in OVERALL_ONLY:
            groups = [OVERALL]
        keys = [f"{PREFIX}/{group}/{metric}" for group in groups if f"{PREFIX}/{group}/{metric}" in probed]
        if len(sources) == 1 and len(keys) == 2:  # one task: its group and overall are the same responses
            keys = keys[:1]
        title = TITLES.get(metric, metric.replace("_", " "))
        out.setdefault(_section_of(metric, own), []).append(Panel(title, tuple(keys), png=PNG_OF.get(metric, "")))
    return out


def _recipe_png(index: int) -> str:
    """The offline PNG of a recipe's own panel: "recipe", then "recipe_2"…, RECIPE_PNG_PANELS panels each."""
    part = index // RECIPE_PNG_PANELS
    return "recipe" if part == 0 else f"recipe_{part + 1}"


def _validation_panels(recipe: Recipe, val_n: int) -> tuple[Panel, ...]:
    """verl's validation means per data_source: its core metric (acc, else reward), score, format, the recipe's own."""
    result_keys = reward_result_keys(recipe)
    core = "acc" if "acc" in result_keys else "reward"
    sources = data_sources(recipe)

    def panel(title: str, section: str, var: str, png: str = "") -> Panel:
        return Panel(title, tuple(f"{section}/{source}/{var}/mean@{val_n}" for source in sources), png=png)

    panels = [panel(f"validation {core} (mean@{val_n})", "val-core", core, png="validation")]
    for var in ("score", "format_ok"):
        if var in result_keys and var != core and not (var == "score" and core == "reward"):  # reward is the score
            panels.append(panel(f"validation {var} (mean@{val_n})", "val-aux", var, png="validation"))
    own_inputs = [key for source in sources for _, key in recipe_means(source)]
    for var in dict.fromkeys(own_inputs):
        if var in result_keys and var not in ("score", "format_ok", core):
            panels.append(panel(f"validation {var} (mean@{val_n})", "val-aux", var))
    return tuple(panels)


def recipe_sections(recipe: Recipe, val_n: int = 1) -> list[Section]:
    """The recipe's sections in order: reward, format, judge, length, language, policy, its own, validation, timing.

    ``val_n`` is the run's ``actor_rollout_ref.rollout.val_kwargs.n`` (verl names validation means ``mean@N``).
    """
    steps = _step_metric_panels(recipe)
    sections: list[Section] = []
    for name in SECTION_ORDER:
        panels = (*steps.get(name, []), *VERL_PANELS.get(name, ()))
        if panels:
            sections.append(Section(name, tuple(panels)))
    if steps.get("own"):
        sections.append(
            Section(
                recipe.name,
                tuple(Panel(p.title, p.keys, png=p.png or _recipe_png(i)) for i, p in enumerate(steps["own"])),
            )
        )
    if steps.get("more"):
        sections.append(Section("reward: more", tuple(steps["more"])))
    sections.append(Section("validation", _validation_panels(recipe, val_n)))
    sections.append(Section("timing", VERL_PANELS["timing"]))
    return sections


def panel_keys(sections: Iterable[Section]) -> list[str]:
    """Every metric key the panels plot, each once, in panel order."""
    keys: dict[str, None] = {}
    for section in sections:
        for panel in section.panels:
            keys.update(dict.fromkeys(panel.keys))
    return list(keys)


def series_labels(keys: Sequence[str]) -> list[str]:
    """Legend labels: the keys without the path parts they all share (``reward/legal/charge/x`` -> ``legal/charge``)."""
    if len(keys) < 2:
        return list(keys)
    parts = [key.split("/") for key in keys]
    head = 0
    while all(len(p) > head + 1 for p in parts) and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while all(len(p) > head + tail + 1 for p in parts) and len({p[-1 - tail] for p in parts}) == 1:
        tail += 1
    return ["/".join(p[head : len(p) - tail]) for p in parts]

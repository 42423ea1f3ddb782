"""Per-step reward metrics: aggregate the reward function's extra outputs per task and overall.

verl 0.9.1 logs reward extras only at validation; recipes.trainer.main_ppo calls this on every training batch.
Keys are ``reward/<data_source>/<metric>`` and ``reward/overall/<metric>``, e.g. ``reward/legal/charge/score_mean``,
``reward/overall/judge_latency_p95_ms``.

Metrics (over the responses of the group; "judge calls" = responses with judge_called == 1, cache hits included):
- ``count``: responses; ``score_mean``: mean ``score``; ``format_ok_rate``: mean ``format_ok``;
  ``accuracy``: mean ``acc``; ``chinese_share_mean``: mean ``chinese_share`` (share of Chinese in the thinking).
  Each is skipped when its input key is missing (or holds no numbers).
- Judge metrics, present in EVERY group of every step (no gaps in wandb panels, e.g. in rules mode):
  ``judge_calls``: number of judge calls (0 when ``judge_called`` is missing);
  ``judge_call_rate``: mean ``judge_called`` (0.0 when missing);
  over judge calls only: ``judge_failure_rate`` (mean ``judge_failed``), ``cache_hit_rate`` (mean ``cache_hit``),
  ``judge_latency_mean_ms`` and ``judge_latency_p95_ms`` (``judge_latency_ms``; p95 with linear interpolation).
  With no judge calls in the group these four are 0.0 (defined, not missing; read them together with
  ``judge_calls``). With judge calls but the input key missing (or no finite value), that metric is skipped.
- Judge audits (hybrid mode, reward kwarg ``judge_audit_rate``), when the reward returns ``judge_audited``:
  ``judge_audited``: responses the rules decided that the judge graded too (their calls are in ``judge_calls``);
  ``judge_rules_agreement``: mean ``judge_rules_agree`` over the audited responses whose call did not fail
  (data/domains/legal/agreement.py), skipped when there is none (a step without audits is no disagreement).
- Judge fault rates over judge calls, present whenever their input key is (rewards/legal.py always returns it;
  0.0 in a group without judge calls): ``judge_unreadable_rate`` (mean ``judge_unreadable``: 200 replies with no
  readable grade), ``judge_off_choice_rate`` (mean ``judge_off_choice``: replies outside the requested choice set /
  regex) and ``judge_rate_limited_rate`` (mean ``judge_rate_limited``: calls that met a 429).
- The recipe's own means (``Recipe.step_metrics`` of the recipe the data_source belongs to, recipes/recipe.py), in
  its data_source groups only, e.g. ``reward/safety/mae_mean``, ``within5_share``, ``keys_present_mean``,
  ``reasoning_score_mean``; each is skipped when its input key is missing (or holds no numbers). A data_source of no
  known recipe gets only the shared metrics.
- The recipe's own ratios (``Recipe.step_ratios``), in its data_source groups only: the sum of one extras key over the
  group's responses divided by the sum of another, e.g. ``reward/safety/detection_recall`` = caught violated keys /
  violated gold keys. When the denominator sums to 0 (no item to count this step) the recipe's stated value is logged
  instead of a division by zero (safety: recall 1.0, nothing was missed; false-alarm rate 0.0); skipped when either
  key is missing (or holds no numbers).
- ``reward/overall/masked``: responses the judge could not judge this step (``judge_masked``, on_judge_error: mask),
  kept with the placeholder score 0 and left out of the update (recipes.trainer.masking). Logged every step.
- ``reward/overall/unscored``: responses generated but not scored this step (the reward function raised; verl drops
  their group). Logged every step by recipes.trainer.main_ppo, which stops the run when it is not 0.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from recipes.recipe import RecipeError, recipe_of_data_source

logger = logging.getLogger(__name__)

PREFIX = "reward"
OVERALL = "overall"
UNSCORED_METRIC = f"{PREFIX}/{OVERALL}/unscored"
# Responses the judge could not judge this step (on_judge_error: mask; recipes.trainer.masking), left out of the update.
MASKED_METRIC = f"{PREFIX}/{OVERALL}/masked"
# Starts the one stderr line that ends a run whose rewards could not be computed (recipes.trainer.main_ppo writes it,
# recipes.rehearsal.rehearse reads it): `[trainer] run stopped at step N: …`.
STOP_PREFIX = "[trainer]"

# metric name -> extras key, averaged over all responses of the group
_MEANS: tuple[tuple[str, str], ...] = (
    ("score_mean", "score"),
    ("format_ok_rate", "format_ok"),
    ("accuracy", "acc"),
    ("judge_call_rate", "judge_called"),
    ("chinese_share_mean", "chinese_share"),
)
# metric name -> extras key, averaged over the responses that called the judge
_JUDGE_MEANS: tuple[tuple[str, str], ...] = (
    ("judge_failure_rate", "judge_failed"),
    ("cache_hit_rate", "cache_hit"),
    ("judge_latency_mean_ms", "judge_latency_ms"),
)
# metric name -> extras key, averaged over judge calls; only when the key is present (0.0 without judge calls)
_JUDGE_FAULT_MEANS: tuple[tuple[str, str], ...] = (
    ("judge_unreadable_rate", "judge_unreadable"),
    ("judge_off_choice_rate", "judge_off_choice"),
    ("judge_rate_limited_rate", "judge_rate_limited"),
)
# Metrics over judge calls: 0.0 in a group without judge calls.
_JUDGE_METRICS: tuple[str, ...] = (*(name for name, _ in _JUDGE_MEANS), "judge_latency_p95_ms")


def _as_float_array(values: Any) -> np.ndarray | None:
    """Values as a float array (None -> NaN); None when they are not numbers."""
    try:
        items = list(values.tolist() if hasattr(values, "tolist") else values)
    except TypeError:
        return None
    out = np.empty(len(items), dtype=float)
    for i, item in enumerate(items):
        if item is None:
            out[i] = math.nan
            continue
        if isinstance(item, (str, bytes, dict, list, tuple)):
            return None
        try:
            out[i] = float(item)
        except (TypeError, ValueError):
            return None
    return out


def _nanmean(values: np.ndarray) -> float | None:
    """Mean over finite values; None when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _group_metrics(extras: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """Metrics of the responses selected by mask."""
    out: dict[str, float] = {"count": float(mask.sum())}
    for name, key in _MEANS:
        if key in extras:
            value = _nanmean(extras[key][mask])
            if value is not None:
                out[name] = value
    out.update(_audit_metrics(extras, mask))
    called_values = extras.get("judge_called")
    if called_values is None:
        called = np.zeros_like(mask)
    else:
        called = mask & (np.nan_to_num(called_values, nan=0.0) > 0.5)
    out["judge_calls"] = float(called.sum())
    if "judge_call_rate" not in out:  # judge_called missing (or all None): no judge call was recorded
        out["judge_call_rate"] = 0.0
    if not called.any():
        out.update(dict.fromkeys(_JUDGE_METRICS, 0.0))
        out.update({name: 0.0 for name, key in _JUDGE_FAULT_MEANS if key in extras})
        return out
    for name, key in _JUDGE_FAULT_MEANS:
        if key in extras:
            value = _nanmean(extras[key][called])
            if value is not None:
                out[name] = value
    for name, key in _JUDGE_MEANS:
        if key in extras:
            value = _nanmean(extras[key][called])
            if value is not None:
                out[name] = value
    if "judge_latency_ms" in extras:
        latency = extras["judge_latency_ms"][called]
        latency = latency[np.isfinite(latency)]
        if latency.size:
            out["judge_latency_p95_ms"] = float(np.percentile(latency, 95))
    return out


@functools.cache
def recipe_ratios(data_source: str) -> tuple[tuple[str, str, str, float], ...]:
    """(metric, numerator key, denominator key, value for a zero denominator) of the data_source's recipe; ()."""
    try:
        return recipe_of_data_source(data_source).step_ratios
    except RecipeError:
        return ()


@functools.cache
def recipe_means(data_source: str) -> tuple[tuple[str, str], ...]:
    """(metric, extras key) of the data_source's recipe beyond the shared _MEANS; () for a source of no recipe."""
    try:
        recipe = recipe_of_data_source(data_source)
    except RecipeError:
        return ()
    shared = {name for name, _ in _MEANS}
    return tuple((name, key) for name, key in recipe.step_metrics if name not in shared)


def _recipe_metrics(extras: Mapping[str, np.ndarray], mask: np.ndarray, data_source: str) -> dict[str, float]:
    """The recipe's own means and ratios over the selected responses (keys missing from extras are skipped)."""
    out: dict[str, float] = {}
    for name, key in recipe_means(data_source):
        if key in extras:
            value = _nanmean(extras[key][mask])
            if value is not None:
                out[name] = value
    for name, numerator, denominator, empty in recipe_ratios(data_source):
        if numerator in extras and denominator in extras:
            top, bottom = extras[numerator][mask], extras[denominator][mask]
            finite = np.isfinite(top) & np.isfinite(bottom)
            if finite.any():
                total = float(bottom[finite].sum())
                out[name] = float(top[finite].sum()) / total if total > 0 else float(empty)
    return out


def _audit_metrics(extras: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """judge_audited count and judge_rules_agreement of the selected responses ({} without audit keys)."""
    if "judge_audited" not in extras:
        return {}
    audited = mask & (np.nan_to_num(extras["judge_audited"], nan=0.0) > 0.5)
    out = {"judge_audited": float(audited.sum())}
    failed = extras.get("judge_failed")
    answered = audited if failed is None else audited & ~(np.nan_to_num(failed, nan=0.0) > 0.5)
    if answered.any() and "judge_rules_agree" in extras:
        value = _nanmean(extras["judge_rules_agree"][answered])
        if value is not None:
            out["judge_rules_agreement"] = value
    return out


def aggregate_step_metrics(
    data_sources: Sequence[Any], extras: Mapping[str, Any], prefix: str = PREFIX
) -> dict[str, float]:
    """Per-task (data_source) and overall reward metrics for one training batch.

    Every group gets ``count``, ``judge_calls``, ``judge_call_rate``, ``judge_failure_rate``, ``cache_hit_rate``,
    ``judge_latency_mean_ms`` and ``judge_latency_p95_ms`` on every step: the judge metrics are 0.0 when the group
    made no judge call (rules mode, or all rows scored by rules), so wandb panels have no gaps. ``score_mean``,
    ``format_ok_rate``, ``accuracy`` and ``chinese_share_mean`` are skipped when their input key is missing; so are
    the recipe's own means (``Recipe.step_metrics``) in its data_source groups. See the module docstring for the
    definitions. An empty batch gives no metrics.
    """
    sources = [str(s) for s in (data_sources.tolist() if hasattr(data_sources, "tolist") else data_sources)]
    n = len(sources)
    if n == 0:
        return {}
    arrays: dict[str, np.ndarray] = {}
    for key, values in extras.items():
        array = _as_float_array(values)
        if array is None:
            continue
        if array.shape != (n,):
            logger.warning("reward extra %r has %d values for %d responses: skipped", key, array.size, n)
            continue
        arrays[key] = array
    source_array = np.asarray(sources, dtype=object)
    metrics: dict[str, float] = {}
    groups = [(source, source_array == source) for source in sorted(set(sources))]
    groups.append((OVERALL, np.ones(n, dtype=bool)))
    for name, mask in groups:
        group = _group_metrics(arrays, mask)
        if name != OVERALL:
            group.update(_recipe_metrics(arrays, mask, name))
        for metric, value in group.items():
            metrics[f"{prefix}/{name}/{metric}"] = value
    return metrics


def collect_reward_extras(extra_fields: Iterable[Any], key: str = "reward_extra_info") -> dict[str, list[Any]]:
    """Columns of per-response reward extras from verl's per-sample ``extra_fields`` dicts (None where absent)."""
    rows = [(field.get(key) if isinstance(field, Mapping) else None) or {} for field in extra_fields]
    names: list[str] = []
    for row in rows:
        for name in row:
            if name not in names:
                names.append(name)
    return {name: [row.get(name) for row in rows] for name in names}

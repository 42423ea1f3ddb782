"""What one rejection-sampling round did: round.json's numbers and round.md, as pure functions of the answers.

- kept share: kept answers / generated answers; text coverage: texts with at least one kept answer / texts.
- reward before/after: mean reward over every generated answer vs over the kept ones.
- distinct-answer ratio: generated = distinct answers (selection.answer_key) / generated answers; kept = distinct
  nine-score vectors / kept answers (how varied the scores the next round learns are).
- per dimension: the score distribution of the kept answers (each kept answer once: what the next SFT round trains
  on) against the gold scores of every input text (what the data looks like): mean, share below the violation
  threshold, buckets, and their total-variation distance (0 = the same distribution, 1 = disjoint).
- the distribution line: what the round did to the distribution, with a model-collapse warning when the kept set
  covers too few texts, drifts too far from the gold, or the model repeats itself (limits: ``CollapseLimits``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from recipes.safety.dimensions import DIMENSIONS, VIOLATION_THRESHOLD
from recipes.safety.parse import extract_answer, parse_answer, sanitize
from recipes.safety.selection import Scored, Selection, answer_key

__all__ = [
    "BUCKETS",
    "CollapseLimits",
    "distribution",
    "distribution_line",
    "kept_scores",
    "render_markdown",
    "round_summary",
    "total_variation",
]

BUCKETS: tuple[tuple[str, int, int], ...] = (("0-59", 0, 59), ("60-89", 60, 89), ("90-99", 90, 99), ("100", 100, 100))
"""Score buckets (inclusive bounds): violated (< 60), doubtful, minor, clean."""


@dataclass(frozen=True)
class CollapseLimits:
    """When the distribution line warns of model collapse (configs/safety_rejection.yaml `report:`)."""

    min_text_coverage: float = 0.5  # fewer texts than this share with a kept answer: hard texts drop out
    max_tv_distance: float = 0.25  # a dimension's kept-vs-gold bucket distance above this: the scores drift
    min_distinct_ratio: float = 0.5  # fewer distinct answers than this share of the generated: the model repeats


def _mean(values: Sequence[float]) -> float | None:
    """Mean of finite values; None when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def distribution(values: Sequence[int], threshold: int = VIOLATION_THRESHOLD) -> dict[str, Any] | None:
    """Mean, share below threshold and bucket shares of one dimension's scores; None for no scores."""
    if not values:
        return None
    n = len(values)
    return {
        "count": n,
        "mean": sum(values) / n,
        "violated_share": sum(1 for v in values if v < threshold) / n,
        "buckets": {name: sum(1 for v in values if lo <= v <= hi) / n for name, lo, hi in BUCKETS},
    }


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total-variation distance of two bucket distributions: half the sum of absolute differences, in [0, 1]."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def kept_scores(answers: Sequence[Scored]) -> list[dict[str, int]]:
    """The scores each answer gives (the answer block read as the reward reads it; unscored keys absent)."""
    return [dict(parse_answer(extract_answer(sanitize(a.response))).scores) for a in answers]


def _clean_share(score_maps: Sequence[Mapping[str, int]], threshold: int) -> float | None:
    """Share of score maps with every dimension present and none below the threshold."""
    if not score_maps:
        return None
    clean = sum(1 for s in score_maps if all(k in s and s[k] >= threshold for k in DIMENSIONS))
    return clean / len(score_maps)


def round_summary(
    golds: Sequence[Mapping[str, int]],
    answers: Sequence[Scored],
    selection: Selection,
    limits: CollapseLimits = CollapseLimits(),
    threshold: int = VIOLATION_THRESHOLD,
) -> dict[str, Any]:
    """round.json's numbers (module docstring); golds[text_id] are the gold scores of each input text."""
    kept = selection.kept
    kept_maps = kept_scores(kept)
    texts_with_kept = len({a.text_id for a in kept})
    dimensions = {}
    for key in DIMENSIONS:
        gold = distribution([int(g[key]) for g in golds], threshold)
        mine = distribution([s[key] for s in kept_maps if key in s], threshold)
        tv = total_variation(gold["buckets"], mine["buckets"]) if gold and mine else None
        dimensions[key] = {"gold": gold, "kept": mine, "tv_distance": tv}
    mean_all = _mean([a.score for a in answers])
    mean_kept = _mean([a.score for a in kept])
    vectors = {tuple(s.get(k) for k in DIMENSIONS) for s in kept_maps}
    summary: dict[str, Any] = {
        "texts": len(golds),
        "generated": len(answers),
        "kept": len(kept),
        "kept_share": _ratio(len(kept), len(answers)),
        "dropped": {
            "below_threshold": selection.below_threshold,
            "empty": selection.empty,
            "duplicate": selection.duplicates,
            "over_cap": selection.over_cap,
        },
        "texts_with_kept": texts_with_kept,
        "text_coverage": _ratio(texts_with_kept, len(golds)),
        "reward": {
            "mean_generated": mean_all,
            "mean_kept": mean_kept,
            "delta": None if mean_all is None or mean_kept is None else mean_kept - mean_all,
        },
        "distinct_answer_ratio": {
            "generated": _ratio(len({answer_key(a.response) for a in answers}), len(answers)),
            "kept": _ratio(len(vectors), len(kept)),
        },
        "clean_share": {"gold": _clean_share(golds, threshold), "kept": _clean_share(kept_maps, threshold)},
        "dimensions": dimensions,
        "collapse_limits": asdict(limits),
    }
    summary["warnings"] = collapse_warnings(summary, limits)
    summary["distribution_line"] = distribution_line(summary)
    return summary


def _worst_dimension(summary: Mapping[str, Any]) -> tuple[str, float] | None:
    """The dimension whose kept scores are farthest from the gold (by total variation), with that distance."""
    scored = [(k, d["tv_distance"]) for k, d in summary["dimensions"].items() if d["tv_distance"] is not None]
    return max(scored, key=lambda kv: kv[1]) if scored else None


def collapse_warnings(summary: Mapping[str, Any], limits: CollapseLimits) -> list[str]:
    """One sentence per limit the round crossed (empty when none)."""
    out = []
    if not summary["kept"]:
        return ["nothing was kept: the threshold is above every answer (the next round has no new SFT data)"]
    coverage = summary["text_coverage"]
    if coverage is not None and coverage < limits.min_text_coverage:
        out.append(
            f"only {coverage:.0%} of the texts kept an answer (limit {limits.min_text_coverage:.0%}): the texts the "
            "model already handles dominate the next round, the hard ones drop out"
        )
    worst = _worst_dimension(summary)
    if worst is not None and worst[1] > limits.max_tv_distance:
        out.append(
            f"kept scores on {worst[0]} drift from the gold distribution (total variation {worst[1]:.2f} > "
            f"{limits.max_tv_distance:.2f})"
        )
    distinct = summary["distinct_answer_ratio"]["generated"]
    if distinct is not None and distinct < limits.min_distinct_ratio:
        out.append(
            f"distinct answers are {distinct:.0%} of the generated (limit {limits.min_distinct_ratio:.0%}): the "
            "model repeats itself, and training on its own answers narrows it further"
        )
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def distribution_line(summary: Mapping[str, Any]) -> str:
    """One line on what the round did to the distribution, ending with the model-collapse warning (or its absence)."""
    reward, clean = summary["reward"], summary["clean_share"]
    worst = _worst_dimension(summary)
    shift = f"largest per-dimension shift {worst[0]} (TV {worst[1]:.2f})" if worst else "no kept scores to compare"
    line = (
        f"Kept {_pct(summary['kept_share'])} of the answers from {_pct(summary['text_coverage'])} of the texts; "
        f"reward {_num(reward['mean_generated'])} -> {_num(reward['mean_kept'])}; clean answers "
        f"{_pct(clean['kept'])} (gold {_pct(clean['gold'])}); {shift}; distinct answers "
        f"{_pct(summary['distinct_answer_ratio']['generated'])} of the generated."
    )
    warnings = summary["warnings"]
    if warnings:
        return line + " WARNING, model-collapse risk: " + "; ".join(warnings) + "."
    return line + " Within the collapse limits; keep rounds few all the same."


def render_markdown(summary: Mapping[str, Any], title: str = "Rejection-sampling round") -> str:
    """round.md: the counts, reward before/after, diversity, the per-dimension table and the distribution line."""
    reward, dropped, distinct = summary["reward"], summary["dropped"], summary["distinct_answer_ratio"]
    lines = [
        f"# {title}",
        "",
        summary["distribution_line"],
        "",
        "| what | value |",
        "| --- | --- |",
        f"| texts | {summary['texts']} |",
        f"| generated answers | {summary['generated']} |",
        f"| kept answers (share) | {summary['kept']} ({_pct(summary['kept_share'])}) |",
        f"| dropped: below threshold / empty / duplicate / over cap | {dropped['below_threshold']} / "
        f"{dropped['empty']} / {dropped['duplicate']} / {dropped['over_cap']} |",
        f"| texts with a kept answer | {summary['texts_with_kept']} ({_pct(summary['text_coverage'])}) |",
        f"| reward mean: generated -> kept | {_num(reward['mean_generated'])} -> {_num(reward['mean_kept'])} |",
        f"| distinct-answer ratio: generated / kept score vectors | {_num(distinct['generated'])} / "
        f"{_num(distinct['kept'])} |",
        f"| clean answers: kept vs gold | {_pct(summary['clean_share']['kept'])} vs "
        f"{_pct(summary['clean_share']['gold'])} |",
        "",
        "## Per dimension: kept answers against the gold scores of all texts",
        "",
        "| dimension | gold mean | kept mean | gold violated | kept violated | gold buckets | kept buckets | TV |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, dim in summary["dimensions"].items():
        gold, kept = dim["gold"] or {}, dim["kept"] or {}

        def buckets(d: Mapping[str, Any]) -> str:
            return " ".join(f"{name}:{d['buckets'][name]:.2f}" for name, _, _ in BUCKETS) if d else "n/a"

        lines.append(
            f"| {key} | {_num(gold.get('mean'), 1)} | {_num(kept.get('mean'), 1)} | {_pct(gold.get('violated_share'))} "
            f"| {_pct(kept.get('violated_share'))} | {buckets(gold)} | {buckets(kept)} | {_num(dim['tv_distance'])} |"
        )
    if summary["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in summary["warnings"])]
    return "\n".join(lines) + "\n"

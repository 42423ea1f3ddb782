"""What one rejection-sampling round did: round.json's numbers and round.md, as pure functions of the answers.

- kept share: kept answers / generated answers; text coverage: texts with at least one kept answer / texts.
- reward before/after: mean reward over every generated answer vs over the kept ones.
- distinct-answer ratio: generated = distinct answers (selection.meaning_key: scores + normalized reasoning) /
  generated answers; kept = distinct nine-score vectors / kept answers (how varied the scores the next round learns).
- kept violation recall: over the kept answers, the gold's violated keys (score < threshold) that the answer scores
  below the threshold too / the gold's violated keys (None when no kept answer is for a text with a violation).
- score vectors: distinct nine-score vectors among the kept answers against the distinct gold vectors of the texts
  that kept one (kept / gold: below 1 the kept answers say fewer different things than the gold does).
- per dimension: the score distribution of the kept answers (each kept answer once: what the next SFT round trains
  on) against the gold scores of every input text (what the data looks like): mean, share below the violation
  threshold, buckets, and their total-variation distance (0 = the same distribution, 1 = disjoint).
- the distribution line: what the round did to the distribution, with a model-collapse warning when the kept set
  covers too few texts, drifts too far from the gold, or the model repeats itself (limits: ``CollapseLimits``).
- collapse: the kept set is a collapse when its violation recall is below ``min_kept_recall``, when no kept answer is
  for a text with a violation although some texts have one (a never-flag round), or when its score vectors are fewer
  than ``min_vector_diversity`` x the gold's. These sentences are ``summary["collapse"]`` (also among the warnings);
  recipes/safety/rejection_sample.py refuses such a round unless told to keep it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from data.domains.safety.dimensions import DIMENSIONS, VIOLATION_THRESHOLD
from data.domains.safety.parse import extract_answer, parse_answer, sanitize
from recipes.safety.selection import Scored, Selection, meaning_key

__all__ = [
    "BUCKETS",
    "CollapseLimits",
    "collapse_reasons",
    "collapse_warnings",
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
    min_kept_recall: float = 0.5  # kept answers flag fewer of their gold's violations than this: a collapse
    min_vector_diversity: float = 0.5  # distinct kept score vectors / distinct gold vectors below this: a collapse


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


def _kept_recall(
    golds: Sequence[Mapping[str, int]], kept: Sequence[Scored], maps: Sequence[Mapping[str, int]], threshold: int
) -> tuple[int, int]:
    """(violated gold keys over the kept answers, of those the ones the kept answer scores below the threshold too)."""
    violated = caught = 0
    for answer, scores in zip(kept, maps, strict=True):
        for key in DIMENSIONS:
            if int(golds[answer.text_id][key]) < threshold:
                violated += 1
                caught += key in scores and scores[key] < threshold
    return violated, caught


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
    gold_vectors = {tuple(int(golds[t][k]) for k in DIMENSIONS) for t in {a.text_id for a in kept}}
    violated, caught = _kept_recall(golds, kept, kept_maps, threshold)
    violated_texts = sum(1 for g in golds if any(int(g[k]) < threshold for k in DIMENSIONS))
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
            "generated": _ratio(len({meaning_key(a.response) for a in answers}), len(answers)),
            "kept": _ratio(len(vectors), len(kept)),
        },
        "kept_violation_recall": _ratio(caught, violated),
        "kept_violated_keys": violated,
        "texts_with_violation": violated_texts,
        "score_vectors": {
            "kept": len(vectors),
            "gold": len(gold_vectors),
            "ratio": _ratio(len(vectors), len(gold_vectors)),
        },
        "clean_share": {"gold": _clean_share(golds, threshold), "kept": _clean_share(kept_maps, threshold)},
        "dimensions": dimensions,
        "collapse_limits": asdict(limits),
    }
    summary["collapse"] = collapse_reasons(summary, limits)
    summary["warnings"] = collapse_warnings(summary, limits) + summary["collapse"]
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


def collapse_reasons(summary: Mapping[str, Any], limits: CollapseLimits) -> list[str]:
    """One sentence per way the kept set is a collapse (module docstring); empty when it is none or nothing was kept."""
    if not summary.get("kept"):
        return []
    out = []
    recall = summary.get("kept_violation_recall")
    if recall is not None and recall < limits.min_kept_recall:
        out.append(
            f"the kept answers flag {recall:.0%} of the violations in their texts' gold (limit "
            f"{limits.min_kept_recall:.0%}): the next round learns to let violations through"
        )
    if recall is None and summary.get("texts_with_violation"):
        out.append(
            f"no kept answer is for one of the {summary['texts_with_violation']} texts with a violation: the next "
            "round learns clean texts only"
        )
    vectors = summary.get("score_vectors") or {}
    ratio = vectors.get("ratio")
    if ratio is not None and ratio < limits.min_vector_diversity:
        out.append(
            f"the kept answers hold {vectors['kept']} distinct score vectors for {vectors['gold']} distinct gold ones "
            f"(ratio {ratio:.2f} < {limits.min_vector_diversity:.2f}): the scores collapse onto a few answers"
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
        f"| kept answers' violation recall (gold violated keys flagged) | {_pct(summary['kept_violation_recall'])} |",
        f"| distinct score vectors: kept / gold of their texts | {summary['score_vectors']['kept']} / "
        f"{summary['score_vectors']['gold']} |",
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

"""Gold answers: nine integer scores and a short reasoning, checked strictly, and their ground_truth JSON string."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data.domains.safety.dimensions import DIMENSIONS, FULL_MARKS, MIN_SCORE

__all__ = ["Gold", "GoldError", "check_gold", "gold_from_ground_truth", "ground_truth_json"]


class GoldError(ValueError):
    """A gold record that cannot be used; `reason` is a short stable code, the message names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Gold:
    """The gold scores (all nine, canonical order) and the gold reasoning."""

    scores: tuple[tuple[str, int], ...]
    reasoning: str

    @property
    def score_map(self) -> dict[str, int]:
        """Scores as a dict keyed by dimension."""
        return dict(self.scores)


def check_gold(scores: Any, reasoning: Any) -> Gold:
    """Gold from a scores mapping and a reasoning string; no leniency (gold is data, not model output)."""
    if not isinstance(scores, Mapping):
        raise GoldError("wrong_type", f"field 'scores' must be an object, got {type(scores).__name__}")
    missing = [k for k in DIMENSIONS if k not in scores]
    if missing:
        raise GoldError("missing_dimension", f"field 'scores' lacks {', '.join(missing)}")
    extra = sorted(str(k) for k in scores if k not in DIMENSIONS)
    if extra:
        raise GoldError("unknown_dimension", f"field 'scores' has unknown key(s) {', '.join(extra)}")
    out = []
    for key in DIMENSIONS:
        value = scores[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise GoldError("wrong_type", f"field 'scores.{key}' must be an integer, got {value!r:.40}")
        if not MIN_SCORE <= value <= FULL_MARKS:
            raise GoldError("invalid_value", f"field 'scores.{key}' must be {MIN_SCORE}..{FULL_MARKS}, got {value}")
        out.append((key, value))
    if not isinstance(reasoning, str):
        raise GoldError("wrong_type", f"field 'reasoning' must be a string, got {type(reasoning).__name__}")
    if not reasoning.strip():
        raise GoldError("empty_reasoning", "field 'reasoning' is empty")
    return Gold(tuple(out), reasoning.strip())


def ground_truth_json(gold: Gold) -> str:
    """verl's reward_model.ground_truth: {"scores": {nine keys}, "reasoning": "..."} as compact JSON."""
    return json.dumps({"scores": gold.score_map, "reasoning": gold.reasoning}, ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def gold_from_ground_truth(ground_truth: str) -> Gold:
    """Inverse of ground_truth_json (memoized: a GRPO group shares one gold); GoldError when it is not one."""
    try:
        data = json.loads(ground_truth)
    except (TypeError, ValueError) as exc:
        raise GoldError("malformed_gold", f"ground_truth is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GoldError("malformed_gold", "ground_truth must be a JSON object with 'scores' and 'reasoning'")
    return check_gold(data.get("scores"), data.get("reasoning"))

"""The parts of the safety reward as small pure functions (rewards/safety.py weighs and adds them).

Ranges (each before its weight):
- ``format_part``: +1 when both blocks appear once, in order (data.domains.safety.parse.check_format), else -1.
- ``keys_part``: (scored - unscored - min(extra, max_extra)) / 9, in [-1 - max_extra/9, +1] ([-2, +1] by default);
  an expected key is *scored* when it holds a valid score, *unscored* when it is missing, invalid or repeated.
- ``closeness_part``: the mean over the nine keys of 1 - 2 |score - gold| / 100 (+ ``exact_bonus`` when the score
  equals the gold); an unscored key gives -1. In [-1, 1 + exact_bonus]. Linear all the way: every point of error
  costs the same, at 1 point off as at 60 (a flat tail would leave a policy that answers 100 no signal towards the
  gold of a violated key), and the step from exact to 1 point off is 2/100 (+ exact_bonus), not half the range.
- ``detection_part``: violation detection at the threshold (score < threshold = violated), balanced over the two
  classes of the nine keys: 1 - missed / violated - false alarms / clean, each term present only when its class is;
  an unscored key counts as wrong either way (a missed violation, or a false alarm on a clean key). In [-1, 1]
  (in [0, 1] when the gold has one class only). Any answer that does not look at the text (all 100, all 0, any
  constant) earns 0 on a gold with both classes, so the majority class cannot win.
- ``ngram_similarity``: Dice coefficient of character n-gram multisets, in [0, 1] (1 for equal texts); the n-gram
  reasoning scorer built on it is rewards/safety_ngram.py. The other reasoning scorers (embedding cosine, judge
  grade) map into the same [0, 1] in rewards/safety.py.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping

from data.domains.safety.dimensions import DIMENSIONS, FULL_MARKS, VIOLATION_THRESHOLD
from data.domains.safety.parse import ParsedAnswer

__all__ = [
    "MAX_REASONING_CHARS",
    "abs_errors",
    "closeness_part",
    "detection_counts",
    "detection_part",
    "format_part",
    "keys_part",
    "ngram_similarity",
]

MAX_REASONING_CHARS = 2000
"""Reasoning texts are cut here before n-gram counting (bounded work per response)."""

_N_DIM = len(DIMENSIONS)


def format_part(format_ok: bool) -> float:
    """+1 when the format holds, -1 otherwise."""
    return 1.0 if format_ok else -1.0


def keys_part(parsed: ParsedAnswer, max_extra: int = _N_DIM) -> float:
    """+1 per scored expected key, -1 per unscored one, -1 per extra key (at most max_extra of them); divided by 9."""
    scored = len(parsed.scores)
    return (scored - (_N_DIM - scored) - min(parsed.extra, max_extra)) / _N_DIM


def abs_errors(parsed: ParsedAnswer, gold: Mapping[str, int]) -> dict[str, int]:
    """|score - gold| for each scored key."""
    return {k: abs(v - int(gold[k])) for k, v in parsed.scores.items()}


def closeness_part(parsed: ParsedAnswer, gold: Mapping[str, int], exact_bonus: float = 0.0) -> float:
    """Mean per-key closeness to the GOLD score, 1 - 2|score - gold|/100 (+ exact_bonus if equal); unscored -1."""
    errors = abs_errors(parsed, gold)
    total = 0.0
    for key in DIMENSIONS:
        err = errors.get(key)
        if err is None:
            total -= 1.0
        else:
            total += 1.0 - 2.0 * err / FULL_MARKS + (exact_bonus if err == 0 else 0.0)
    return total / _N_DIM


def detection_counts(
    parsed: ParsedAnswer, gold: Mapping[str, int], threshold: int = VIOLATION_THRESHOLD
) -> tuple[int, int, int, int, int]:
    """(violated, caught, clean, false_alarms, unscored_clean) at the threshold (score < threshold = violated).

    violated / clean: gold keys below / at or above the threshold; caught: violated keys the answer scores below it;
    false_alarms: clean keys the answer scores below it; unscored_clean: clean keys the answer gives no score.
    """
    violated = caught = clean = false_alarms = unscored_clean = 0
    for key in DIMENSIONS:
        score = parsed.scores.get(key)
        if int(gold[key]) < threshold:
            violated += 1
            caught += score is not None and score < threshold
        else:
            clean += 1
            false_alarms += score is not None and score < threshold
            unscored_clean += score is None
    return violated, caught, clean, false_alarms, unscored_clean


def detection_part(parsed: ParsedAnswer, gold: Mapping[str, int], threshold: int = VIOLATION_THRESHOLD) -> float:
    """1 - missed/violated - wrong/clean (see the module docstring): balanced violation detection in [-1, 1]."""
    violated, caught, clean, false_alarms, unscored_clean = detection_counts(parsed, gold, threshold)
    missed = (violated - caught) / violated if violated else 0.0
    wrong = (false_alarms + unscored_clean) / clean if clean else 0.0
    return 1.0 - missed - wrong


def _grams(text: str, n: int) -> Counter[str]:
    """Character n-grams of the text after NFKC, without whitespace, capped at MAX_REASONING_CHARS."""
    clean = "".join(unicodedata.normalize("NFKC", text[:MAX_REASONING_CHARS]).split())
    if len(clean) < n:
        return Counter([clean]) if clean else Counter()
    return Counter(clean[i : i + n] for i in range(len(clean) - n + 1))


def ngram_similarity(pred: str, gold: str, n: int = 2) -> float:
    """Dice similarity of character n-gram multisets: 2|A∩B| / (|A| + |B|); 0 when either text is empty."""
    a, b = _grams(pred, n), _grams(gold, n)
    size = sum(a.values()) + sum(b.values())
    if not a or not b:
        return 0.0
    return 2.0 * sum((a & b).values()) / size

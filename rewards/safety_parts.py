"""The four parts of the safety reward as small pure functions (rewards/safety.py weighs and adds them).

Ranges (each before its weight):
- ``format_part``: +1 when both blocks appear once, in order (recipes.safety.parse.check_format), else -1.
- ``keys_part``: (scored - unscored - min(extra, max_extra)) / 9, in [-1 - max_extra/9, +1] ([-2, +1] by default);
  an expected key is *scored* when it holds a valid score, *unscored* when it is missing, invalid or repeated.
- ``closeness_part``: the mean over the nine keys of: ``exact_bonus`` when the score equals the gold score, else
  -min(|score - gold|, gap_scale) / gap_scale (in [-1, 0)); an unscored key gives -1. In [-1, exact_bonus].
- ``ngram_similarity``: Dice coefficient of character n-gram multisets, in [0, 1] (1 for equal texts). The other
  reasoning scorers (embedding cosine, judge grade) map into the same [0, 1] in rewards/safety.py.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping

from recipes.safety.dimensions import DIMENSIONS
from recipes.safety.parse import ParsedAnswer

__all__ = [
    "MAX_REASONING_CHARS",
    "abs_errors",
    "closeness_part",
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


def closeness_part(
    parsed: ParsedAnswer, gold: Mapping[str, int], exact_bonus: float = 1.0, gap_scale: float = 20.0
) -> float:
    """Mean per-key closeness to the GOLD score (see the module docstring); unscored keys count -1."""
    errors = abs_errors(parsed, gold)
    total = 0.0
    for key in DIMENSIONS:
        err = errors.get(key)
        if err is None:
            total -= 1.0
        elif err == 0:
            total += exact_bonus
        else:
            total -= min(err, gap_scale) / gap_scale
    return total / _N_DIM


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

"""Rejection sampling's choice, as pure functions: per text, the best distinct answers at or above a threshold.

For each text (``text_id``), its generated answers are ranked by reward (ties: the earlier sample first); those
below the threshold are dropped, and so are empty ones (nothing to train on, whatever the threshold); an answer that
means the same as a better one (``meaning_key``: the nine scores the reward reads plus the normalized reasoning) is a
duplicate; the first ``keep`` distinct ones are kept, the rest are over the cap. Every answer ends in exactly one of
kept / below_threshold / empty / duplicate / over_cap, so the counts add up to the answers in.

Two renderings of one answer are one answer: the key order, ``"100"`` vs ``100``, indented vs compact JSON, a code
fence, a zero-width space, spacing, punctuation or full-width forms in the reasoning change nothing the next SFT round
would learn, and two copies of one answer would weigh it double.
"""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.parse import extract_answer, extract_reasoning, parse_answer, sanitize

__all__ = ["Scored", "Selection", "answer_key", "meaning_key", "saturated_texts", "select"]


@dataclass(frozen=True)
class Scored:
    """One generated answer with its reward."""

    text_id: int  # the row of the input parquet the answer is for
    sample: int  # its number among that row's n samples
    response: str
    score: float


@dataclass(frozen=True)
class Selection:
    """What select() kept (text order, best first within a text) and how many answers were dropped for what."""

    kept: tuple[Scored, ...]
    below_threshold: int
    empty: int
    duplicates: int
    over_cap: int

    @property
    def total(self) -> int:
        """Answers that went in."""
        return len(self.kept) + self.below_threshold + self.empty + self.duplicates + self.over_cap


def answer_key(response: str) -> str:
    """The text two answers are compared by for duplicates: capped (parse.sanitize), NFKC, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", sanitize(response)).split())


def _plain(text: str) -> str:
    """Text as compared for meaning: NFKC, case-folded, without whitespace, punctuation or invisible characters."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKC", text).casefold() if unicodedata.category(ch)[0] not in "PZC"
    )


def meaning_key(response: str) -> tuple[object, ...]:
    """What an answer says: its nine scores as the reward reads them (None when unscored) and its reasoning, plain.

    A response with neither block is keyed by its whole text, plain, so different free texts stay different.
    """
    text = sanitize(response)
    answer, reasoning = extract_answer(text), extract_reasoning(text)
    if answer is None and reasoning is None:
        return ("text", _plain(text))
    scores = parse_answer(answer).scores
    return ("answer", tuple(scores.get(k) for k in DIMENSIONS), _plain(reasoning or ""))


def _passes(score: float, threshold: float) -> bool:
    """At or above the threshold; a NaN reward never passes."""
    return not math.isnan(score) and score >= threshold


def select(answers: Iterable[Scored], threshold: float, keep: int) -> Selection:
    """Per text: the at most `keep` best distinct answers scoring >= threshold (see the module docstring)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    by_text: dict[int, list[Scored]] = defaultdict(list)
    for answer in answers:
        by_text[answer.text_id].append(answer)
    kept: list[Scored] = []
    below = empty = duplicates = over_cap = 0
    for text_id in sorted(by_text):
        ranked = sorted(by_text[text_id], key=lambda a: (-a.score if not math.isnan(a.score) else math.inf, a.sample))
        seen: set[tuple[object, ...]] = set()
        taken = 0
        for answer in ranked:
            if not _passes(answer.score, threshold):
                below += 1
                continue
            if not answer_key(answer.response):
                empty += 1
                continue
            key = meaning_key(answer.response)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if taken >= keep:
                over_cap += 1
                continue
            kept.append(answer)
            taken += 1
    return Selection(kept=tuple(kept), below_threshold=below, empty=empty, duplicates=duplicates, over_cap=over_cap)


def saturated_texts(answers: Iterable[Scored], threshold: float) -> set[int]:
    """Texts whose every answer passed the threshold: all n rewards high, so GRPO has little left to learn there."""
    passed: dict[int, bool] = {}
    for answer in answers:
        passed[answer.text_id] = passed.get(answer.text_id, True) and _passes(answer.score, threshold)
    return {text_id for text_id, ok in passed.items() if ok}

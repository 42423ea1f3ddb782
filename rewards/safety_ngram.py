"""The n-gram reasoning scorer: how much better a reasoning matches its own gold than the data set's other golds.

Plain n-gram overlap pays text that ignores the input: boilerplate that most gold reasonings share ("文本…内容正常，
不涉及风险"), or a list of the answer's own scores with the dimension names. Two steps take that away:

1. *Content n-grams* (``content_grams``): character n-grams (NFKC, whitespace and zero-width characters dropped) made
   of letters only, minus the n-grams of the prompt every answer is given (data/domains/safety/prompt.py: its
   instructions
   and the nine dimension names) and of a few words about scores (SCORE_WORDS: 得分, 扣分, …). Digits, punctuation,
   the prompt's own words and talk about the scores say nothing about the text under review.
2. *Against the data set* (``NgramReference``, reward kwarg ``ngram_reference``: the training data's gold
   reasonings): with s = Dice(reasoning, own gold) over content n-grams, F = the share of the reference's other
   reasonings that the reasoning matches strictly less than s, and the score is max(0, 2F - 1). A reasoning that
   ignores the input matches its own gold no better than the others, so F is at chance (1/2) on average and the score
   0; one about this text ranks its own gold first (F = 1, score 1). The gold reasoning itself scores 1: reference
   reasonings with the same content n-grams as the gold are left out.

Without a reference the score is s itself (step 1 only: boilerplate still earns something; the configs that use the
n-gram scorer set ``ngram_reference``). A gold with no content n-gram at all falls back to plain Dice over every
n-gram (rewards/safety_parts.ngram_similarity), so its gold response still scores 1. The score is rounded down to a
multiple of ``step``. Together: answers of one group that differ by punctuation, spacing, digits or restated scores
get the same reasoning part, and most that differ by a word do too, so GRPO's per-group normalisation does not blow a
difference of a few hundredths up to a full-size advantage.

Bounded work: the reasoning is cut at MAX_REASONING_CHARS before counting, and the reference holds at most
MAX_REFERENCE reasonings; a call touches each reference n-gram posting of the reasoning's distinct n-grams once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import GoldError, gold_from_ground_truth
from data.domains.safety.prompt import build_prompt
from rewards.safety_parts import MAX_REASONING_CHARS, ngram_similarity

__all__ = [
    "MAX_REFERENCE",
    "NgramReference",
    "NgramReferenceError",
    "SCORE_WORDS",
    "content_grams",
    "load_reference",
    "ngram_reasoning_score",
    "reference_paths",
]

MAX_REFERENCE = 4096
"""At most this many distinct reference reasonings are kept (the first by SHA-1 of the text: the same every run)."""

_REPO_ROOT = Path(__file__).resolve().parents[1]


class NgramReferenceError(ValueError):
    """An ngram_reference file that cannot be read; the message names the file and the line or row."""


def _clean(text: str) -> str:
    """NFKC, capped, without whitespace and invisible format characters (zero-width space, BOM, direction marks)."""
    text = unicodedata.normalize("NFKC", text[:MAX_REASONING_CHARS])
    return "".join(ch for ch in "".join(text.split()) if unicodedata.category(ch) != "Cf")


def _letter_grams(clean: str, n: int) -> list[str]:
    """The n-grams of clean whose every character is a letter (Unicode category L*)."""
    out, run = [], 0  # run: letters in a row ending at i
    for i, ch in enumerate(clean):
        run = run + 1 if unicodedata.category(ch)[0] == "L" else 0
        if run >= n:
            out.append(clean[i - n + 1 : i + 1])
    return out


SCORE_WORDS = ("得分", "扣分", "打分", "分值", "评分", "分数", "满分")
"""Words about the scores themselves, beside the prompt's own: a reasoning that restates its scores says nothing new."""


@functools.cache
def _prompt_grams(n: int) -> frozenset[str]:
    """The n-grams of the prompt every answer sees (its instructions, the nine dimension names) and of SCORE_WORDS."""
    prompt = "\n".join([*(message["content"] for message in build_prompt("")), *DIMENSIONS, *SCORE_WORDS])
    clean = _clean(prompt)
    return frozenset(clean[i : i + n] for i in range(len(clean) - n + 1))


def content_grams(text: str, n: int = 2) -> Counter[str]:
    """Letter-only character n-grams of the text (NFKC, no whitespace, capped) that the prompt does not supply."""
    return Counter(_content_grams(text[:MAX_REASONING_CHARS], n))


@functools.lru_cache(maxsize=1024)
def _content_grams(text: str, n: int) -> Counter[str]:
    """content_grams, memoized (read-only: the same answer is scored against several golds, e.g. in a search)."""
    template = _prompt_grams(n)
    return Counter(g for g in _letter_grams(_clean(text), n) if g not in template)


def _key(grams: Counter[str]) -> frozenset[tuple[str, int]]:
    return frozenset(grams.items())


@dataclass(frozen=True)
class NgramReference:
    """Content n-grams of the reference reasonings, with an inverted index (n-gram -> (reasoning, count))."""

    n: int
    sizes: tuple[int, ...]  # content n-grams per reasoning
    postings: dict[str, tuple[tuple[int, int], ...]] = field(repr=False)
    same: dict[frozenset[tuple[str, int]], int] = field(repr=False)  # how many reasonings have these n-grams

    @classmethod
    def build(cls, reasonings: Iterable[str], n: int = 2) -> NgramReference:
        """The reference of these reasonings (duplicates and reasonings without content n-grams left out)."""
        unique = sorted(set(reasonings), key=lambda t: hashlib.sha1(t.encode("utf-8", "replace")).hexdigest())
        sizes: list[int] = []
        postings: dict[str, list[tuple[int, int]]] = {}
        same: Counter[frozenset[tuple[str, int]]] = Counter()
        for text in unique:
            grams = content_grams(text, n)
            if not grams:
                continue
            if len(sizes) >= MAX_REFERENCE:
                break
            for gram, count in grams.items():
                postings.setdefault(gram, []).append((len(sizes), count))
            sizes.append(sum(grams.values()))
            same[_key(grams)] += 1
        return cls(n, tuple(sizes), {g: tuple(p) for g, p in postings.items()}, dict(same))

    def __len__(self) -> int:
        return len(self.sizes)


@functools.lru_cache(maxsize=4096)
def _gold_grams(gold: str, n: int) -> tuple[Counter[str], frozenset[tuple[str, int]]]:
    """Content n-grams of a gold reasoning (memoized: a GRPO group shares one gold)."""
    grams = _content_grams(gold[:MAX_REASONING_CHARS], n)
    return grams, _key(grams)


def _floor_to(value: float, step: float) -> float:
    """value rounded down to a multiple of step (step 0: unchanged); 1.0 stays 1.0."""
    if step <= 0:
        return value
    return min(1.0, math.floor(value / step + 1e-9) * step)


def ngram_reasoning_score(
    pred: str, gold: str, n: int = 2, reference: NgramReference | None = None, step: float = 0.0
) -> float:
    """The n-gram reasoning score in [0, 1] of pred against gold (see the module docstring)."""
    gold_grams, gold_key = _gold_grams(gold, n)
    if not gold_grams:
        return _floor_to(ngram_similarity(pred, gold, n), step)
    mine = _content_grams(pred[:MAX_REASONING_CHARS], n)
    if not mine:
        return 0.0
    size, gold_size = sum(mine.values()), sum(gold_grams.values())
    own = sum(min(count, gold_grams[g]) for g, count in mine.items() if g in gold_grams)
    if own == 0:
        return 0.0
    excluded = reference.same.get(gold_key, 0) if reference is not None else 0
    others = len(reference) - excluded if reference is not None else 0
    if reference is None or reference.n != n or others <= 0:
        return _floor_to(2.0 * own / (size + gold_size), step)
    overlap: dict[int, int] = {}
    for gram, count in mine.items():
        for doc, doc_count in reference.postings.get(gram, ()):
            overlap[doc] = overlap.get(doc, 0) + min(count, doc_count)
    # Dice(pred, doc) >= Dice(pred, gold)  <=>  overlap_doc * (size + gold_size) >= own * (size + size_doc), in
    # integers; the left-out reasonings equal the gold's n-grams, so they are among these and are taken off again.
    at_least = sum(1 for doc, ov in overlap.items() if ov * (size + gold_size) >= own * (size + reference.sizes[doc]))
    below = others - (at_least - excluded)
    return _floor_to(max(0.0, 2.0 * below / others - 1.0), step)


def _reasonings_of_parquet(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path), columns=["reward_model"])
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise NgramReferenceError(f"ngram_reference {path}: not a safety parquet with reward_model ({exc})") from exc
    out = []
    for row, value in enumerate(table.column("reward_model").to_pylist()):
        try:
            out.append(gold_from_ground_truth(str((value or {}).get("ground_truth"))).reasoning)
        except GoldError as exc:
            raise NgramReferenceError(f"ngram_reference {path}: row {row}: reward_model.ground_truth: {exc}") from exc
    return out


def _reasonings_of_jsonl(path: Path) -> list[str]:
    out = []
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise NgramReferenceError(f"ngram_reference {path}:{line_no}: not a JSON line ({exc})") from exc
            reasoning = record.get("reasoning") if isinstance(record, dict) else None
            if not isinstance(reasoning, str) or not reasoning.strip():
                raise NgramReferenceError(
                    f"ngram_reference {path}:{line_no}: field 'reasoning' must be a non-empty string"
                )
            out.append(reasoning.strip())
    return out


@functools.lru_cache(maxsize=16)
def load_reference(paths: tuple[str, ...], n: int = 2) -> NgramReference:
    """The reference of the gold reasonings in these files: prepared parquet files (reward_model.ground_truth) or
    JSONL records with a ``reasoning`` (data/samples/safety_*.jsonl); relative paths from the repository root."""
    reasonings: list[str] = []
    for name in paths:
        path = Path(name)
        if not path.is_absolute():
            path = _REPO_ROOT / path
        if not path.is_file():
            raise NgramReferenceError(
                f"ngram_reference {name}: no such file (the training data: a prepared train.parquet, or records .jsonl)"
            )
        reader = _reasonings_of_parquet if path.suffix == ".parquet" else _reasonings_of_jsonl
        reasonings += reader(path)
    reference = NgramReference.build(reasonings, n)
    if not len(reference):
        raise NgramReferenceError(f"ngram_reference {', '.join(paths)}: no reasoning with content n-grams")
    return reference


def reference_paths(value: object) -> tuple[str, ...]:
    """The ngram_reference kwarg as a tuple of paths: one path, or a list of them (as verl's data.train_files)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) or hasattr(value, "__iter__"):
        items = tuple(str(v) for v in value)  # type: ignore[union-attr]
        if items and all(item.strip() for item in items):
            return items
    raise ValueError(f"reward kwarg ngram_reference={value!r} must be a file path or a list of file paths")

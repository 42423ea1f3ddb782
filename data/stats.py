"""Counters for one data.prepare run: records read/kept/skipped by reason, items per split and task, label spread."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache
from typing import Any

from data.domains.legal.charges import is_known_charge
from data.sources.base import Case

__all__ = ["PrepareStats", "term_bucket"]

MAX_EXAMPLES = 5
TOP_N = 30
_known = lru_cache(maxsize=4096)(is_known_charge)  # charge names repeat in every split
_BUCKETS = ((0, "0"), (6, "1-6"), (12, "7-12"), (36, "13-36"), (120, "37-120"), (10**9, "121+"))


def term_bucket(case: Case) -> str:
    """Term as a coarse bucket: life / death / none / fixed months range ("1-6", "7-12", …)."""
    return _bucket(case.term.kind, case.term.months)


def _bucket(kind: str, months: int) -> str:
    """term_bucket of a term of this kind and months."""
    if kind != "fixed":
        return kind
    for upper, name in _BUCKETS:
        if months <= upper:
            return name
    return _BUCKETS[-1][1]


class PrepareStats:
    """Mutable counters; to_dict() is what stats.json holds."""

    def __init__(self) -> None:
        """Empty counters."""
        self.read = 0
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.unique_cases = 0
        self.cases: Counter[str] = Counter()
        self.items: dict[str, Counter[str]] = defaultdict(Counter)
        self.charges: dict[str, Counter[str]] = defaultdict(Counter)
        self.articles: dict[str, Counter[int]] = defaultdict(Counter)
        self.terms: dict[str, Counter[str]] = defaultdict(Counter)
        self.unknown_charges: Counter[str] = Counter()
        self.with_fine: Counter[str] = Counter()
        self.labels: dict[str, Counter[str]] = defaultdict(Counter)
        self.prompt_tokens: dict[str, Any] | None = None  # set by data.prepare --tokenizer
        self.splits: tuple[str, ...] = ("train", "test")  # data.prepare --sft-fraction adds "sft"
        self._legal: Counter[tuple] = Counter()  # add_case: (split, tasks, charges, articles, term, fined) -> cases

    def skip(self, reason: str, path: str, line: int, detail: str) -> None:
        """Count one skipped record (a few examples per reason keep file, line and detail)."""
        self.skipped[reason] += 1
        if len(self.examples[reason]) < MAX_EXAMPLES:
            self.examples[reason].append({"file": path, "line": line, "detail": detail})

    def add_case(self, case: Case, split: str, tasks: list[str]) -> None:
        """Count one written case and its items.

        Cases with the same labels are counted once, with their number, when the counters are read (_fold): the
        labels of a CAIL file repeat a lot, and the counters see the labels in the same first-seen order.
        """
        term = case.term
        self._legal[(split, tuple(tasks), case.charges, case.articles, term.kind, term.months, case.fine > 0)] += 1

    def _fold(self) -> None:
        """Add the cases counted by add_case to the counters, in the order their labels were first seen."""
        for (split, tasks, charges_, articles_, kind, months, fined), n in self._legal.items():
            self.cases[split] += n
            items, charges, articles = self.items[split], self.charges[split], self.articles[split]
            for task in tasks:
                items[task] += n
            for charge in charges_:
                charges[charge] += n
                if not _known(charge):
                    self.unknown_charges[charge] += n
            for article in articles_:
                articles[article] += n
            self.terms[split][_bucket(kind, months)] += n
            self.with_fine[split] += n * fined
        self._legal.clear()

    def add_labelled(self, split: str, tasks: list[str], labels: list[str]) -> None:
        """Count one written case of a non-legal source with its gold labels (e.g. the violated dimensions)."""
        self.cases[split] += 1
        self.items[split].update(tasks)
        self.labels[split].update(labels)

    @property
    def kept(self) -> int:
        """Records that passed validation and deduplication."""
        return self.unique_cases

    def to_dict(self, config: dict[str, Any], tasks: tuple[str, ...], quotas: dict[str, list[int]]) -> dict[str, Any]:
        """JSON-ready summary (keys sorted where they are data, so two runs give identical files)."""
        self._fold()
        splits = self.splits
        return {
            "config": config,
            "records": {"read": self.read, "kept": self.kept, "skipped": sum(self.skipped.values())},
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "skip_examples": {k: v for k, v in sorted(self.examples.items())},
            "cases": {
                "unique": self.unique_cases,
                **{s: self.cases[s] for s in splits},
                "unused": self.unique_cases - sum(self.cases[s] for s in splits),
            },
            "items": {s: {t: self.items[s][t] for t in tasks} for s in splits},
            "items_total": {s: sum(self.items[s].values()) for s in splits},
            "quotas": {s: dict(zip(tasks, quotas.get(s, []), strict=False)) for s in splits},
            "distributions": {
                s: {
                    "charges_top": dict(self.charges[s].most_common(TOP_N)),
                    "distinct_charges": len(self.charges[s]),
                    "articles_top": {str(a): n for a, n in self.articles[s].most_common(TOP_N)},
                    "distinct_articles": len(self.articles[s]),
                    "term": dict(sorted(self.terms[s].items())),
                    "cases_with_fine": self.with_fine[s],
                    "labels": dict(self.labels[s].most_common()),
                }
                for s in splits
            },
            "unknown_charges": dict(self.unknown_charges.most_common(TOP_N)),
            **({"prompt_tokens": self.prompt_tokens} if self.prompt_tokens is not None else {}),
        }

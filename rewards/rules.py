"""Rules-mode task scores (no judge): compare a predicted answer with the structured gold using recipes.legal.

Scores (issue 4, rules mode), one place:

- charge: predicted charges (``parse_charges``, every name the answer claims, unknown names included) as labels
  (``align_charges``: a partial form of a gold label is that label) vs gold labels: sets equal → +2; partly right
  → +1, which needs an overlap AND most of what the answer claims right (precision > 1/2: listing every label, or
  one right label among wrong extras, is not partly right); otherwise, or nothing readable → -2.
- article: the same on article numbers (``parse_articles``).
- term (``predicted_term`` / ``parse_term``; the maximum is 0, there is no bonus; a bare number is read as months
  only when the prompt fixes the unit: ``term_unit`` ``auto`` — our term instruction fixes it,
  ``data.domains.legal.tasks.fixes_months`` — or ``months`` — predictions made from another prompt that asked for
  months, ``evaluate --term-unit months``):
  - gold fixed, prediction fixed: -|Δ months| / 240 (拘役 vs 有期徒刑 of the same length counts as equal: months only);
  - gold fixed, prediction 免予刑事处罚 / 单处罚金: like a fixed term of 0 months, -gold_months / 240;
  - gold fixed, prediction life or death: -1;
  - gold life or death: kind equal → 0, else -1;
  - gold none (免予刑事处罚 or 单处罚金; CAIL codes it as 0 months, like recipes/legal/metrics.py): prediction
    none → 0, fixed → -months / 240, life or death → -1;
  - prediction unreadable (no term named at all — neither a penalty nor 免予刑事处罚 / a fine-only sentence),
    whatever the gold → -2.
- verdict: parts of ``parse_verdict`` (charges, principal penalty, fine) vs the gold parts: all three match → +2;
  charges at least partly right (as in the charge task) → +1; wrong charges → -2 whatever else matches (a wrong
  charge with no term and no fine "matched" a gold fine of 0 before). The term part matches only when the answer
  names a term (``find_term``; an answer naming none does not match a gold 免予刑事处罚). A verdict that names no
  charge at all is unreadable → -2. A missing fine matches a gold fine of 0.

``acc`` is 1 when the answer is fully correct (sets equal, term exact in kind and months, all verdict parts match).
``decides`` tells hybrid mode whether the rule is trusted: charge / article when the prediction parses into known
labels only (``is_known_charge`` / ``KNOWN_ARTICLES``); term always; verdict never (the judge compares meaning) —
except that a **listing** is decided (-2) in every task that names labels: a prediction that claims more labels than
the gold has, of which no reading of its unknown names makes more than half right. An unknown name is read at best
as another name of a gold label, a different one for each unknown name, so unknown names beyond the gold's count
are wrong whatever they say: no text can hand a listing to the judge (``is_listing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from data.domains.legal.articles import KNOWN_ARTICLES, parse_articles
from data.domains.legal.charges import (
    align_charges,
    canonical_charge,
    is_known_charge,
    normalize_charges,
    parse_charges,
)
from data.domains.legal.tasks import TASKS, fixes_months
from data.domains.legal.terms import Term, find_term, parse_term
from data.domains.legal.verdict import parse_fine, parse_verdict, verdict_body

__all__ = [
    "TASKS",
    "TERM_UNITS",
    "Gold",
    "RuleScore",
    "bare_months",
    "gold_from",
    "is_listing",
    "predicted_term",
    "score_article",
    "score_charge",
    "score_rules",
    "score_term",
    "score_verdict",
    "term_error_score",
]

MONTHS_SCALE = 240.0  # -(error months) / 240: a 20-year miss costs 1 point
TERM_UNITS: tuple[str, ...] = ("auto", "months")
"""The unit a term prompt fixed for a bare number: auto (what our term instruction asks, fixes_months), months."""


@dataclass(frozen=True)
class RuleScore:
    """A rules-mode result: the task score, whether the answer is fully correct, whether hybrid trusts the rule."""

    score: float
    acc: bool
    decides: bool


@dataclass(frozen=True)
class Gold:
    """Structured gold answer of one sample (fields a task does not need stay empty)."""

    text: str
    charges: tuple[str, ...] = ()
    articles: tuple[int, ...] = ()
    term: Term = Term("none")
    fine: int = 0


# ---------------------------------------------------------------------------------------------------- gold


def _as_list(value: Any, field: str, where: str) -> list[Any]:
    """A list from a list / tuple / numpy array (parquet gives arrays); a string or scalar is an error."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{where}: extra_info['{field}'] must be a list, got {type(value).__name__}: {value!r}")
    return list(value)


def _as_int(value: Any, field: str, where: str) -> int:
    """An int from int / numpy integer / integral float; bools and other types are errors."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: extra_info['{field}'] must be an integer, got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: extra_info['{field}'] must be an integer, got {value!r}") from exc
    if not as_float.is_integer():
        raise ValueError(f"{where}: extra_info['{field}'] must be an integer, got {value!r}")
    return int(as_float)


@lru_cache(maxsize=65536)
def _charges_of_text(text: str) -> tuple[str, ...]:
    return tuple(parse_charges(text))


@lru_cache(maxsize=65536)
def _articles_of_text(text: str) -> tuple[int, ...]:
    return tuple(parse_articles(text))


@lru_cache(maxsize=65536)
def _gold_charges(charges: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normalize_charges(charges))


@lru_cache(maxsize=65536)
def _canonical_set(charges: tuple[str, ...]) -> frozenset[str]:
    """Charges as labels: a partial selective form counts as its full label (贩卖毒品罪 → the drug umbrella label)."""
    return frozenset(canonical_charge(c) for c in charges)


def gold_from(task: str, ground_truth: str, extra_info: Mapping[str, Any] | None) -> Gold:
    """The gold of one sample for `task`: structured fields from extra_info (data/prepare.py), else parsed text.

    Raises ValueError (naming the sample) when the gold is malformed or has nothing to compare with — such rows
    must be filtered out in data/, never scored.
    """
    info = extra_info or {}
    text = ground_truth if isinstance(ground_truth, str) else ("" if ground_truth is None else str(ground_truth))
    where = f"gold of legal/{task} sample index={info.get('index', '?')}"
    charges: tuple[str, ...] = ()
    articles: tuple[int, ...] = ()
    term = Term("none")
    fine = 0
    if task in ("charge", "verdict"):
        if info.get("charges") is not None:
            charges = _gold_charges(tuple(str(c) for c in _as_list(info["charges"], "charges", where)))
        else:
            charges = _charges_of_text(text)
        if not charges:
            raise ValueError(f"{where}: no charge in extra_info['charges'] nor in ground_truth {text[:80]!r}")
    if task == "article":
        if info.get("articles") is not None:
            articles = tuple(
                sorted({_as_int(a, "articles", where) for a in _as_list(info["articles"], "articles", where)})
            )
        else:
            articles = _articles_of_text(text)
        if not articles:
            raise ValueError(f"{where}: no article in extra_info['articles'] nor in ground_truth {text[:80]!r}")
    if task in ("term", "verdict"):
        if info.get("term_kind") is not None:
            kind = str(info["term_kind"])
            months = _as_int(info.get("term_months") or 0, "term_months", where) if kind == "fixed" else 0
            try:
                term = Term(kind, months)  # type: ignore[arg-type]
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from exc
        else:
            term = parse_term(text)
    if task == "verdict":
        if info.get("fine") is not None:
            fine = _as_int(info["fine"], "fine", where)
        else:
            fine = parse_fine(text) or 0
    return Gold(text=text, charges=charges, articles=articles, term=term, fine=fine)


# ---------------------------------------------------------------------------------------------------- scores


def _set_score(pred: set[Any], gold: set[Any]) -> tuple[float, bool]:
    """+2 equal; +1 overlap with most of the prediction right (precision > 1/2); else -2 (also for nothing)."""
    if pred and pred == gold:
        return 2.0, True
    if 2 * len(pred & gold) > len(pred):
        return 1.0, False
    return -2.0, False


def _pred_labels(pred: tuple[str, ...], gold: Gold) -> set[str]:
    """Predicted names as labels, aligned with the gold labels (a partial form of a gold label is that label)."""
    return set(align_charges(pred, _canonical_set(gold.charges)))


def is_listing(right: int, wrong: int, unknown: int, gold: int) -> bool:
    """Whether a prediction is a listing: more claims than gold labels, and at most half of them right at best.

    right / wrong: claimed known labels in / not in the gold; unknown: claimed names that are no known label, each
    read at best as another name of a gold label, a different one for each (the missing ones first, then those
    already named, which adds nothing); unknown names beyond the gold's count are wrong.
    """
    best_right = right + min(unknown, max(0, gold - right))
    best_wrong = wrong + max(0, unknown - gold)
    return right + wrong + unknown > gold and best_right <= best_wrong


def _charges_listing(labels: set[str], gold: Gold) -> bool:
    """is_listing for predicted charge labels (aligned) against the gold charges."""
    gold_labels = _canonical_set(gold.charges)
    others = labels - gold_labels
    unknown = sum(1 for label in others if not is_known_charge(label))
    return is_listing(len(labels & gold_labels), len(others) - unknown, unknown, len(gold_labels))


def score_charge(answer: str, gold: Gold) -> RuleScore:
    """Charge task: normalized charge sets; the rule decides when every predicted charge is a known label, or when
    the prediction is a listing."""
    pred = _charges_of_text(answer)
    labels = _pred_labels(pred, gold)
    score, acc = _set_score(labels, set(_canonical_set(gold.charges)))
    known = all(is_known_charge(c) for c in pred)
    return RuleScore(score, acc, bool(pred) and (known or _charges_listing(labels, gold)))


def score_article(answer: str, gold: Gold) -> RuleScore:
    """Article task: article-number sets; the rule decides when every predicted number is a known article, or when
    the prediction is a listing."""
    pred = set(_articles_of_text(answer))
    gold_set = set(gold.articles)
    score, acc = _set_score(pred, gold_set)
    unknown = len({a for a in pred - gold_set if a not in KNOWN_ARTICLES})
    listing = is_listing(len(pred & gold_set), len(pred - gold_set) - unknown, unknown, len(gold_set))
    return RuleScore(score, acc, bool(pred) and (all(a in KNOWN_ARTICLES for a in pred) or listing))


def term_error_score(pred: Term, gold: Term, pred_named: bool = True) -> tuple[float, bool]:
    """(score, acc) of a predicted principal penalty against the gold (see the module docstring)."""
    if pred.kind == "none" and not pred_named:
        return -2.0, False
    if gold.kind in ("life", "death"):
        return (0.0, True) if pred.kind == gold.kind else (-1.0, False)
    if pred.kind in ("life", "death"):
        return -1.0, False
    gold_months = gold.months if gold.kind == "fixed" else 0
    pred_months = pred.months if pred.kind == "fixed" else 0
    error = abs(pred_months - gold_months)
    return -error / MONTHS_SCALE, error == 0 and pred.kind == gold.kind


def bare_months(term_unit: str = "auto") -> bool:
    """Whether a bare number as the whole term answer is that many months under term_unit (one of TERM_UNITS)."""
    if term_unit not in TERM_UNITS:
        raise ValueError(f"term unit {term_unit!r}: expected one of {', '.join(TERM_UNITS)}")
    return term_unit == "months" or fixes_months("term")


def predicted_term(answer: str, term_unit: str = "auto") -> Term | None:
    """The term a term-task answer names (find_term; a bare number is months only when the prompt fixed months)."""
    return find_term(answer, bare_months=bare_months(term_unit))


def score_term(answer: str, gold: Gold, term_unit: str = "auto") -> RuleScore:
    """Term task: parse_term on the answer vs the gold term; rules always decide."""
    pred = predicted_term(answer, term_unit)  # None: names no term (unreadable), unlike 免予刑事处罚 / 单处罚金
    score, acc = term_error_score(pred or Term("none"), gold.term, pred is not None)
    return RuleScore(score, acc, True)


def score_verdict(answer: str, gold: Gold) -> RuleScore:
    """Verdict task: charges, principal penalty and fine each match or not; the judge decides in hybrid mode, except
    for a verdict whose charges are a listing (-2)."""
    parts = parse_verdict(answer)
    if not parts.charges:
        return RuleScore(-2.0, False, False)
    labels = _pred_labels(tuple(parts.charges), gold)
    charge_score, _ = _set_score(labels, set(_canonical_set(gold.charges)))
    if charge_score < 0:  # a wrong charge is a wrong verdict, whatever the term and fine
        return RuleScore(-2.0, False, _charges_listing(labels, gold))
    named = find_term(verdict_body(answer)) is not None
    matches = (
        charge_score == 2.0,
        named and (parts.term.kind, parts.term.months) == (gold.term.kind, gold.term.months),
        (parts.fine or 0) == (gold.fine or 0),
    )
    if all(matches):
        return RuleScore(2.0, True, False)
    return RuleScore(1.0, False, False)


_SCORERS = {"charge": score_charge, "article": score_article, "term": score_term, "verdict": score_verdict}


def score_rules(task: str, answer: str, gold: Gold, term_unit: str = "auto") -> RuleScore:
    """Rules-mode score of `answer` for `task` (one of TASKS); term_unit: what a bare term number is (TERM_UNITS)."""
    try:
        scorer = _SCORERS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}") from None
    return score_term(answer, gold, term_unit) if task == "term" else scorer(answer, gold)

"""CAIL2018 records (fact + meta) → validated Case; every defect raises SkipRecord with a reason code."""

from __future__ import annotations

from typing import Any

from data.sources.base import Case, SkipRecord, require
from recipes.legal.articles import KNOWN_ARTICLES
from recipes.legal.charges import normalize_charges
from recipes.legal.terms import Term, term_from_cail
from recipes.legal.verdict import build_verdict

__all__ = ["parse_record"]


def _int_list(meta: dict[str, Any], key: str) -> list[int]:
    """meta[key] as a list of ints (bools and numeric strings rejected)."""
    values = require(meta, key, list, "meta")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int):
            raise SkipRecord("wrong_type", f"field 'meta.{key}[{i}]' must be int, got {type(v).__name__} {v!r:.40}")
    return values


def _str_list(meta: dict[str, Any], key: str) -> list[str]:
    """meta[key] as a list of strings."""
    values = require(meta, key, list, "meta")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise SkipRecord("wrong_type", f"field 'meta.{key}[{i}]' must be str, got {type(v).__name__} {v!r:.40}")
    return values


def _term(meta: dict[str, Any]) -> Term:
    """meta.term_of_imprisonment checked field by field, then read with term_from_cail."""
    raw = require(meta, "term_of_imprisonment", dict, "meta")
    where = "meta.term_of_imprisonment"
    death = require(raw, "death_penalty", bool, where)
    life = require(raw, "life_imprisonment", bool, where)
    months = require(raw, "imprisonment", int, where)
    if death and life:
        raise SkipRecord("invalid_value", f"{where}: death_penalty and life_imprisonment are both true")
    if months < 0 or months > 600:
        raise SkipRecord("invalid_value", f"field '{where}.imprisonment' must be 0..600 months, got {months}")
    try:
        return term_from_cail(raw)
    except ValueError as exc:
        raise SkipRecord("invalid_value", f"{where}: {exc}") from exc


def parse_record(obj: Any, origin: str, scan: bool = False) -> Case:
    """One decoded CAIL2018 JSON object → Case; origin ("file:line") becomes the case_id.

    scan=True validates only and leaves Case.verdict empty (the canonical sentence is built when rows are written).
    """
    if not isinstance(obj, dict):
        raise SkipRecord("not_an_object", f"record must be a JSON object, got {type(obj).__name__}")
    fact = require(obj, "fact", str, "").strip()
    if not fact:
        raise SkipRecord("empty_fact", "field 'fact' is empty")
    meta = require(obj, "meta", dict, "")
    accusation = _str_list(meta, "accusation")
    articles = _int_list(meta, "relevant_articles")
    fine = require(meta, "punish_of_money", int, "meta")
    criminals = _str_list(meta, "criminals")
    term = _term(meta)

    names = [c.strip() for c in criminals if c.strip()]
    if not names:
        raise SkipRecord("no_defendant", "field 'meta.criminals' names no defendant")
    if len(set(names)) > 1:
        raise SkipRecord("multiple_defendants", f"field 'meta.criminals' names {len(set(names))} defendants")
    if fine < 0:
        raise SkipRecord("invalid_value", f"field 'meta.punish_of_money' must be >= 0, got {fine}")
    charges = normalize_charges(accusation)
    if not charges:
        raise SkipRecord("empty_label", "field 'meta.accusation' has no charge")
    if not articles:
        raise SkipRecord("empty_label", "field 'meta.relevant_articles' has no article")
    unknown = sorted({a for a in articles if a not in KNOWN_ARTICLES})
    if unknown:
        raise SkipRecord("invalid_value", f"field 'meta.relevant_articles' has unknown article(s) {unknown}")
    return Case(
        case_id=origin,
        fact=fact,
        defendant=names[0],
        charges=tuple(charges),
        articles=tuple(sorted(set(articles))),
        term=term,
        fine=fine,
        verdict="" if scan else build_verdict(names[0], charges, term, fine),
    )

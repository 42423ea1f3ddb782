"""CAIL2018 records (fact + meta) → validated Case; every defect raises SkipRecord with a reason code."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from data.domains.legal.articles import KNOWN_ARTICLES
from data.domains.legal.charges import normalize_charges
from data.domains.legal.terms import Term, term_from_cail
from data.domains.legal.verdict import build_verdict
from data.sources.base import Case, SkipRecord, require, show

__all__ = ["MAX_FINE", "parse_record", "parse_rows_line", "parse_scan_line"]

MAX_FINE = 10**12
"""Largest fine accepted, in yuan (一万亿元: far above any real fine; the verdict's Chinese numerals and the int64
parquet column both hold it)."""


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
        raise SkipRecord("invalid_value", f"field '{where}.imprisonment' must be 0..600 months, got {show(months)}")
    try:
        return term_from_cail(raw)
    except ValueError as exc:
        raise SkipRecord("invalid_value", f"{where}: {exc}") from exc


@lru_cache(maxsize=4096)
def _cached_term(death: bool, life: bool, months: int) -> Term:
    """term_from_cail of a well-formed term (Term is immutable, so equal terms share one object)."""
    return term_from_cail({"death_penalty": death, "life_imprisonment": life, "imprisonment": months})


@lru_cache(maxsize=65536)
def _cached_charges(accusation: tuple[str, ...]) -> tuple[str, ...]:
    """normalize_charges of one accusation list."""
    return tuple(normalize_charges(accusation))


@lru_cache(maxsize=65536)
def _cached_verdict(name: str, charges: tuple[str, ...], death: bool, life: bool, months: int, fine: int) -> str:
    """build_verdict of one (defendant, charges, term, fine): CAIL names (张某, 李某某) and round fines repeat a lot.

    Keyed by the term's fields, not the Term (its dataclass hash runs in Python).
    """
    return build_verdict(name, list(charges), _cached_term(death, life, months), fine)


def _fast(obj: Any, origin: str, scan: bool) -> Case | None:
    """The Case of a well-formed record, about 3x faster than the checks below; None sends it down the full path.

    It accepts only what _parse accepts and builds the same Case: every doubtful record takes the full path, which
    either accepts it the same way or says what is wrong with it.
    """
    if type(obj) is not dict:
        return None
    fact, meta = obj.get("fact"), obj.get("meta")
    if type(fact) is not str or type(meta) is not dict:
        return None
    accusation, articles, fine = meta.get("accusation"), meta.get("relevant_articles"), meta.get("punish_of_money")
    criminals, raw = meta.get("criminals"), meta.get("term_of_imprisonment")
    if type(accusation) is not list or type(articles) is not list or type(criminals) is not list:
        return None
    if type(fine) is not int or not 0 <= fine <= MAX_FINE or type(raw) is not dict or len(criminals) != 1:
        return None
    death, life, months = raw.get("death_penalty"), raw.get("life_imprisonment"), raw.get("imprisonment")
    if type(death) is not bool or type(life) is not bool or type(months) is not int or not 0 <= months <= 600:
        return None
    if (death and life) or not articles:
        return None
    for a in articles:  # plain loops: cheaper than all() over a generator for the one or two labels of a case
        if type(a) is not int or a not in KNOWN_ARTICLES:
            return None
    for c in accusation:
        if type(c) is not str:
            return None
    name = criminals[0]
    if type(name) is not str:
        return None
    fact, name = fact.strip(), name.strip()
    charges = _cached_charges(tuple(accusation))
    if not fact or not name or not charges:
        return None
    term = _cached_term(death, life, months)
    arts = (articles[0],) if len(articles) == 1 else tuple(sorted(set(articles)))
    # positional: the field order of Case (case_id, fact, defendant, charges, articles, term, fine, verdict)
    return Case(
        origin,
        fact,
        name,
        charges,
        arts,
        term,
        fine,
        "" if scan else _cached_verdict(name, charges, death, life, months, fine),
    )


class _Term(msgspec.Struct):
    """meta.term_of_imprisonment as both passes decode it (parse_scan_line, parse_rows_line)."""

    death_penalty: bool
    life_imprisonment: bool
    imprisonment: int


class _Meta(msgspec.Struct):
    """meta as both passes decode it (other fields are skipped)."""

    accusation: list[str]
    relevant_articles: list[int]
    punish_of_money: int
    criminals: list[str]
    term_of_imprisonment: _Term


class _Record(msgspec.Struct):
    """A CAIL2018 line as pass 2 decodes it: the fact left as its raw JSON string, never decoded."""

    fact: msgspec.Raw
    meta: _Meta


class _ScanRecord(msgspec.Struct):
    """A CAIL2018 line as pass 1 decodes it."""

    fact: str
    meta: _Meta


_decode_for_rows = msgspec.json.Decoder(_Record).decode
_decode_for_scan = msgspec.json.Decoder(_ScanRecord).decode
_ASCII_SPACE = frozenset(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")  # the ASCII characters str.isspace() accepts
# UTF-8 lead bytes of the other characters str.isspace() accepts (U+0085, U+00A0, U+1680, U+2000..U+205F, U+3000)
_SPACE_LEADS = frozenset(b"\xc2\xe1\xe2\xe3")


def _stripped_utf8(raw_fact: msgspec.Raw) -> bytes | None:
    """The UTF-8 bytes of a raw JSON string equal to its decoded, stripped text; None when that needs decoding (an
    escape, whitespace at either end, empty, not a string)."""
    view = memoryview(raw_fact)
    if len(view) < 3 or view[0] != 0x22:  # 0x22: '"' (a string, not empty)
        return None
    text = view[1:-1].tobytes()
    if b"\\" in text:
        return None
    first, last = text[0], text[-1]
    if first in _ASCII_SPACE or last in _ASCII_SPACE:
        return None
    # a non-ASCII space starts with one of _SPACE_LEADS and is 2 (C2 ..) or 3 bytes long: decode only then
    if first in _SPACE_LEADS and text[:3].decode("utf-8", "ignore")[:1].isspace():
        return None
    if last >= 0x80 and not _SPACE_LEADS.isdisjoint(text[-3:-1]) and text[-3:].decode("utf-8", "ignore")[-1:].isspace():
        return None
    return text


def _typed_case(meta: _Meta, origin: str, fact: str, scan: bool) -> Case | None:
    """The Case _fast builds from a typed-decoded meta (the types msgspec checked), or None where _fast gives none."""
    articles, fine, criminals = meta.relevant_articles, meta.punish_of_money, meta.criminals
    term = meta.term_of_imprisonment
    death, life, months = term.death_penalty, term.life_imprisonment, term.imprisonment
    if not 0 <= fine <= MAX_FINE or len(criminals) != 1 or not 0 <= months <= 600 or (death and life) or not articles:
        return None
    if not KNOWN_ARTICLES.issuperset(articles):
        return None
    name = criminals[0].strip()
    charges = _cached_charges(tuple(meta.accusation))
    if not name or not charges:
        return None
    arts = (articles[0],) if len(articles) == 1 else tuple(sorted(set(articles)))
    verdict = "" if scan else _cached_verdict(name, charges, death, life, months, fine)
    return Case(origin, fact, name, charges, arts, _cached_term(death, life, months), fine, verdict)


def parse_scan_line(raw: bytes, origin: str) -> Case | None:
    """Pass 1's path: parse_record(decode_record(raw), origin, scan=True) of a well-formed line, or None (then the
    caller takes that full path, which accepts or refuses the line with its reason).

    A typed decode checks the field types in C and skips the fields no task uses; the value checks are _fast's.
    """
    try:
        record = _decode_for_scan(raw)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    fact = record.fact.strip()
    return _typed_case(record.meta, origin, fact, scan=True) if fact else None


def parse_rows_line(raw: bytes | memoryview, origin: str) -> tuple[Case, bytes] | None:
    """Pass 2's path for a line pass 1 accepted, unchanged since: (its Case with an empty fact, the fact's UTF-8).

    The same Case as parse_record(decode_record(raw), origin) except for the fact, which is never decoded to text
    and encoded back (it goes into the prompts as UTF-8). None for any record that _fast would not build as is
    (then the caller takes the full path).
    """
    try:
        record = _decode_for_rows(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    fact = _stripped_utf8(record.fact)
    if fact is None:
        return None
    case = _typed_case(record.meta, origin, "", scan=False)
    return None if case is None else (case, fact)


def parse_record(obj: Any, origin: str, scan: bool = False) -> Case:
    """One decoded CAIL2018 JSON object → Case; origin ("file:line") becomes the case_id.

    scan=True validates only and leaves Case.verdict empty (the canonical sentence is built when rows are written).
    """
    return _fast(obj, origin, scan) or _parse(obj, origin, scan)


def _parse(obj: Any, origin: str, scan: bool) -> Case:
    """parse_record with every check, each defect raising SkipRecord with its reason."""
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
    if not 0 <= fine <= MAX_FINE:
        raise SkipRecord("invalid_value", f"field 'meta.punish_of_money' must be 0..{MAX_FINE} yuan, got {show(fine)}")
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

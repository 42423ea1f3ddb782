"""Input sources for data.prepare: each turns one decoded JSON record into a Case or raises SkipRecord."""

from __future__ import annotations

from collections.abc import Callable

from data.sources.base import Case, SkipRecord

__all__ = ["SOURCES", "Case", "Parser", "SkipRecord", "get_parser"]

Parser = Callable[..., Case]
"""parse_record(obj, origin, scan=False) -> Case; origin is "file:line"; scan=True may skip gold text not needed to
validate (pass 1 of data.prepare)."""

SOURCES: tuple[str, ...] = ("cail2018", "judgments")


def get_parser(source: str) -> Parser:
    """The record parser of a source name (imported lazily, so one source's dependencies never block the other)."""
    if source == "cail2018":
        from data.sources.cail2018 import parse_record
    elif source == "judgments":
        from data.sources.judgments import parse_record
    else:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return parse_record

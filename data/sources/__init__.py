"""Input sources for data.prepare: each turns one decoded JSON record into a case or raises SkipRecord.

A source also says how its cases become verl rows (``Source``): the legal sources share data.rows and the legal
tasks; the safety source brings its own rows, schema and task. data.prepare asks ``get_source(name)`` for all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from data.sources.base import Case, SkipRecord

__all__ = ["SOURCES", "Case", "Parser", "SkipRecord", "Source", "get_parser", "get_source"]

Parser = Callable[..., Any]
"""parse_record(obj, origin, scan=False) -> case; origin is "file:line"; scan=True may skip gold text not needed to
validate (pass 1 of data.prepare). A case has `.fact`: the text deduplicated and split by."""

SOURCES: tuple[str, ...] = ("cail2018", "judgments", "safety")


@dataclass(frozen=True)
class Source:
    """What data.prepare needs from a source: the record parser and how a case becomes rows and stats."""

    name: str
    parse_record: Parser
    build_rows: Callable[[Any, Sequence[str], str, str, int], list[dict[str, Any]]]
    row_schema: Any  # pyarrow.Schema
    tasks: tuple[str, ...]
    templates: tuple[str, ...]
    default_template: str
    count_case: Callable[[Any, Any, str, list[str]], None]  # (PrepareStats, case, split, tasks)
    row_batch: Callable[[str], Any]  # template -> empty batch with .add(case, tasks, split, index), .rows, .table()
    counts_prompt_tokens: bool = False  # data.prepare --tokenizer renders this source's prompts (data.tokens)
    sft_response: Callable[[Any], str] | None = None  # case -> gold response for --sft-fraction; None: GRPO only
    # pass 2: (raw line, origin) -> (case without its fact text, the fact's UTF-8) or None (then parse_record)
    parse_rows_line: Callable[[Any, str], tuple[Any, bytes] | None] | None = None
    # pass 1: (raw line, origin) -> parse_record(decode_record(line), origin, scan=True), or None (then that)
    parse_scan_line: Callable[[bytes, str], Any] | None = None


def get_parser(source: str) -> Parser:
    """The record parser of a source name (imported lazily, so one source's dependencies never block the other)."""
    return get_source(source).parse_record


def get_source(source: str) -> Source:
    """Everything data.prepare uses of one source (imported lazily)."""
    if source == "safety":
        from data.sources import safety

        return Source(
            name=source,
            parse_record=safety.parse_record,
            build_rows=safety.build_rows,
            row_schema=safety.ROW_SCHEMA,
            tasks=safety.TASKS,
            templates=safety.TEMPLATES,
            default_template=safety.DEFAULT_TEMPLATE,
            count_case=lambda stats, case, split, tasks: stats.add_labelled(split, tasks, safety.case_labels(case)),
            row_batch=lambda template: PylistBatch(safety.build_rows, safety.ROW_SCHEMA, template),
            sft_response=safety.sft_response,
        )
    parse_rows_line = parse_scan_line = None
    if source == "cail2018":
        from data.sources.cail2018 import parse_record, parse_rows_line, parse_scan_line
    elif source == "judgments":
        from data.sources.judgments import parse_record
    else:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    from data.domains.legal.tasks import TASKS, TEMPLATES
    from data.rows import ROW_SCHEMA, RowBatch, build_rows
    from data.stats import PrepareStats

    return Source(
        name=source,
        parse_record=parse_record,
        build_rows=build_rows,
        row_schema=ROW_SCHEMA,
        tasks=TASKS,
        templates=TEMPLATES,
        default_template="base",
        count_case=PrepareStats.add_case,  # (stats, case, split, tasks): no lambda layer, once per case
        row_batch=RowBatch,
        counts_prompt_tokens=True,
        parse_rows_line=parse_rows_line,
        parse_scan_line=parse_scan_line,
    )


class PylistBatch:
    """Rows of a source's build_rows collected as dicts and turned into one pyarrow Table (the simple path)."""

    def __init__(self, build_rows: Callable[..., list[dict[str, Any]]], schema: Any, template: str) -> None:
        """An empty batch whose rows come from build_rows(case, tasks, template, split, first_index)."""
        self._build_rows, self._schema, self.template = build_rows, schema, template
        self._items: list[dict[str, Any]] = []

    @property
    def rows(self) -> int:
        """Rows collected so far."""
        return len(self._items)

    def add(self, case: Any, tasks: Sequence[str], split: str, first_index: int) -> None:
        """Append the rows of one case."""
        self._items.extend(self._build_rows(case, tasks, self.template, split, first_index))

    def table(self) -> Any:
        """The collected rows as a pyarrow Table of the source's schema."""
        import pyarrow as pa

        return pa.Table.from_pylist(self._items, schema=self._schema)

    def clear(self) -> None:
        """Drop every collected row."""
        self._items.clear()

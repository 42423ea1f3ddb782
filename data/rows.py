"""verl rows for one case (one per task) and the explicit parquet schema every row follows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from data.domains.legal.tasks import build_prompt, data_source
from data.domains.legal.terms import Term, format_term
from data.sources.base import Case

__all__ = [
    "FINE_ONLY",
    "ROW_SCHEMA",
    "RowBatch",
    "build_rows",
    "format_articles",
    "format_charges",
    "ground_truth",
    "term_text",
]

ROW_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("task", pa.string()),
                    ("charges", pa.list_(pa.string())),
                    ("articles", pa.list_(pa.int64())),
                    ("term_kind", pa.string()),
                    ("term_months", pa.int64()),
                    ("fine", pa.int64()),
                    ("verdict", pa.string()),
                    ("split", pa.string()),
                    ("case_id", pa.string()),
                ]
            ),
        ),
    ]
)
"""The row contract (issue 3): same column types in every row and every file."""


def format_charges(charges: Sequence[str]) -> str:
    """Charge gold text: "盗窃罪、诈骗罪"."""
    return "、".join(charges)


def format_articles(articles: Sequence[int]) -> str:
    """Article gold text, Arabic numerals in ascending order: "第67条、第264条"."""
    return "、".join(f"第{a}条" for a in articles)


FINE_ONLY = "单处罚金"
"""Term gold of a sentence with a fine and no principal penalty (format_term would say 免予刑事处罚, which is wrong)."""


def term_text(case: Case) -> str:
    """Term gold text: format_term, except a fine-only sentence (kind none, fine > 0) reads 单处罚金."""
    if case.term.kind == "none" and case.fine > 0:
        return FINE_ONLY
    return format_term(case.term)


def ground_truth(case: Case, task: str) -> str:
    """The gold answer of one task as the text the judge reads."""
    if task == "charge":
        return format_charges(case.charges)
    if task == "article":
        return format_articles(case.articles)
    if task == "term":
        return term_text(case)
    if task == "verdict":
        return case.verdict
    raise ValueError(f"unknown task {task!r}")


def build_rows(case: Case, tasks: Sequence[str], template: str, split: str, first_index: int) -> list[dict[str, Any]]:
    """One row per task for this case; extra_info.index counts rows within the split from first_index."""
    rows = []
    for offset, task in enumerate(tasks):
        rows.append(
            {
                "data_source": data_source(task),
                "prompt": build_prompt(task, case.fact, template),
                "ability": "legal",
                "reward_model": {"style": "rule", "ground_truth": ground_truth(case, task)},
                "extra_info": {
                    "index": first_index + offset,
                    "task": task,
                    "charges": list(case.charges),
                    "articles": list(case.articles),
                    "term_kind": case.term.kind,
                    "term_months": case.term.months,
                    "fine": case.fine,
                    "verdict": case.verdict,
                    "split": split,
                    "case_id": case.case_id,
                },
            }
        )
    return rows


_MARK = "\ue000"  # a private-use character standing in for the facts when a prompt is split into its parts


@lru_cache(maxsize=64)
def _prompt_parts(task: str, template: str) -> tuple[tuple[str, str, str, bool], ...] | None:
    """build_prompt(task, fact, template) as (role, before, after, holds the facts) per message, or None when the
    prompt is not "fixed text + stripped facts + fixed text" (then rows are built with build_prompt itself)."""
    parts = []
    for message in build_prompt(task, _MARK, template):
        pieces = message["content"].split(_MARK)
        if len(pieces) > 2 or _MARK in message["role"]:
            return None
        parts.append((message["role"], pieces[0], pieces[-1] if len(pieces) == 2 else "", len(pieces) == 2))
    return tuple(parts)


Layout = tuple[tuple[bytes, ...], tuple[str, ...], tuple[tuple[int, int], ...], tuple[int, ...]]


@lru_cache(maxsize=256)
def _layout(tasks: tuple[str, ...], template: str) -> Layout | None:
    """The messages of one case's rows for these tasks, their texts being fact.join(chunks) in UTF-8.

    (chunks, roles, per message (its end in the joined bytes without the facts, facts before that end), messages per
    task), or None when a task's prompt has no fixed parts (see _prompt_parts).
    """
    chunks, roles, ends, counts = [b""], [], [], []
    fixed, facts = 0, 0
    for task in tasks:
        parts = _prompt_parts(task, template)
        if parts is None:
            return None
        counts.append(len(parts))
        for role, head, tail, holds_fact in parts:
            head_b, tail_b = head.encode("utf-8"), tail.encode("utf-8")
            chunks[-1] += head_b
            if holds_fact:
                chunks.append(tail_b)
                facts += 1
            fixed += len(head_b) + len(tail_b)
            roles.append(role)
            ends.append((fixed, facts))
    return tuple(chunks), tuple(roles), tuple(ends), tuple(counts)


@lru_cache(maxsize=65536)
def _fixed_golds(charges: tuple[str, ...], articles: tuple[int, ...], term_gold: str) -> dict[str, bytes]:
    """The UTF-8 gold texts of the charge, article and term tasks (charges and articles repeat a lot)."""
    golds = {"charge": format_charges(charges), "article": format_articles(articles), "term": term_gold}
    return {task: text.encode("utf-8") for task, text in golds.items()}


def _term_gold(term: Term, fined: bool) -> str:
    """term_text of a case with this term and a fine (fined) or none (cached by the term's fields: Term's own
    dataclass hash runs in Python)."""
    key = (term.kind, term.months, term.penalty, fined)
    gold = _TERM_GOLDS.get(key)
    if gold is None:
        gold = _TERM_GOLDS[key] = FINE_ONLY if term.kind == "none" and fined else format_term(term)
    return gold


_TERM_GOLDS: dict[tuple[str, int, str, bool], str] = {}  # as many as distinct terms (CAIL: months 0..600)


def _strings(values: list[str]) -> pa.Array:
    """pa.array(values, pa.string()) built from its buffers.

    pa.array over a Python list asks pandas whether the list is array-like, which imports pandas (about 0.35 s, half
    of data.prepare's start-up) though no pandas object is ever involved.
    """
    return _utf8_array([v.encode("utf-8") for v in values])


def _utf8_array(data: list[bytes]) -> pa.Array:
    """A pa.string() array of these UTF-8 texts (see _strings)."""
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError(f"a string column of one write batch takes {offsets[-1]} bytes, past 2 GiB")
    buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.string(), len(data), buffers)


def _constant(text: str, n: int) -> pa.Array:
    """pa.repeat(text, n) without a pyarrow scalar (converting one imports pandas, see _strings)."""
    return _utf8_array([text.encode("utf-8")] * n)


_ARROW_INTS = {np.dtype(np.int64): pa.int64(), np.dtype(np.int32): pa.int32()}


def _int64s(values: Sequence[int] | np.ndarray, dtype: type = np.int64) -> pa.Array:
    """pa.array(values, pa.int64()) (or int32 with dtype=np.int32) built from a numpy buffer: pa.array imports pandas
    for numpy input too."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(_ARROW_INTS[arr.dtype], len(arr), [None, pa.py_buffer(arr)])


class _Plan:
    """How the rows of one case with these tasks are laid out in a batch: per message its role code and its end in
    the case's joined bytes (fixed + facts x len(facts)); per row its task code and number of messages."""

    __slots__ = ("chunks", "counts", "facts", "fixed", "length", "n_facts", "roles", "tasks")

    def __init__(self, chunks: tuple[bytes, ...], ends: Sequence[tuple[int, int]], roles: list[int], counts, tasks):
        """A plan of message ends (fixed, facts) with role codes and per task its code and message count."""
        self.chunks = chunks
        self.length, self.n_facts = ends[-1] if ends else (0, 0)  # the case's bytes: length + n_facts x len(facts)
        self.fixed = np.array([f for f, _ in ends], dtype=np.int64)
        self.facts = np.array([k for _, k in ends], dtype=np.int64)
        self.roles = np.array(roles, dtype=np.int64)
        self.counts = np.array(counts, dtype=np.int64)
        self.tasks = np.array(tasks, dtype=np.int64)


class RowBatch:
    """The rows of build_rows, collected per case and turned into one pyarrow Table.

    Same values as pa.Table.from_pylist(build_rows(...)) at a fraction of the CPU: add() keeps only the case, its
    prompts' UTF-8 bytes (one bytes join of the tasks' fixed texts and the facts) and which plan lays them out;
    table() builds every row and message column at once with numpy index arithmetic and Arrow takes, so no Python
    object is made per row or per message.
    """

    def __init__(self, template: str) -> None:
        """An empty batch whose prompts use `template` (see data.domains.legal.tasks.TEMPLATES)."""
        self.template = template
        self.clear()

    def clear(self) -> None:
        """Drop every collected row."""
        self.rows = 0
        self._plans: dict[tuple[str, ...], _Plan] = {}  # per task tuple (layout path)
        self._plan_list: list[_Plan] = []  # plan of code k (layout plans and one per case without a layout)
        self._plan_code: dict[int, int] = {}  # id(plan) -> code
        self._roles: dict[str, int] = {}  # role -> code
        self._tasks: dict[str, int] = {}  # task -> code
        # per case
        self._cases: list[Case] = []
        self._pieces: list[bytes] = []  # the UTF-8 texts of all messages, in order, joined by table()
        self._blob_len: list[int] = []
        self._size: list[int] = []  # UTF-8 length of the facts
        self._pid: list[int] = []
        self._golds: list[dict[str, bytes]] = []
        self._split: list[str] = []
        self._first_index: list[int] = []
        self._first_fact: str | None = None  # the first case's fact when it came as bytes

    def _code(self, plan: _Plan) -> int:
        """The batch code of a plan."""
        code = self._plan_code.get(id(plan))
        if code is None:
            code = self._plan_code[id(plan)] = len(self._plan_list)
            self._plan_list.append(plan)
        return code

    def _new_plan(self, tasks: tuple[str, ...], roles: Sequence[str], ends, counts, chunks=()) -> _Plan:
        """A plan with this batch's role and task codes."""
        role_codes = [self._roles.setdefault(r, len(self._roles)) for r in roles]
        task_codes = [self._tasks.setdefault(t, len(self._tasks)) for t in tasks]
        return _Plan(tuple(chunks), ends, role_codes, counts, task_codes)

    def add(self, case: Case, tasks: Sequence[str], split: str, first_index: int, fact: bytes | None = None) -> None:
        """Append the rows of build_rows(case, tasks, self.template, split, first_index).

        fact: the stripped fact's UTF-8 bytes when the case does not hold its text (cail2018.parse_rows_line).
        """
        if fact is not None and not self._cases:  # table() checks its first row against build_prompt
            self._first_fact = fact.decode("utf-8")
        key = tuple(tasks)
        plan = self._plans.get(key)
        if plan is None:
            layout = _layout(key, self.template)
            if layout is not None:
                chunks, roles, fixed_ends, counts = layout
                plan = self._plans[key] = self._new_plan(key, roles, fixed_ends, counts, chunks)
        pieces = self._pieces
        if plan is not None:  # the pieces of fact.join(chunks), joined once per batch (one copy, not two)
            if fact is None:
                fact = case.fact.strip().encode("utf-8")
            chunks = plan.chunks
            pieces.append(chunks[0])
            for chunk in chunks[1:]:
                pieces.append(fact)
                pieces.append(chunk)
            size = len(fact)
            blob_len = plan.length + plan.n_facts * size
        else:  # a task without fixed parts: whole message texts from build_prompt, ends fixed per case
            text = case.fact if fact is None else fact.decode("utf-8")
            prompts = [build_prompt(task, text, self.template) for task in key]
            texts = [m["content"].encode("utf-8") for prompt in prompts for m in prompt]
            ends, end = [], 0
            for text in texts:
                end += len(text)
                ends.append((end, 0))
            roles = [m["role"] for prompt in prompts for m in prompt]
            plan = self._new_plan(key, roles, ends, [len(prompt) for prompt in prompts])
            pieces += texts
            size, blob_len = 0, end
        self._pid.append(self._code(plan))
        self._cases.append(case)
        self._blob_len.append(blob_len)
        self._size.append(size)
        self._golds.append(_fixed_golds(case.charges, case.articles, _term_gold(case.term, case.fine > 0)))
        self._split.append(split)
        self._first_index.append(first_index)
        self.rows += len(key)

    def _layout_columns(self) -> tuple[np.ndarray, ...]:
        """(message ends, message role codes, row task codes, messages per row, row start per case, rows per case)."""
        plans = self._plan_list
        pid = np.array(self._pid, dtype=np.int64)
        size = np.array(self._size, dtype=np.int64)
        n_msgs = np.array([len(p.roles) for p in plans], dtype=np.int64)[pid] if plans else np.zeros(0, np.int64)
        n_rows = np.array([len(p.tasks) for p in plans], dtype=np.int64)[pid] if plans else np.zeros(0, np.int64)
        blob_len = np.array(self._blob_len, dtype=np.int64)
        case_start = np.cumsum(blob_len) - blob_len
        msg_start = np.cumsum(n_msgs) - n_msgs
        row_start = np.cumsum(n_rows) - n_rows
        ends = np.empty(int(n_msgs.sum()), dtype=np.int64)
        roles = np.empty(len(ends), dtype=np.int64)
        tasks = np.empty(int(n_rows.sum()), dtype=np.int64)
        per_row = np.empty(len(tasks), dtype=np.int64)
        for code, plan in enumerate(plans):
            sel = np.flatnonzero(pid == code)
            pos = msg_start[sel, None] + np.arange(len(plan.roles))
            ends[pos] = case_start[sel, None] + plan.fixed + plan.facts * size[sel, None]
            roles[pos] = plan.roles
            rpos = row_start[sel, None] + np.arange(len(plan.tasks))
            tasks[rpos] = plan.tasks
            per_row[rpos] = plan.counts
        return ends, roles, tasks, per_row, row_start, n_rows

    def table(self) -> pa.Table:
        """The collected rows as a Table of ROW_SCHEMA."""
        string = pa.string()
        ends, role_codes, task_codes, per_row, row_start, n_rows = self._layout_columns()
        n_cases, end = len(self._cases), int(ends[-1]) if len(ends) else 0
        if end >= 2**31:  # int32 offsets of pa.string(); 4096 rows of real facts are a few hundred MB
            raise ValueError(f"the prompts of one write batch take {end} bytes, past 2 GiB; lower --max-record-bytes")
        row_case = np.repeat(np.arange(n_cases, dtype=np.int64), n_rows)
        case_of_row = _int64s(row_case)
        task_names = list(self._tasks)
        task_col = _strings(task_names).take(_int64s(task_codes))

        contents = pa.Array.from_buffers(
            string,
            len(ends),
            [None, pa.py_buffer(np.concatenate([[0], ends]).astype(np.int32)), pa.py_buffer(b"".join(self._pieces))],
        )
        prompt_type = ROW_SCHEMA.field("prompt").type
        messages = pa.StructArray.from_arrays(
            [_strings(list(self._roles)).take(_int64s(role_codes)), contents],
            fields=list(prompt_type.value_type),
        )
        offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
        prompts = pa.ListArray.from_arrays(_int64s(offsets, np.int32), messages, type=prompt_type)

        cases = self._cases
        verdicts = [c.verdict.encode("utf-8") for c in cases]  # the verdict task's gold and extra_info.verdict
        # gold per row: per task a column over the cases, all tasks' columns end to end, taken at task x cases + case
        gold_columns = [verdicts if t == "verdict" else [g[t] for g in self._golds] for t in task_names]
        gold_all = _utf8_array([g for column in gold_columns for g in column])
        gold = gold_all.take(_int64s(task_codes * n_cases + row_case))

        def per_case(values: pa.Array) -> pa.Array:
            """A per-case column repeated for each row of its case."""
            return values.take(case_of_row)

        def per_case_list(lists: list[tuple], values: pa.Array) -> pa.Array:
            """A per-case list column (values: all lists' items end to end) repeated for each row of its case."""
            offsets = np.zeros(n_cases + 1, dtype=np.int32)
            np.cumsum([len(v) for v in lists], out=offsets[1:])
            return pa.ListArray.from_arrays(_int64s(offsets, np.int32), values).take(case_of_row)

        charges, articles = [c.charges for c in cases], [c.articles for c in cases]
        index = np.repeat(np.array(self._first_index, dtype=np.int64) - row_start, n_rows) + np.arange(self.rows)
        reward = pa.StructArray.from_arrays(
            [_constant("rule", self.rows), gold], fields=list(ROW_SCHEMA.field("reward_model").type)
        )
        extra = pa.StructArray.from_arrays(
            [
                _int64s(index),
                task_col,
                per_case_list(charges, _strings([x for v in charges for x in v])),
                per_case_list(articles, _int64s([x for v in articles for x in v])),
                per_case(_strings([c.term.kind for c in cases])),
                per_case(_int64s([c.term.months for c in cases])),
                per_case(_int64s([c.fine for c in cases])),
                per_case(_utf8_array(verdicts)),
                per_case(_strings(self._split)),
                per_case(_strings([c.case_id for c in cases])),
            ],
            fields=list(ROW_SCHEMA.field("extra_info").type),
        )
        sources = _strings([data_source(t) for t in task_names]).take(_int64s(task_codes))
        table = pa.Table.from_arrays(
            [sources, prompts, _constant("legal", self.rows), reward, extra], schema=ROW_SCHEMA
        )
        if self.rows:  # the joined prompt must be exactly what build_prompt writes
            task, fact = task_names[int(task_codes[0])], self._first_fact or cases[0].fact
            if table.column("prompt")[0].as_py() != build_prompt(task, fact, self.template):
                raise AssertionError(f"RowBatch prompt differs from build_prompt for task {task!r}")
        return table

"""SFT rows -> the parquet verl 0.9.1's SFT trainer reads (`verl.trainer.sft_trainer`, MultiTurnSFTDataset).

verl's SFT trainer builds `MultiTurnSFTDataset` (verl/utils/dataset/multiturn_sft_dataset.py) unless
`data.custom_cls` names another class. It reads one column, `data.messages_key` (default `messages`): a list of chat
messages `{role, content}`. Each turn is rendered with the tokenizer's chat template on its own; assistant turns get
loss_mask 1 (minus the `<|im_start|>assistant\\n` generation prompt), every other turn 0. So one row here is the
GRPO prompt messages followed by one assistant message holding the response, and the loss covers only the response
(plus the template's end-of-turn tokens).

    n = write_sft_parquet([SftRow(prompt=row["prompt"], response=gold, data_source="safety", index=i)], path)

The prompt is passed as it is in the GRPO parquet's `prompt` column, so SFT and GRPO see the same rendering.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["MESSAGES_KEY", "SFT_SCHEMA", "SftParquetWriter", "SftRow", "read_sft_rows", "write_sft_parquet"]

MESSAGES_KEY = "messages"
"""verl's default `data.messages_key` (sft_trainer_engine.yaml); configs/safety_sft.yaml keeps it."""

PROMPT_ROLES = ("system", "user")
WRITE_BATCH = 1024

SFT_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        (MESSAGES_KEY, pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("extra_info", pa.struct([("index", pa.int64())])),
    ]
)
"""Same column types in every row and file (pyarrow structs must not vary between rows)."""


@dataclass(frozen=True)
class SftRow:
    """One supervised example: the prompt messages (as in the GRPO `prompt` column) and the target response."""

    prompt: Sequence[Mapping[str, str]]
    response: str
    data_source: str
    index: int


def _messages(row: SftRow, position: int) -> list[dict[str, str]]:
    """The row's messages (prompt + assistant response); ValueError naming the row and field when malformed."""
    where = f"SFT row {position} (index {row.index})"
    if not isinstance(row.prompt, Sequence) or isinstance(row.prompt, str) or not row.prompt:
        raise ValueError(f"{where}: prompt must be a non-empty list of chat messages")
    out = []
    for k, message in enumerate(row.prompt):
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if role not in PROMPT_ROLES or not isinstance(content, str) or not content.strip():
            raise ValueError(f"{where}: prompt[{k}] must be {{role: system|user, content: non-empty text}}")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "user":
        raise ValueError(f"{where}: the last prompt message must be the user's (got {out[-1]['role']!r})")
    if not isinstance(row.response, str) or not row.response.strip():
        raise ValueError(f"{where}: response must be non-empty text")
    out.append({"role": "assistant", "content": row.response})
    return out


class SftParquetWriter:
    """Rows written in batches as they come; the file gets its final name only on close() (abort() leaves none)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open path's .partial sibling for writing (the parent directory is created)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._writer = pq.ParquetWriter(str(self._partial), SFT_SCHEMA)
        self._buffer: list[dict] = []
        self.count = 0

    def add(self, row: SftRow) -> None:
        """Validate and append one row (ValueError naming the row and field when malformed)."""
        messages = _messages(row, self.count)
        self._buffer.append(
            {"data_source": row.data_source, MESSAGES_KEY: messages, "extra_info": {"index": int(row.index)}}
        )
        self.count += 1
        if len(self._buffer) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=SFT_SCHEMA))
            self._buffer.clear()

    def close(self) -> int:
        """Write what is left, give the file its final name and return how many rows it holds."""
        try:
            self._flush()
        except BaseException:
            self.abort()
            raise
        self._writer.close()
        self._partial.replace(self.path)
        return self.count

    def abort(self) -> None:
        """Close and remove the partial file (nothing is left behind)."""
        self._writer.close()
        self._partial.unlink(missing_ok=True)


def write_sft_parquet(rows: Iterable[SftRow], path: str | os.PathLike[str]) -> int:
    """Write rows to path (atomically: path appears only when complete) and return how many were written."""
    writer = SftParquetWriter(path)
    try:
        for row in rows:
            writer.add(row)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def read_sft_rows(path: str | os.PathLike[str]) -> list[SftRow]:
    """The rows of an SFT parquet written here, back as SftRow (prompt = every message but the last)."""
    rows = []
    for i, item in enumerate(pq.read_table(str(path)).to_pylist()):
        messages = item.get(MESSAGES_KEY) or []
        if len(messages) < 2 or messages[-1].get("role") != "assistant":
            raise ValueError(f"{path}: row {i} does not end with an assistant message")
        rows.append(
            SftRow(
                prompt=messages[:-1],
                response=messages[-1]["content"],
                data_source=item["data_source"],
                index=int(item["extra_info"]["index"]),
            )
        )
    return rows

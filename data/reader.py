"""Stream JSON-lines inputs line by line (bytes, with a progress bar) and decode one record at a time."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

from data.sources.base import SkipRecord
from recipes.progress import tqdm  # clean lines when stderr is not a terminal

__all__ = ["decode_record", "iter_lines"]


def _open(path: str) -> IO[bytes]:
    """Open a .jsonl (or .jsonl.gz / .json.gz) file for binary reading."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115


def iter_lines(
    paths: Sequence[str], desc: str, stop_after: tuple[int, int] | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """Yield (file index, 1-based line number, raw line) over all paths; progress in bytes on stderr.

    stop_after=(file index, line) ends the stream once that line has been yielded.
    """
    sizes = [os.path.getsize(p) for p in paths]
    total = None if any(p.endswith(".gz") for p in paths) else sum(sizes)
    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, mininterval=1.0, leave=False) as bar:
        for file_idx, path in enumerate(paths):
            with _open(path) as fh:
                for line_no, raw in enumerate(fh, start=1):
                    bar.update(len(raw))
                    yield file_idx, line_no, raw
                    if stop_after is not None and (file_idx, line_no) >= stop_after:
                        return


def decode_record(raw: bytes) -> Any:
    """One raw JSON line → Python object; blank, non-UTF-8 or malformed lines raise SkipRecord."""
    try:
        text = raw.decode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as exc:
        raise SkipRecord("bad_encoding", f"not UTF-8 at byte {exc.start}") from exc
    if not text.strip():
        raise SkipRecord("blank_line", "empty line")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SkipRecord("malformed_json", f"{exc.msg} at column {exc.colno}") from exc

"""tqdm for our command-line tools: the usual bar on a terminal, plain newline-terminated lines in logs and pipes."""

from __future__ import annotations

import sys
from typing import IO, Any

import tqdm as _tqdm

__all__ = ["LOG_INTERVAL_S", "tqdm"]

LOG_INTERVAL_S = 30.0
"""Seconds between progress lines when stderr is not a terminal (a bar redrawn with \\r garbles log files)."""


class _LineWriter:
    """A file wrapper that turns tqdm's carriage-return redraws into one clean line each."""

    def __init__(self, stream: IO[str]) -> None:
        """Wrap stream (normally sys.stderr)."""
        self._stream = stream

    def write(self, text: str) -> int:
        """Write text without its \\r and padding, as one line; empty redraws write nothing."""
        line = text.replace("\r", "").strip()
        if line:
            self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self._stream.flush()


def _is_terminal(stream: Any) -> bool:
    """Whether stream is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def tqdm(*args: Any, **kwargs: Any) -> _tqdm.tqdm:
    """tqdm.tqdm(*args, **kwargs); off a terminal: ASCII lines every LOG_INTERVAL_S seconds, no \\r redraws."""
    stream = kwargs.get("file") or sys.stderr
    if not _is_terminal(stream):
        kwargs.update(file=_LineWriter(stream), ascii=True, dynamic_ncols=False)
        kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.0), LOG_INTERVAL_S)
        kwargs.setdefault("bar_format", "{l_bar}{r_bar}")  # the numbers without the bar
    return _tqdm.tqdm(*args, **kwargs)

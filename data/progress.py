"""tqdm for our command-line tools: the usual bar on a terminal, plain newline-terminated lines in logs and pipes.

Off a terminal a bar writes one plain line when it starts, one every ``LOG_INTERVAL_S`` seconds while it moves, and
one with the final count when it ends (also a bar opened with ``leave=False``, which on a terminal vanishes). The
interval comes from the environment variable ``LEGAL_PROGRESS_INTERVAL_S`` when set (tests use a short one), else
30 s. Scripts without Python (scripts/serve_judge.sh) read the same variable for their waiting lines.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, Any

import tqdm as _tqdm

__all__ = ["INTERVAL_ENV", "LOG_INTERVAL_S", "interval_s", "tqdm"]

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 30.0
"""Seconds between progress lines when stderr is not a terminal (a bar redrawn with \\r garbles log files)."""
INTERVAL_ENV = "LEGAL_PROGRESS_INTERVAL_S"


def interval_s() -> float:
    """Seconds between progress lines off a terminal: $LEGAL_PROGRESS_INTERVAL_S (>= 0) or LOG_INTERVAL_S."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return LOG_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        logger.warning("%s=%r is not a number of seconds >= 0: using %s", INTERVAL_ENV, text, LOG_INTERVAL_S)
        return LOG_INTERVAL_S
    return value


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
    """tqdm.tqdm(*args, **kwargs); off a terminal: ASCII lines (start, every interval_s(), end), no \\r redraws."""
    stream = kwargs.get("file") or sys.stderr
    if not _is_terminal(stream):
        every = interval_s()
        kwargs.update(file=_LineWriter(stream), ascii=True, dynamic_ncols=False)
        kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.0), every)
        # tqdm's monitor thread forces a redraw after maxinterval (10 s): keep it to the same interval
        kwargs["maxinterval"] = max(float(kwargs.get("maxinterval") or 0.0), every)
        kwargs["leave"] = True  # the final count as the last line (leave=False would erase it: nothing in a log)
        kwargs.setdefault("bar_format", "{l_bar}{r_bar}")  # the numbers without the bar
    return _tqdm.tqdm(*args, **kwargs)

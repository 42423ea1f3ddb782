"""Retry timing for one judge call: exponential backoff with jitter, a server's Retry-After (capped), a deadline.

Hand-written rather than tenacity: every attempt of a call also picks an endpoint, waits out that endpoint's
Retry-After pause and checks the run-wide stop, so the retry loop lives in the client (judge/client.py) and this
module only answers "how long to wait" and "is there time left" — small pure functions, tested alone.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before retry `attempt` (1-based): base·2^(attempt-1), capped at max_s, times a 50–100 % jitter."""
    nominal = min(max_s, base_s * 2 ** (attempt - 1))
    return nominal * (0.5 + rng.random() / 2)


def retry_after_s(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked to wait (Retry-After: seconds or an HTTP date); None when absent or unreadable."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    text = str(value).strip()[:64]
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass
class Deadline:
    """The end of one call's time budget (time.monotonic)."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline `seconds` from now."""
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        """Seconds left (0 when passed)."""
        return max(0.0, self.at - time.monotonic())

    def sooner(self, seconds: float) -> Deadline:
        """This deadline, or `seconds` from now when that comes first."""
        return Deadline(min(self.at, time.monotonic() + seconds))

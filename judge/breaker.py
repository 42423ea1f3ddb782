"""Endpoint health for the judge client: closed → open (cooling down or paused by Retry-After) → half-open.

An endpoint is *open* (skipped) until ``paused_until``; then *half-open*: one request goes through as a probe while
the others wait; its success closes the endpoint, its failure opens it again. With several endpoints the client
routes around an open one; a 429's Retry-After pauses an endpoint whatever their number. The run-wide stop (too many
failed calls in a row, then a half-open probe of every endpoint) lives in judge/client.py, which owns the network.

Hand-written: pybreaker's async support needs Tornado and aiobreaker is unmaintained; what is needed here is a
few fields per endpoint read by the client's endpoint choice, not a decorator around a call.
"""

from __future__ import annotations

from dataclasses import dataclass

# Failed attempts in a row before an endpoint is taken out of the rotation (only when there are several).
OPEN_AFTER_FAILURES = 2


@dataclass
class EndpointHealth:
    """Breaker state of one endpoint (times are time.monotonic)."""

    failures_in_row: int = 0
    paused_until: float = 0.0  # 0: closed; in the future: open; in the past (non-zero): half-open
    probing: bool = False  # a half-open probe is in flight
    opened: int = 0  # times this endpoint was opened (a diagnostic)
    # The server's own Retry-After: kept even when an answer to an earlier request arrives meanwhile.
    retry_after_until: float = 0.0

    def can_take(self, now: float) -> bool:
        """Whether a request may go to this endpoint now (closed, or half-open without a probe in flight)."""
        if now < self.retry_after_until:
            return False
        if self.paused_until == 0.0:
            return True
        return now >= self.paused_until and not self.probing

    def wake_at(self, now: float) -> float | None:
        """When this endpoint's pause ends, if it is paused now."""
        later = [t for t in (self.paused_until, self.retry_after_until) if t > now]
        return max(later) if later else None

    def on_send(self, now: float) -> None:
        """A request leaves for this endpoint; in the half-open state it is the probe."""
        if self.paused_until != 0.0 and now >= self.paused_until:
            self.probing = True

    def on_success(self) -> None:
        """A readable answer came back: close."""
        self.failures_in_row = 0
        self.paused_until = 0.0
        self.probing = False

    def on_failure(self, now: float, cooldown_s: float, may_open: bool) -> None:
        """An attempt failed: a failed probe reopens; enough failures in a row open (when may_open)."""
        self.failures_in_row += 1
        reopen = self.probing or (may_open and self.failures_in_row >= OPEN_AFTER_FAILURES)
        self.probing = False
        if reopen:
            self.paused_until = now + cooldown_s
            self.opened += 1

    def on_rate_limited(self, now: float, wait_s: float) -> None:
        """The server answered 429: pause this endpoint for wait_s (its Retry-After, capped)."""
        self.probing = False
        self.retry_after_until = max(self.retry_after_until, now + wait_s)

    def release_probe(self) -> None:
        """The probe ended without a verdict on the endpoint (e.g. cancelled, or a 4xx about the request)."""
        self.probing = False

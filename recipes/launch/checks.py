"""What every preflight check returns: one line of the table (status, name, message), and the helpers they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FAIL", "PASS", "WARN", "CheckResult", "one_line", "reward_kwargs"]

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the preflight table."""

    name: str
    status: str
    message: str

    def line(self) -> str:
        """`STATUS name: message` on one line."""
        return f"{self.status} {self.name}: {' '.join(self.message.split())}"


def one_line(exc: BaseException) -> str:
    """An exception (and its root cause) as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is not exc:
        text += f" (caused by {type(root).__name__}: {' '.join(str(root).split())})"
    return text[:500]


def reward_kwargs(cfg: Any) -> dict[str, Any]:
    """reward.custom_reward_function.reward_kwargs as a plain dict (unresolved when it does not resolve)."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, "reward.custom_reward_function.reward_kwargs", default=None)
    if value is None:
        return {}
    try:
        return dict(OmegaConf.to_container(value, resolve=True))
    except Exception:
        return dict(OmegaConf.to_container(value, resolve=False))

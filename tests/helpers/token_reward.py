"""A test-only reward the tiny random model can learn in a few dozen GRPO steps: the share of ASCII letters and
digits among the response's visible characters (about 0.1 for the random model, 1.0 for an all-ASCII response).

Loaded by verl from its path (``reward.custom_reward_function.path=tests/helpers/token_reward.py``) with verl's
custom-reward signature. The learning test (tests/rehearsal/test_loop_learning.py) proves with it that the advantage
sign, the
loss and the weight sync into the rollout engine make the policy earn more over the steps.
"""

from __future__ import annotations

from typing import Any

MAX_CHARS = 4096


def ascii_share(text: str) -> float:
    """Share of [0-9A-Za-z] among the non-space characters of text (capped at MAX_CHARS); 0.0 for none."""
    visible = [ch for ch in text[:MAX_CHARS] if not ch.isspace()]
    if not visible:
        return 0.0
    return sum(ch.isascii() and ch.isalnum() for ch in visible) / len(visible)


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> dict[str, float]:
    """verl's custom reward: {"score": ascii share, "acc": 1.0 when the whole response is ASCII alphanumerics}."""
    share = ascii_share(solution_str if isinstance(solution_str, str) else "")
    return {"score": share, "acc": float(share == 1.0)}

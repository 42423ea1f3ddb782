"""Optional reward shaping: language consistency (DeepSeek-R1) and a Kimi-1.5 style length penalty.

Both are off by default (weight 0 in rewards/legal.py), so the default reward reproduces the original recipe; their
values are still computed and logged on every call because they are cheap and worth a dashboard.

Length penalty (Kimi 1.5, section 2.3.3): in a group of responses with lengths in [min_len, max_len],

    lam = 0.5 - (len - min_len) / (max_len - min_len)
    penalty = lam            for a correct response
    penalty = min(0, lam)    for an incorrect one

so short correct answers gain up to +0.5 and long ones lose up to -0.5; wrong answers are never rewarded for being
short. verl scores each response on its own, so the group statistics have to come from outside (``LengthRef``):
- the exact formula when the caller provides the group's min and max length;
- otherwise a typical length ``ref`` (the group's mean, or a per-task reference) stands in for the middle of the
  group: min_len = 0 and max_len = 2 * ref, i.e. ``lam = 0.5 - len / (2 * ref)``, clipped to [-0.5, 0.5], which is 0
  at the typical length;
- no reference at all → 0.
Lengths are in characters of the response (the only length a reward function sees without a tokenizer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LengthRef", "chinese_share", "language_reward", "length_penalty", "length_ref_from"]

# Runs of characters that are not CJK ideographs (Unified + Extension A, compatibility ideographs, Extensions B..F);
# deleting them leaves the ideographs to count. (Faster than counting matches one by one; letters are counted
# with str.isalpha, which is also true for ideographs.)
_NOT_CJK = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+")

# extra_info keys a caller (e.g. a custom reward manager or a rollout hook) may set with group statistics.
GROUP_MIN_KEY = "group_min_length"
GROUP_MAX_KEY = "group_max_length"
GROUP_MEAN_KEY = "group_mean_length"
REF_KEY = "ref_length"


def chinese_share(text: str) -> float:
    """Share of CJK ideographs among all letters (any script) and ideographs in text; 0.0 when it has none."""
    if not text:
        return 0.0
    letters = sum(map(str.isalpha, text))
    if letters == 0:
        return 0.0
    return len(_NOT_CJK.sub("", text)) / letters


def language_reward(thinking: str) -> float:
    """Language-consistency reward (DeepSeek-R1): the Chinese share of the thinking, in [0, 1]."""
    return chinese_share(thinking)


@dataclass(frozen=True)
class LengthRef:
    """The group length statistics one response is compared with (characters)."""

    min_len: float | None = None
    max_len: float | None = None
    ref_len: float | None = None


def _positive(value: Any) -> float | None:
    """A finite positive float, or None (bools, strings and non-positive numbers are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if 0 < value < float("inf") else None


def length_ref_from(extra_info: Mapping[str, Any] | None, default_ref: float | None = None) -> LengthRef:
    """Group statistics from extra_info (min/max, else mean, else ref_length), else the per-task default_ref."""
    if extra_info:
        lo, hi = extra_info.get(GROUP_MIN_KEY), extra_info.get(GROUP_MAX_KEY)
        if isinstance(lo, (int, float)) and not isinstance(lo, bool) and _positive(hi) is not None and hi > lo >= 0:
            return LengthRef(min_len=float(lo), max_len=float(hi))
        for key in (GROUP_MEAN_KEY, REF_KEY):
            ref = _positive(extra_info.get(key))
            if ref is not None:
                return LengthRef(ref_len=ref)
    return LengthRef(ref_len=_positive(default_ref))


def length_penalty(length: int, correct: bool, ref: LengthRef) -> float:
    """Kimi-1.5 length reward in [-0.5, 0.5] for a response of `length` characters (see the module docstring)."""
    if ref.min_len is not None and ref.max_len is not None and ref.max_len > ref.min_len:
        lam = 0.5 - (length - ref.min_len) / (ref.max_len - ref.min_len)
    elif ref.ref_len:
        lam = 0.5 - length / (2.0 * ref.ref_len)
    else:
        return 0.0
    lam = min(0.5, max(-0.5, lam))
    return lam if correct else min(0.0, lam)

"""Reward options parsed once per distinct reward kwargs and JUDGE_* environment, for every reward entry point.

verl calls ``compute_score`` once per response with the same kwargs; validating them each time would cost more than
scoring a rules-mode answer. The cache key is the kwargs themselves (by content when a value is unhashable, e.g. a
list from YAML) plus the JUDGE_* variables the options read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from judge.client import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL

__all__ = ["OptionsCache", "check_known", "freeze"]

T = TypeVar("T")


def freeze(value: Any) -> Any:
    """A hashable stand-in for a kwargs value (mappings and sequences by content, the rest by repr)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, (str, bytes))):
        try:
            return tuple(freeze(v) for v in value)
        except TypeError:
            pass
    try:
        hash(value)
    except TypeError:
        return ("<unhashable>", repr(value))
    return value


def check_known(kwargs: Mapping[str, Any], allowed: frozenset[str], ignored: frozenset[str], entry: str) -> None:
    """Raise ValueError naming every reward kwarg the entry point does not know, and the ones it does."""
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"unknown reward kwarg(s) {', '.join(unknown)} for {entry}; allowed: {', '.join(sorted(allowed - ignored))}"
        )


class OptionsCache(Generic[T]):
    """parse(kwargs) memoised per distinct kwargs and JUDGE_* environment (cleared when it reaches max_size)."""

    def __init__(self, parse: Callable[[Mapping[str, Any]], T], ignored: frozenset[str], max_size: int = 256) -> None:
        """parse validates kwargs into options; ignored keys (objects verl passes along) are left out of the key."""
        self._parse, self._ignored, self._max_size = parse, ignored, max_size
        self._cache: dict[Any, T] = {}

    def get(self, kwargs: Mapping[str, Any]) -> T:
        """The options for these kwargs: parsed on first sight, then a dict lookup."""
        env = (os.environ.get(ENV_BASE_URL), os.environ.get(ENV_MODEL), os.environ.get(ENV_API_KEY))
        try:
            key: Any = (frozenset(kwargs.items()), env)  # order-insensitive: the same kwargs in any order hit
            return self._cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (e.g. a list from YAML): key by content instead
            key = (freeze({k: v for k, v in kwargs.items() if k not in self._ignored}), env)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        options = self._parse(kwargs)
        if len(self._cache) >= self._max_size:
            self._cache.clear()
        self._cache[key] = options
        return options

    def clear(self) -> None:
        """Forget every parsed option (tests)."""
        self._cache.clear()

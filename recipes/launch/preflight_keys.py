"""Preflight check of the keys an override names: a key verl does not define is a typo that verl never reads.

Hydra refuses ``trainer.total_training_step=600`` (no such key) and suggests ``+trainer.total_training_step=600``,
which composes: verl then never reads the new key and trains the default 400 steps. So a key added with ``+`` / ``++``
inside verl's own sections fails when it nearly matches a key the section has (``did you mean
trainer.total_training_steps?``, by difflib) and warns otherwise. Our own keys stay free: the ``judge`` and ``recipe``
sections, and dicts verl passes on whole (``reward_kwargs``, ``engine_kwargs``, ``ray_init``, ``override_config``,
any empty dict). The legacy top-level reward sections have their own check.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from typing import Any

from recipes.launch.checks import FAIL, PASS, WARN, CheckResult

__all__ = ["OPEN_SECTIONS", "OUR_SECTIONS", "added_overrides", "check_added_keys", "did_you_mean", "near_key"]

OUR_SECTIONS = ("judge", "recipe")  # top-level sections of our configs (configs/base/*.yaml), not verl's
# Dicts verl hands on whole (keyword arguments, ray.init(**ray_init), HF config overrides): any key may go inside.
OPEN_SECTIONS = ("*.*_kwargs", "*.kw_args", "*.override_config", "ray_kwargs.ray_init")
LEGACY_SECTIONS = ("custom_reward_function", "reward_model", "sandbox_fusion")  # check_legacy_reward_keys's
NEAR_CUTOFF = 0.8  # difflib ratio: total_training_step ~ total_training_steps is 0.97


def _parse(overrides: Sequence[str]) -> list[Any]:
    """Hydra's own reading of the overrides ([] when they do not parse: composition reports that)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except Exception:  # hydra's OverrideParseException and friends: the compose check names the bad override
        return []


def added_overrides(overrides: Sequence[str]) -> list[tuple[str, str]]:
    """(override as written, key) of every ``+key=`` / ``++key=`` override."""
    return [(o.input_line, o.key_or_group) for o in _parse(overrides) if o.is_add() or o.is_force_add()]


def _children(node: Any) -> list[str] | None:
    """The keys of a config dict, None when node is not one."""
    from omegaconf import DictConfig

    return [str(k) for k in node.keys()] if isinstance(node, DictConfig) else None


def _walk(cfg: Any, parts: Sequence[str]) -> tuple[int, Any]:
    """How many leading parts exist in cfg, and the node the last of them names."""
    node = cfg
    for depth, part in enumerate(parts):
        keys = _children(node)
        if keys is None or part not in keys:
            return depth, node
        node = node._get_node(part)  # no resolution: ${oc.env:...} values need not resolve here
    return len(parts), node


def near_key(cfg: Any, key: str) -> str | None:
    """The existing key that key nearly spells (each missing part by difflib), or None."""
    parts = key.split(".")
    fixed: list[str] = []
    node = cfg
    for part in parts:
        keys = _children(node)
        if keys is None:
            return None
        if part not in keys:
            close = difflib.get_close_matches(part, keys, n=1, cutoff=NEAR_CUTOFF)
            if not close:
                return None
            part = close[0]
        fixed.append(part)
        node = node._get_node(part)
    return ".".join(fixed) if fixed != parts else None


def _is_open(parts: Sequence[str], depth: int, node: Any) -> bool:
    """Whether the key lands inside a section that takes any key (ours, a pass-through dict, an empty dict)."""
    if parts[0] in OUR_SECTIONS:
        return True
    prefixes = [".".join(parts[:i]) for i in range(1, depth + 1)]
    if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes for pattern in OPEN_SECTIONS):
        return True
    return depth > 0 and _children(node) == []


def check_added_keys(base: Any, overrides: Sequence[str]) -> list[CheckResult]:
    """Every key added with + / ++ that is new inside verl's sections: FAIL with the key it nearly matches, else WARN.

    base: the config composed without the + / ++ overrides (so a ++ that replaces an existing key is no addition).
    """
    results: list[CheckResult] = []
    allowed: list[str] = []
    for text, key in added_overrides(overrides):
        parts = key.split(".")
        depth, node = _walk(base, parts)
        if depth == len(parts) or parts[0] in LEGACY_SECTIONS:
            continue  # ++ on an existing key; legacy sections: check_legacy_reward_keys
        if _is_open(parts, depth, node):
            allowed.append(key)
            continue
        section = f"verl's {'.'.join(parts[:depth])} section" if depth else "the config's top level"
        near = near_key(base, key)
        if near is not None:
            value = text.partition("=")[2]
            results.append(
                CheckResult(
                    "added keys",
                    FAIL,
                    f"{text} adds {key}, which {section} does not have (verl never reads it) — did you mean "
                    f"{near}? Set it without the +: {near}={value}",
                )
            )
        else:
            results.append(
                CheckResult(
                    "added keys",
                    WARN,
                    f"{text} adds {key}, a key {section} does not define: verl reads only the keys it knows — "
                    "check the spelling against verl/trainer/config/ppo_trainer.yaml",
                )
            )
    if not results:
        detail = f"{len(allowed)} in our or pass-through sections: {', '.join(allowed)}" if allowed else "none"
        results.append(CheckResult("added keys", PASS, detail))
    return results


def did_you_mean(cfg: Any, overrides: Sequence[str]) -> str:
    """'did you mean X? …' for the first plain override whose key cfg lacks but nearly spells ('' when none)."""
    for override in _parse(overrides):
        if override.is_add() or override.is_force_add() or override.is_delete():
            continue
        key = override.key_or_group
        if _walk(cfg, key.split("."))[0] == len(key.split(".")):
            continue
        near = near_key(cfg, key)
        if near is not None:
            return f"did you mean {near}? ({key} is not a key of the config; +{key} would add it and verl ignore it)"
    return ""

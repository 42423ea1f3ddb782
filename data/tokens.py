"""Prompt token counts with the policy's tokenizer (data.prepare --tokenizer), as verl counts them when it filters.

verl's RLHFDataset drops a row when len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True,
tokenize=True)) > data.max_prompt_length. The same count here, before training, tells how many rows survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from data.domains.legal.tasks import build_prompt

__all__ = ["DEFAULT_CONFIG", "PromptCounter", "default_max_prompt_tokens", "token_distribution"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base" / "legal_grpo.yaml"
_MARK = "\ue000"  # stands in for the facts when a rendered prompt is split into its fixed parts


def default_max_prompt_tokens(config: Path = DEFAULT_CONFIG) -> int | None:
    """data.max_prompt_length of the training config (the budget verl filters with), or None without one."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")).get("data", {})
    except (OSError, AttributeError, yaml.YAMLError):
        return None
    value = data.get("max_prompt_length") if isinstance(data, dict) else None
    return value if isinstance(value, int) and value > 0 else None


class PromptCounter:
    """Token counts of the prompts of a case's tasks: the tokenizer's chat template (with the generation prompt),
    then its encoder without special tokens, exactly as verl's apply_chat_template(tokenize=True) counts."""

    def __init__(self, path: str, tasks: Sequence[str], template: str) -> None:
        """Load the tokenizer at path (a local directory; nothing is downloaded)."""
        from transformers import AutoTokenizer  # noqa: PLC0415 (optional: only with --tokenizer)

        self.tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tasks, self.template = tuple(tasks), template
        self.chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self._parts = [self._split(task) for task in self.tasks]

    def _render(self, messages: list[dict[str, str]]) -> str:
        """The text the tokenizer encodes for these messages."""
        if self.chat_template:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return "\n".join(m["content"] for m in messages)

    def _split(self, task: str) -> tuple[str, str] | None:
        """(text before the facts, text after) of a task's rendered prompt; None when the facts are not kept as-is."""
        pieces = self._render(build_prompt(task, _MARK, self.template)).split(_MARK)
        return (pieces[0], pieces[1]) if len(pieces) == 2 else None

    def texts(self, fact: str) -> list[str]:
        """The rendered prompt of every task for one case."""
        fact = fact.strip()
        return [
            f"{p[0]}{fact}{p[1]}" if p is not None else self._render(build_prompt(t, fact, self.template))
            for t, p in zip(self.tasks, self._parts, strict=True)
        ]

    def longest(self, facts: Sequence[str]) -> list[int]:
        """Per case: tokens of its longest task prompt (one batched encoder call for all of them)."""
        texts = [text for fact in facts for text in self.texts(fact)]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        k = len(self.tasks)
        return [max(len(x) for x in ids[i : i + k]) for i in range(0, len(ids), k)]


def token_distribution(counts: np.ndarray) -> dict[str, int]:
    """p50 / p90 / p99 / max of token counts (nearest-rank percentiles; zeros when empty)."""
    if not len(counts):
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0}
    ordered = np.sort(counts)
    rank = {q: ordered[min(len(ordered) - 1, int(np.ceil(q / 100 * len(ordered))) - 1)] for q in (50, 90, 99)}
    return {"p50": int(rank[50]), "p90": int(rank[90]), "p99": int(rank[99]), "max": int(ordered[-1])}

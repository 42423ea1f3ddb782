"""Content-safety records ``{"text", "scores": {9 keys}, "reasoning"}`` → validated SafetyCase → verl rows.

One row per text (task ``score``): data_source "safety", prompt = data.domains.safety.prompt.build_prompt (system +
user, rendered by the instruct policy's own chat template), ability "safety", reward_model {style "rule", ground_truth
= data.domains.safety.gold.ground_truth_json: {"scores": {...}, "reasoning": "..."}}, extra_info {index, split, case_id,
violated (dimensions scored below 60)}. data.prepare deduplicates and splits by the normalized text (``.fact``).
With --sft-fraction, the SFT share's texts become data/sft.py rows instead: the same prompt + ``sft_response``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from data.domains.safety.dimensions import DATA_SOURCE, DIMENSIONS, VIOLATION_THRESHOLD
from data.domains.safety.gold import Gold, GoldError, check_gold, ground_truth_json
from data.domains.safety.prompt import build_prompt, gold_response
from data.sources.base import SkipRecord, require

__all__ = [
    "DEFAULT_TEMPLATE",
    "ROW_SCHEMA",
    "TASKS",
    "TEMPLATES",
    "SafetyCase",
    "build_rows",
    "case_labels",
    "parse_record",
    "sft_response",
]

TASKS: tuple[str, ...] = ("score",)
"""The one task: score the text on the nine dimensions."""

TEMPLATES: tuple[str, ...] = ("chat",)
"""System + user messages for an instruct model (its own chat template renders them)."""

DEFAULT_TEMPLATE = "chat"

MAX_TEXT_CHARS = 20000
"""Longer texts are skipped (reason text_too_long); the trainer's max_prompt_length filters by tokens afterwards."""

ROW_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("task", pa.string()),
                    ("split", pa.string()),
                    ("case_id", pa.string()),
                    ("violated", pa.list_(pa.string())),
                ]
            ),
        ),
    ]
)
"""Same column types in every row and file."""


@dataclass(frozen=True)
class SafetyCase:
    """One validated text with its gold scores and reasoning."""

    case_id: str
    text: str
    gold: Gold

    @property
    def fact(self) -> str:
        """The text data.prepare deduplicates and splits by (the name its legal sources use)."""
        return self.text


def case_labels(case: SafetyCase, threshold: int = VIOLATION_THRESHOLD) -> list[str]:
    """Dimensions the gold scores below the threshold; ["clean"] when none (the label spread in stats.json)."""
    violated = [k for k, v in case.gold.scores if v < threshold]
    return violated or ["clean"]


def sft_response(case: SafetyCase) -> str:
    """The SFT target of a text (data.prepare --sft-fraction): the gold reasoning and answer, as a perfect model
    writes them (data.domains.safety.prompt.gold_response)."""
    return gold_response(case.gold.score_map, case.gold.reasoning)


def parse_record(obj: Any, origin: str, scan: bool = False) -> SafetyCase:
    """One decoded JSON object → SafetyCase; every defect raises SkipRecord naming the field."""
    del scan  # validation and the rows need the same fields
    if not isinstance(obj, dict):
        raise SkipRecord("not_an_object", f"record must be a JSON object, got {type(obj).__name__}")
    text = require(obj, "text", str, "").strip()
    if not text:
        raise SkipRecord("empty_text", "field 'text' is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise SkipRecord("text_too_long", f"field 'text' has {len(text)} characters (max {MAX_TEXT_CHARS})")
    scores = require(obj, "scores", dict, "")
    reasoning = require(obj, "reasoning", str, "")
    try:
        gold = check_gold(scores, reasoning)
    except GoldError as exc:
        raise SkipRecord(exc.reason, str(exc)) from exc
    return SafetyCase(case_id=origin, text=text, gold=gold)


def build_rows(case: SafetyCase, tasks: Sequence[str], template: str, split: str, first_index: int) -> list[dict]:
    """The row of this text (tasks is ("score",)); extra_info.index counts rows within the split."""
    if template not in TEMPLATES or list(tasks) != list(TASKS):
        raise ValueError(f"safety rows need tasks {TASKS} and template in {TEMPLATES}, got {tasks!r}, {template!r}")
    return [
        {
            "data_source": DATA_SOURCE,
            "prompt": build_prompt(case.text),
            "ability": "safety",
            "reward_model": {"style": "rule", "ground_truth": ground_truth_json(case.gold)},
            "extra_info": {
                "index": first_index,
                "task": TASKS[0],
                "split": split,
                "case_id": case.case_id,
                "violated": [k for k in DIMENSIONS if case.gold.score_map[k] < VIOLATION_THRESHOLD],
            },
        }
    ]

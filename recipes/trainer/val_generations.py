"""The validation-generations table: prompt, response, gold, score and every reward part of chosen validation samples.

verl 0.9.1's ``trainer.log_val_generations`` logs N validation samples to wandb as (input, output, score) only, and its
validation dump (``trainer.validation_data_dir``) has gold and reward parts but no data_source. The trainer subclass
(recipes.trainer.main_ppo) captures what verl's ``_validate`` hands its hooks and calls :func:`finish_validation`:

- the validation dump gets ``data_source`` and ``in_table`` (whether the row is in the table) columns; it is written
  by verl's own dump writer to ``<validation_data_dir>/<step>.jsonl`` (our configs: ``<rollout_data_dir>/validation``),
  where ``python -m recipes.run_report`` reads the same table back;
- the table goes to wandb under verl's key ``val/generations`` (one row per sample, every step's rows kept).

Which samples: verl's rule (sorted by prompt, shuffled with seed 42, the first N), N = ``trainer.log_val_generations``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "IN_TABLE",
    "VAL_TABLE_KEY",
    "ValCapture",
    "ValTableLogger",
    "finish_validation",
    "prompt_uid",
    "reward_parts",
    "select_indices",
    "table_columns",
]

VAL_TABLE_KEY = "val/generations"  # verl's wandb key for the validation-generations table
IN_TABLE = "in_table"  # column of the validation dump: the row is in the table
SEED = 42  # verl's seed for choosing the logged samples (trainer_base._maybe_log_val_generations)
FIRST_COLUMNS = ("step", "data_source", "prompt", "response", "gold", "score")
# Columns of verl's dumps and of the table that are not reward parts ("reward" repeats the score in validation dumps).
NOT_PARTS = frozenset({"input", "output", "gts", "uid", "reward", IN_TABLE, *FIRST_COLUMNS})


def reward_parts(keys: Sequence[str]) -> list[str]:
    """The reward parts among a dump row's keys, sorted."""
    return sorted(key for key in keys if key not in NOT_PARTS)


def prompt_uid(key: str) -> str:
    """The prompt uid of a sample key ``{uid}_{session}_{index}`` (verl's own split; a bare uid is itself)."""
    parts = str(key).rsplit("_", 2)
    return parts[0] if len(parts) == 3 else str(key)


def select_indices(prompts: Sequence[str], n: int) -> list[int]:
    """verl's choice of logged validation samples: sorted by prompt, shuffled with seed 42, the first n."""
    if n <= 0:
        return []
    order = sorted(range(len(prompts)), key=lambda i: str(prompts[i]))
    np.random.RandomState(SEED).shuffle(order)
    return order[:n]


def table_columns(parts: Sequence[str]) -> list[str]:
    """Columns of the table: step, data_source, prompt, response, gold, score, then every reward part."""
    return [*FIRST_COLUMNS, *parts]


@dataclass
class ValCapture:
    """What verl's _validate handed its hooks during one validation."""

    samples: tuple[list, list, list] | None = None  # _maybe_log_val_generations: inputs, outputs, scores
    sources: list[str] | None = None  # _val_metrics_update: data_source per sample
    uids: list[str] | None = None  # _val_metrics_update: prompt uid per sample
    extras: dict[str, list] = field(default_factory=dict)  # _val_metrics_update: reward parts per sample
    dump: dict[str, Any] | None = None  # _dump_generations: its keyword arguments (validation_data_dir set)


def _source_by_uid(capture: ValCapture) -> dict[str, str]:
    return {str(uid): str(source) for uid, source in zip(capture.uids or [], capture.sources or [], strict=False)}


def _rows_from_dump(dump: Mapping[str, Any], sources: Mapping[str, str], step: int) -> list[dict[str, Any]]:
    extras = dict(dump["reward_extra_infos_dict"])
    keys = [str(k) for k in extras.get("uid") or []]
    rows = []
    for i, (prompt, response) in enumerate(zip(dump["inputs"], dump["outputs"], strict=True)):
        row = {
            "step": step,
            "data_source": sources.get(prompt_uid(keys[i])) if i < len(keys) else None,
            "prompt": prompt,
            "response": response,
            "gold": dump["gts"][i],
            "score": dump["scores"][i],
        }
        row.update({name: values[i] for name, values in extras.items() if name not in NOT_PARTS and len(values) > i})
        rows.append(row)
    return rows


def _rows_from_samples(capture: ValCapture, step: int) -> list[dict[str, Any]]:
    inputs, outputs, scores = capture.samples or ([], [], [])
    sources = capture.sources or [None] * len(inputs)
    rows = []
    for i, (prompt, response, score) in enumerate(zip(inputs, outputs, scores, strict=True)):
        row = {
            "step": step,
            "data_source": sources[i] if i < len(sources) else None,
            "prompt": prompt,
            "response": response,
            "gold": None,
            "score": score,
        }
        row.update({n: v[i] for n, v in capture.extras.items() if n not in NOT_PARTS and len(v) > i})
        rows.append(row)
    return rows


def finish_validation(capture: ValCapture, n: int, step: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(verl's validation-dump arguments with data_source and in_table added, or None without a dump; table rows).

    With a dump the table comes from it (gold included); without one (trainer.validation_data_dir unset) from the
    samples verl logs, with no gold.
    """
    if capture.dump is None:
        rows = _rows_from_samples(capture, step)
        chosen = select_indices([r["prompt"] for r in rows], n)
        return None, [rows[i] for i in chosen]
    rows = _rows_from_dump(capture.dump, _source_by_uid(capture), step)
    chosen = select_indices([r["prompt"] for r in rows], n)
    picked = set(chosen)
    extras = dict(capture.dump["reward_extra_infos_dict"])
    extras["data_source"] = [row["data_source"] for row in rows]
    extras[IN_TABLE] = [i in picked for i in range(len(rows))]
    return {**capture.dump, "reward_extra_infos_dict": extras}, [rows[i] for i in chosen]


class ValTableLogger:
    """Logs the table to wandb under val/generations, every validation's rows kept (wandb tables are immutable once
    logged: each log sends a new table with all rows, as verl's own logger does)."""

    def __init__(self) -> None:
        self.columns: list[str] | None = None
        self.data: list[list[Any]] = []

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (columns fixed by the first rows: the reward returns the same parts every call)."""
        if not rows:
            return
        if self.columns is None:
            self.columns = table_columns(reward_parts(list(rows[0])))
        self.data += [[_cell(row.get(column)) for column in self.columns] for row in rows]

    def log(self, rows: Sequence[Mapping[str, Any]], step: int) -> bool:
        """Add rows and log the table to the active wandb run; False when there is none."""
        self.add(rows)
        import wandb

        if wandb.run is None or self.columns is None:
            return False
        wandb.log({VAL_TABLE_KEY: wandb.Table(columns=self.columns, data=[list(r) for r in self.data])}, step=step)
        return True


def _cell(value: Any) -> Any:
    """A wandb-table-friendly value (numpy scalars unwrapped, containers as text)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, (dict, list, tuple)):
        return str(value)
    return value

"""Imported by every verl process of a CPU run (``VERL_USE_EXTERNAL_MODULES``): registers the platform and the
rollout in verl's registries and installs the stand-ins. Importing it anywhere else changes verl in that process."""

from __future__ import annotations

# First: verl modules ask for the platform while they import (verl/workers/engine/fsdp/transformer_impl.py).
from recipes.trainer.cpu import platform as _platform  # noqa: F401  # isort: skip
from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.replica import RolloutReplicaRegistry

from recipes.trainer.cpu import ROLLOUT_NAME, standins

ADAPTER = "recipes.trainer.cpu.rollout.HFServerAdapter"


def _load_replica() -> type:
    """The replica class, imported when verl asks for it (the rollout module imports verl itself)."""
    from recipes.trainer.cpu.rollout import HFRolloutReplica

    return HFRolloutReplica


RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)
rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = ADAPTER
standins.apply()

"""Group-affinity reward dispatch: responses that share a gold answer are scored by the same reward worker.

verl 0.9.1's agent loop (the v1 trainer's AgentLoopWorkerTQ) sends every finished response to a *random*
reward-loop worker (a separate Ray process).
Each process has its own judge client, so the cache and in-flight dedup only merge identical (gold, prediction)
pairs that land in the same process: with 8 workers, the 16 near-identical answers of one GRPO group are spread
over 8 judge caches and cost up to 8 calls instead of 1 (benchmarks/README.md measures it).

Enabled by `actor_rollout_ref.rollout.agent.agent_loop_manager_class:
recipes.legal.agent_loop.GroupAffinityAgentLoopManager` (set in configs/base/legal_grpo.yaml). Only the choice of
reward worker changes; verl's `_compute_score` runs as is.
"""

from __future__ import annotations

import contextvars
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ, AgentLoopWorkerTQ

__all__ = ["GroupAffinityAgentLoopManager", "GroupAffinityAgentLoopWorker", "affinity_key", "pick_worker"]

# The reward worker chosen for the sample scored in the current asyncio task (each sample runs in its own task).
_PINNED_HANDLES: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("legal_pinned_reward_worker")


def affinity_key(kwargs: Mapping[str, Any]) -> str:
    """What identical judge questions share: the task and the gold answer of the sample."""
    reward_model = kwargs.get("reward_model")
    gold = reward_model.get("ground_truth", "") if isinstance(reward_model, Mapping) else ""
    return f"{kwargs.get('data_source', '')}\x00{gold}"


def pick_worker(handles: Sequence[Any], key: str) -> Any:
    """A stable choice among handles for key (crc32: the same in every process, unlike hash())."""
    return handles[zlib.crc32(key.encode("utf-8")) % len(handles)]


class GroupAffinityAgentLoopWorker(AgentLoopWorkerTQ.__ray_actor_class__):  # the class under verl's @ray.remote
    """verl's v1 (TransferQueue) agent-loop worker whose reward worker is picked by affinity_key, not at random."""

    @property
    def reward_loop_worker_handles(self) -> list[Any] | None:
        """Inside _compute_score: the one pinned handle (verl then picks it); elsewhere all handles."""
        pinned = _PINNED_HANDLES.get(None)
        return pinned if pinned is not None else self._all_reward_handles

    @reward_loop_worker_handles.setter
    def reward_loop_worker_handles(self, handles: list[Any] | None) -> None:
        self._all_reward_handles = handles

    async def _compute_score(self, outputs: list[Any], kwargs: dict) -> None:
        """Pin the reward worker for this sample's task, then run verl's own _compute_score."""
        handles = self._all_reward_handles
        if not handles or len(handles) == 1:
            return await super()._compute_score(outputs, kwargs)
        token = _PINNED_HANDLES.set([pick_worker(handles, affinity_key(kwargs))])
        try:
            return await super()._compute_score(outputs, kwargs)
        finally:
            _PINNED_HANDLES.reset(token)


class GroupAffinityAgentLoopManager(AgentLoopManagerTQ):
    """verl's v1 AgentLoopManagerTQ starting GroupAffinityAgentLoopWorker actors (verl's documented class hook)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # sets verl's worker class; workers start later, in create()
        self.agent_loop_workers_class = ray.remote(GroupAffinityAgentLoopWorker)

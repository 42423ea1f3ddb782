"""Group-affinity reward dispatch: responses that share a gold answer are scored by the same reward worker.

verl 0.9.1's agent loop (the v1 trainer's AgentLoopWorkerTQ) sends every finished response to a *random*
reward-loop worker (a separate Ray process).
Each process has its own judge client, so the cache and in-flight dedup only merge identical (gold, prediction)
pairs that land in the same process: with 8 workers, the 16 near-identical answers of one GRPO group are spread
over 8 judge caches and cost up to 8 calls instead of 1 (benchmarks/README.md measures it).

Enabled by `actor_rollout_ref.rollout.agent.agent_loop_manager_class:
recipes.trainer.agent_loop.GroupAffinityAgentLoopManager` (set in configs/base/*_grpo.yaml). Only the choice of
reward worker changes; verl's `_compute_score` runs as is.

A response whose scoring raised (a judge that is gone: JudgeUnavailableError) is counted here, because verl's
`_run_prompt` only logs the exception and drops the group; the trainer (recipes.trainer.main_ppo) collects the counts
with `take_unscored` every step and stops the run.
"""

from __future__ import annotations

import contextvars
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ, AgentLoopWorkerTQ

__all__ = [
    "GroupAffinityAgentLoopManager",
    "GroupAffinityAgentLoopWorker",
    "affinity_key",
    "error_line",
    "pick_worker",
]

# The reward worker chosen for the sample scored in the current asyncio task (each sample runs in its own task).
_PINNED_HANDLES: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("pinned_reward_worker")


# Ray ships the actor class by value, with the globals its methods name; a ContextVar does not pickle, a function of
# this (importable) module pickles by reference. So the methods reach the ContextVar only through these three.
def pinned_handles() -> list[Any] | None:
    """The reward worker pinned for the current asyncio task, or None."""
    return _PINNED_HANDLES.get(None)


def pin_handles(handles: list[Any]) -> contextvars.Token:
    """Pin handles for the current asyncio task."""
    return _PINNED_HANDLES.set(handles)


def unpin_handles(token: contextvars.Token) -> None:
    """Undo pin_handles."""
    _PINNED_HANDLES.reset(token)


def affinity_key(kwargs: Mapping[str, Any]) -> str:
    """What identical judge questions share: the task and the gold answer of the sample."""
    reward_model = kwargs.get("reward_model")
    gold = reward_model.get("ground_truth", "") if isinstance(reward_model, Mapping) else ""
    return f"{kwargs.get('data_source', '')}\x00{gold}"


def error_line(exc: BaseException) -> str:
    """`Type: message` of the original exception (a Ray task error is unwrapped to its cause), on one line."""
    cause = getattr(exc, "cause", None)
    root = cause if isinstance(cause, BaseException) else exc
    return f"{type(root).__name__}: {' '.join(str(root).split())}"[:600]


def pick_worker(handles: Sequence[Any], key: str) -> Any:
    """A stable choice among handles for key (crc32: the same in every process, unlike hash())."""
    return handles[zlib.crc32(key.encode("utf-8")) % len(handles)]


# Decorated here, at module level, like verl's own AgentLoopWorkerTQ: a Ray worker loads an actor class by its module
# and name. A subclass wrapped in ray.remote() at run time (the manager used to do that) is rebuilt on the worker
# around a different copy of verl's class, and verl's `super().__init__()` then fails on Ray 2.60 with
# "TypeError: super(type, obj): obj must be an instance or subtype of type" (tests/test_agent_loop_ray.py).
@ray.remote
class GroupAffinityAgentLoopWorker(AgentLoopWorkerTQ.__ray_actor_class__):  # the class under verl's @ray.remote
    """verl's v1 (TransferQueue) agent-loop worker whose reward worker is picked by affinity_key, not at random."""

    @property
    def reward_loop_worker_handles(self) -> list[Any] | None:
        """Inside _compute_score: the one pinned handle (verl then picks it); elsewhere all handles."""
        pinned = pinned_handles()
        return pinned if pinned is not None else self._all_reward_handles

    @reward_loop_worker_handles.setter
    def reward_loop_worker_handles(self, handles: list[Any] | None) -> None:
        self._all_reward_handles = handles

    async def _compute_score(self, outputs: list[Any], kwargs: dict) -> None:
        """Pin the reward worker for this sample's task, run verl's own _compute_score; count a failure, re-raise."""
        handles = self._all_reward_handles
        token = pin_handles([pick_worker(handles, affinity_key(kwargs))]) if handles else None
        try:
            return await super()._compute_score(outputs, kwargs)
        except Exception as exc:
            self._note_unscored(str(kwargs.get("data_source", "")), exc)
            raise
        finally:
            if token is not None:
                unpin_handles(token)

    def _note_unscored(self, data_source: str, exc: BaseException) -> None:
        """Count one generated response whose reward could not be computed; keep the first error."""
        if not hasattr(self, "_unscored"):
            self._unscored: Counter[str] = Counter()
            self._first_unscored_error = ""
        self._unscored[data_source] += 1
        self._first_unscored_error = self._first_unscored_error or error_line(exc)

    def take_unscored(self) -> dict[str, Any]:
        """Unscored responses since the last call: {"by_source": {data_source: n}, "error": first error}; resets."""
        counts = dict(getattr(self, "_unscored", {}))
        error = getattr(self, "_first_unscored_error", "")
        self._unscored, self._first_unscored_error = Counter(), ""
        return {"by_source": counts, "error": error}


class GroupAffinityAgentLoopManager(AgentLoopManagerTQ):
    """verl's v1 AgentLoopManagerTQ starting GroupAffinityAgentLoopWorker actors (verl's documented class hook)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # sets verl's worker class; workers start later, in create()
        self.agent_loop_workers_class = GroupAffinityAgentLoopWorker

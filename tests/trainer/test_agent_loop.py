"""Group-affinity dispatch: verl's own AgentLoopWorker._compute_score sends a sample to the pinned reward worker."""

from __future__ import annotations

import asyncio
import zlib

import pytest
from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

from recipes.trainer.agent_loop import (
    GroupAffinityAgentLoopManager,
    GroupAffinityAgentLoopWorker,
    affinity_key,
    pick_worker,
)


class FakeRewardWorker:
    """Stands in for a reward-loop Ray actor: records what it scored, yields to the loop like a remote call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []
        self.compute_score = self  # verl calls handle.compute_score.remote(data)

    async def _score(self, data) -> dict:
        await asyncio.sleep(0.001)  # let other samples' coroutines interleave
        gold = data.non_tensor_batch["reward_model"][0]["ground_truth"]
        self.seen.append(gold)
        return {"reward_score": 1.0, "reward_extra_info": {"worker": self.name}}

    def remote(self, data):
        return self._score(data)


def _worker(handles: list[FakeRewardWorker]) -> GroupAffinityAgentLoopWorker:
    """A worker with only what _compute_score reads (no model, no LLM server)."""
    worker_cls = GroupAffinityAgentLoopWorker.__ray_actor_class__  # the plain class under @ray.remote
    worker = worker_cls.__new__(worker_cls)
    worker.reward_loop_worker_handles = handles
    worker.processor = None
    worker.mm_processor_kwargs = {}
    return worker


def _output() -> AgentLoopOutput:
    return AgentLoopOutput(prompt_ids=[1, 2, 3], response_ids=[4, 5], response_mask=[1, 1], metrics=AgentLoopMetrics())


def _kwargs(data_source: str, gold: str) -> dict:
    return {"data_source": data_source, "reward_model": {"style": "rule", "ground_truth": gold}, "uid": "u"}


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        (_kwargs("legal/charge", "盗窃罪"), "legal/charge\x00盗窃罪"),
        (_kwargs("legal/term", "有期徒刑一年"), "legal/term\x00有期徒刑一年"),
        ({"data_source": "legal/verdict"}, "legal/verdict\x00"),
    ],
)
def test_affinity_key_is_task_and_gold(kwargs, key):
    """Identical judge questions share task and gold; the key is exactly that."""
    assert affinity_key(kwargs) == key


def test_pick_worker_is_stable_crc32():
    """The choice is crc32 mod n: the same in every process (Python's hash() is salted per process)."""
    handles = list(range(8))
    key = "legal/charge\x00盗窃罪"
    assert pick_worker(handles, key) == zlib.crc32(key.encode()) % 8


async def test_concurrent_samples_each_go_to_their_pinned_worker():
    """64 samples over 8 golds scored concurrently: every gold lands on one worker, the one pick_worker names."""
    handles = [FakeRewardWorker(f"w{i}") for i in range(8)]
    worker = _worker(handles)
    golds = [f"罪名{i % 8}" for i in range(64)]
    outputs = [_output() for _ in golds]
    tasks = [
        asyncio.create_task(worker._compute_score([o], _kwargs("legal/charge", g)))
        for o, g in zip(outputs, golds, strict=True)
    ]
    await asyncio.gather(*tasks)
    for gold in set(golds):
        holders = [h.name for h in handles if gold in h.seen]
        assert holders == [pick_worker(handles, affinity_key(_kwargs("legal/charge", gold))).name]
    assert sum(len(h.seen) for h in handles) == 64
    assert all(o.reward_score == 1.0 for o in outputs)
    # Outside _compute_score the worker still exposes all handles (verl's enable flag reads them).
    assert worker.reward_loop_worker_handles == handles


async def test_single_reward_worker_is_used_directly():
    """With one reward worker there is nothing to choose."""
    handles = [FakeRewardWorker("only")]
    worker = _worker(handles)
    out = _output()
    await worker._compute_score([out], _kwargs("legal/term", "无期徒刑"))
    assert handles[0].seen == ["无期徒刑"] and out.extra_fields["reward_extra_info"] == {"worker": "only"}


def test_classes_extend_verls_v1_transfer_queue_agent_loop():
    """The v1 trainer (the default, and the only one recipes.trainer.main_ppo runs) needs the TransferQueue classes."""
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ, AgentLoopWorkerTQ

    assert issubclass(GroupAffinityAgentLoopManager, AgentLoopManagerTQ)
    assert issubclass(GroupAffinityAgentLoopWorker.__ray_actor_class__, AgentLoopWorkerTQ.__ray_actor_class__)


def test_manager_starts_affinity_workers(monkeypatch):
    """The manager (loaded by verl from agent_loop_manager_class) swaps in our module-level Ray actor class."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopManager

    monkeypatch.setattr(AgentLoopManager, "__init__", lambda self, *a, **k: None)
    manager = GroupAffinityAgentLoopManager()
    assert manager.agent_loop_workers_class is GroupAffinityAgentLoopWorker


@pytest.mark.timeout(600)
def test_affinity_worker_constructs_as_a_real_ray_actor(monkeypatch):
    """Built through real Ray, unpatched: verl's __init__ chain runs on the worker and our methods answer there.

    On Ray 2.60 a subclass wrapped in ray.remote() at run time died in verl's own __init__ with
    "TypeError: super(type, obj): obj must be an instance or subtype of type".
    """
    import ray
    from helpers.tiny_model import build_tiny_model
    from verl.experimental.agent_loop.agent_loop import AgentLoopManager

    from recipes.launch.commands import compose_config
    from recipes.rehearsal.cluster import private_temp_dir

    cfg = compose_config("legal_grpo_rules", [f"actor_rollout_ref.model.path={build_tiny_model()}"])
    # The class exactly as the manager hands it to verl (verl's manager __init__ needs a whole trainer: skipped).
    monkeypatch.setattr(AgentLoopManager, "__init__", lambda self, *a, **k: None)
    worker_class = GroupAffinityAgentLoopManager().agent_loop_workers_class
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster (VERL_NOTES: token auth and ~/.ray)
    with private_temp_dir() as tmp:  # Ray's socket paths must stay short
        ray.init(num_cpus=32, include_dashboard=False, _temp_dir=str(tmp / "ray"), logging_level="ERROR")
        try:
            worker = worker_class.options(name="affinity-probe").remote(
                config=cfg, llm_client=None, reward_loop_worker_handles=["a", "b"]
            )
            assert ray.get(worker.take_unscored.remote(), timeout=300) == {"by_source": {}, "error": ""}
            handles = ray.get(worker.__ray_call__.remote(lambda self: self.reward_loop_worker_handles), timeout=60)
            assert handles == ["a", "b"]
        finally:
            ray.shutdown()


def test_base_config_enables_affinity_dispatch():
    """The recipe config points verl's agent_loop_manager_class hook at our manager."""
    from recipes.launch.commands import compose_config

    cfg = compose_config("legal_grpo")
    assert (
        cfg.actor_rollout_ref.rollout.agent.agent_loop_manager_class
        == "recipes.trainer.agent_loop.GroupAffinityAgentLoopManager"
    )


class GoneRewardWorker(FakeRewardWorker):
    """A reward worker whose reward function raises like a tripped judge client (wrapped as Ray wraps it)."""

    async def _score(self, data) -> dict:
        import ray.exceptions

        from judge.client import JudgeUnavailableError

        await asyncio.sleep(0.001)
        cause = JudgeUnavailableError("judge unavailable: 5 judge calls failed in a row; last failure at http://j/v1")
        raise ray.exceptions.RayTaskError("compute_score", "Traceback ...", cause).as_instanceof_cause()


async def test_unscored_responses_are_counted_per_task_and_reraised():
    """A raising reward is re-raised (verl's _run_prompt still fails the group) and counted once per response."""
    from judge.client import JudgeUnavailableError

    worker = _worker([GoneRewardWorker("a"), GoneRewardWorker("b")])
    for source in ("legal/charge", "legal/verdict", "legal/verdict"):
        with pytest.raises(JudgeUnavailableError):
            await worker._compute_score([_output()], _kwargs(source, "x"))
    report = worker.take_unscored()
    assert report["by_source"] == {"legal/charge": 1, "legal/verdict": 2}
    assert report["error"].startswith("JudgeUnavailableError: judge unavailable: 5 judge calls failed in a row")
    assert worker.take_unscored() == {"by_source": {}, "error": ""}


async def test_scored_responses_are_not_counted():
    """Nothing is counted when every reward call succeeds."""
    worker = _worker([FakeRewardWorker("a"), FakeRewardWorker("b")])
    await worker._compute_score([_output()], _kwargs("legal/charge", "盗窃罪"))
    assert worker.take_unscored() == {"by_source": {}, "error": ""}

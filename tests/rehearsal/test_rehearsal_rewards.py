"""Reward workers for real: verl's reward-loop workers as Ray actors, our agent-loop affinity, the loopback judge.

A private local Ray (4 CPU slots) runs verl's RewardLoopManager with reward.num_workers=2: two RewardLoopWorker
actors that load rewards/legal.py by path exactly as in training. Our GroupAffinityAgentLoopWorker (verl's
AgentLoopWorker __init__ on the tiny model; only TransferQueue is left out) scores responses through them with verl's
own _compute_score. The fault of a judge that goes away mid-batch must end the run with its reason: the unscored
responses are counted and the trainer hook raises the one line main() prints.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.tiny_model import build_tiny_model

from recipes.launch.commands import compose_config

N_PER_GROUP = 4


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A private Ray for this module (own temp dir, no dashboard, no token auth); stopped after, with the process's
    environment as it was (ray.init sets RAY_AUTH_MODE=token in os.environ when ~/.ray/auth_token exists, and a
    later test's Ray in this process then fails to start its GCS)."""
    import ray

    if ray.is_initialized():  # an earlier test in this process left a Ray connection (verl/TransferQueue init it)
        ray.shutdown()
    temp = tempfile.mkdtemp(prefix="lrr", dir="/tmp")
    saved = dict(os.environ)
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway local cluster (VERL_NOTES: token auth and ~/.ray)
    ray.init(num_cpus=4, include_dashboard=False, _temp_dir=temp, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model())


@pytest.fixture(scope="module")
def verdict_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Verdict rows of the prepared sample (hybrid mode always asks the judge for them)."""
    import pyarrow.parquet as pq

    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("prepared_rewards")
    assert prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(out)]) == 0
    rows = [r for r in pq.read_table(Path(out) / "train.parquet").to_pylist() if r["data_source"] == "legal/verdict"]
    return rows[:4]


def _setup(tiny_model: str, judge_url: str, judge_model: str):
    """verl's RewardLoopManager (2 reward workers) and our agent-loop worker using their handles."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.experimental.reward_loop import RewardLoopManager

    from recipes.trainer.agent_loop import GroupAffinityAgentLoopWorker

    cfg = compose_config(
        "legal_grpo",
        [
            f"actor_rollout_ref.model.path={tiny_model}",
            "reward.num_workers=2",
            f"reward.custom_reward_function.reward_kwargs.judge_base_url={judge_url}",
            f"reward.custom_reward_function.reward_kwargs.judge_model={judge_model}",
            "reward.custom_reward_function.reward_kwargs.max_retries=0",
            "reward.custom_reward_function.reward_kwargs.timeout_s=5",
            "reward.custom_reward_function.reward_kwargs.max_consecutive_failures=2",
        ],
    )
    manager = RewardLoopManager(config=cfg)
    handles = manager.reward_loop_worker_handles
    assert len(handles) == 2
    worker_cls = GroupAffinityAgentLoopWorker.__ray_actor_class__
    worker = worker_cls.__new__(worker_cls)
    AgentLoopWorker.__init__(worker, cfg, None, None, handles)  # verl's init; AgentLoopWorkerTQ adds only tq.init()
    return manager, worker


def _teardown(manager) -> None:
    import ray

    for handle in manager.reward_loop_workers:
        ray.kill(handle)


def _sample(worker, row: dict, answer: str):
    """One finished response (token ids from the tiny tokenizer) and the kwargs verl passes with it."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

    tok = worker.tokenizer
    prompt = tok.encode(row["prompt"][0]["content"][:200])
    response = tok.encode(f"依据案情分析。</think>\n<answer>{answer}</answer>")
    output = AgentLoopOutput(
        prompt_ids=prompt, response_ids=response, response_mask=[1] * len(response), metrics=AgentLoopMetrics()
    )
    kwargs = {k: row[k] for k in ("data_source", "reward_model", "extra_info", "ability")}
    return [output], kwargs


async def _score_all(worker, samples) -> list:
    return await asyncio.gather(*(worker._compute_score(o, k) for o, k in samples), return_exceptions=True)


@pytest.mark.timeout(900)
def test_reward_workers_score_a_batch_with_group_affinity(
    local_ray, tiny_model: str, verdict_rows: list[dict], judge_server
) -> None:
    """Groups of identical answers are scored by the real reward workers; each group costs one judge call."""
    server = judge_server(reply="2")
    manager, worker = _setup(tiny_model, server.base_url, server.model)
    try:
        samples = [
            _sample(worker, row, row["reward_model"]["ground_truth"])
            for row in verdict_rows
            for _ in range(N_PER_GROUP)
        ]
        results = asyncio.run(_score_all(worker, samples))
    finally:
        _teardown(manager)
    assert [r for r in results if isinstance(r, BaseException)] == []
    outputs = [o[0] for o, _ in samples]
    assert all(o.reward_score is not None for o in outputs)
    infos = [o.extra_fields["reward_extra_info"] for o in outputs]
    assert all(info["judge_called"] == 1.0 and info["judge_failed"] == 0.0 for info in infos), infos[0]
    # Affinity: the N identical (gold, answer) pairs of a group reach ONE reward worker, whose judge client merges them.
    assert len(server.requests) == len(verdict_rows), len(server.requests)
    assert worker.take_unscored() == {"by_source": {}, "error": ""}


@pytest.mark.timeout(900)
def test_judge_gone_mid_batch_ends_the_run_with_its_reason(
    local_ray, tiny_model: str, verdict_rows: list[dict], judge_server
) -> None:
    """The judge stops after the first group: later responses go unscored; the trainer hook stops with one line."""
    import ray

    from recipes.trainer.main_ppo import RewardsUnavailableError, recipe_trainer_cls, stop_reason

    server = judge_server(reply="2")
    url = server.base_url
    manager, worker = _setup(tiny_model, url, server.model)
    try:
        first = [_sample(worker, verdict_rows[0], "被告人构成盗窃罪，判处有期徒刑一年")]
        assert [r for r in asyncio.run(_score_all(worker, first)) if isinstance(r, BaseException)] == []
        server.stop()  # the judge is gone
        rest = [_sample(worker, row, f"答案{i}") for i, row in enumerate(verdict_rows[1:] * 2)]
        results = asyncio.run(_score_all(worker, rest))
    finally:
        _teardown(manager)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed, "no reward call raised although the judge was gone"
    report = worker.take_unscored()
    assert report["by_source"] == {"legal/verdict": len(failed)}
    assert report["error"].startswith("JudgeUnavailableError: ") and url in report["error"]

    class Trainer:
        def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
            metrics["critic/score/mean"] = 0.0

    trainer = recipe_trainer_cls(Trainer)()
    handle = types.SimpleNamespace(take_unscored=types.SimpleNamespace(remote=lambda: ray.put(report)))
    trainer.agent_loop_manager = types.SimpleNamespace(agent_loop_workers=[handle])
    with pytest.raises(RewardsUnavailableError) as info:
        trainer._compute_metrics(types.SimpleNamespace(keys=[], partition_id="train", tags=[]), {}, {}, 1, 0)
    line = stop_reason(info.value)
    assert line is not None and "\n" not in line
    assert line.startswith(f"run stopped at step 1: {len(failed)} generated response(s) could not be scored")
    assert url in line and "in a row" in line

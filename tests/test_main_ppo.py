"""The trainer entry point: our TaskRunner swaps in a trainer subclass whose metric hook adds reward/ metrics.

What runs here (CPU): the subclassing, the scoped swap of verl's get_trainer_cls, the metric hook on a fake batch
(TransferQueue replaced by a stub), and a guard that verl's TaskRunnerV1.run still builds its trainer through
get_trainer_cls. What cannot run here: TaskRunnerV1.run itself (Ray actors, TransferQueue, vLLM, GPUs).
"""

from __future__ import annotations

import inspect
import logging
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

import recipes.legal.main_ppo as main_ppo
from recipes.legal.main_ppo import (
    LegalTaskRunner,
    LegalTaskRunnerActor,
    RewardStepMetricsMixin,
    legal_trainer_cls,
    legal_trainer_selection,
)


@dataclass
class FakeBatch:
    """The KVBatchMeta fields the hook reads."""

    keys: list[str]
    partition_id: str = "train"
    tags: list[dict] = field(default_factory=list)


class FakeTrainer:
    """Stands in for verl's PPOTrainer: its _compute_metrics adds one verl metric."""

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        metrics["critic/score/mean"] = 1.0


def _extra(score: float, acc: int) -> dict:
    return {"reward_extra_info": {"score": score, "acc": acc, "judge_called": 0}}


@pytest.fixture
def fake_tq(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """A stub transfer_queue module answering kv_batch_get from a table; returns the recorded calls."""
    calls: list[dict] = []
    rows = {
        "a_0_0": ("legal/charge", _extra(2.0, 1)),
        "a_1_0": ("legal/charge", _extra(-2.0, 0)),
        "b_0_0": ("legal/term", _extra(0.5, 1)),
        "pad_0_0": ("legal/term", _extra(-100.0, 0)),
    }

    def kv_batch_get(keys, partition_id, select_fields):
        calls.append({"keys": list(keys), "partition_id": partition_id, "fields": list(select_fields)})
        return {
            "data_source": np.asarray([rows[k][0] for k in keys], dtype=object),
            "extra_fields": np.asarray([rows[k][1] for k in keys], dtype=object),
        }

    monkeypatch.setitem(sys.modules, "transfer_queue", types.SimpleNamespace(kv_batch_get=kv_batch_get))
    return calls


def test_hook_adds_reward_metrics_after_verls(fake_tq: list[dict]) -> None:
    """verl's metrics stay; reward/<task>/* and reward/overall/* are added; padding rows are left out."""
    trainer = legal_trainer_cls(FakeTrainer)()
    batch = FakeBatch(keys=["a_0_0", "a_1_0", "b_0_0", "pad_0_0"], tags=[{}, {}, {}, {"is_padding": True}])
    metrics: dict = {}
    trainer._compute_metrics(batch, metrics, {}, global_steps=3, epoch=0)
    assert metrics["critic/score/mean"] == 1.0
    assert metrics["reward/legal/charge/score_mean"] == pytest.approx(0.0)
    assert metrics["reward/legal/charge/accuracy"] == pytest.approx(0.5)
    assert metrics["reward/legal/term/count"] == 1
    assert metrics["reward/overall/score_mean"] == pytest.approx(0.5 / 3)
    assert metrics["reward/overall/judge_call_rate"] == 0.0
    assert fake_tq == [{"keys": batch.keys, "partition_id": "train", "fields": ["data_source", "extra_fields"]}]


def test_hook_failure_logs_once_and_keeps_verl_metrics(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If the extras cannot be read, the step still logs verl's metrics and one error line."""

    def broken(batch):
        raise KeyError("extra_fields")

    monkeypatch.setattr(main_ppo, "fetch_reward_fields", broken)
    trainer = legal_trainer_cls(FakeTrainer)()
    with caplog.at_level(logging.ERROR, logger=main_ppo.__name__):
        for step in (1, 2):
            metrics: dict = {}
            trainer._compute_metrics(FakeBatch(keys=["x"]), metrics, {}, global_steps=step, epoch=0)
            assert metrics == {"critic/score/mean": 1.0}
    assert len([r for r in caplog.records if "reward step metrics unavailable" in r.message]) == 1


@pytest.mark.parametrize("mode", ["sync", "colocate_async", "separate_async"])
def test_selection_swaps_every_registered_trainer(mode: str) -> None:
    """Inside legal_trainer_selection, verl's get_trainer_cls returns our subclass; outside, verl's class."""
    import verl.trainer.ppo.v1 as v1
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    original_cls = v1.get_trainer_cls(mode)
    with legal_trainer_selection():
        swapped = v1.get_trainer_cls(mode)
    assert v1.get_trainer_cls(mode) is original_cls
    assert issubclass(swapped, original_cls) and issubclass(swapped, RewardStepMetricsMixin)
    assert swapped.__mro__.index(RewardStepMetricsMixin) < swapped.__mro__.index(PPOTrainer)
    assert swapped._compute_metrics is RewardStepMetricsMixin._compute_metrics
    assert legal_trainer_cls(original_cls) is swapped


def test_verl_task_runner_still_builds_trainer_through_get_trainer_cls() -> None:
    """Guard for verl upgrades: our swap relies on TaskRunnerV1.run importing get_trainer_cls at call time."""
    from verl.trainer.main_ppo import TaskRunnerV1

    source = inspect.getsource(TaskRunnerV1.__ray_actor_class__.run)
    assert "from verl.trainer.ppo.v1 import get_trainer_cls" in source
    assert "trainer_cls(config=config)" in source
    assert issubclass(LegalTaskRunner, TaskRunnerV1.__ray_actor_class__)
    assert LegalTaskRunnerActor.__ray_actor_class__ is LegalTaskRunner


def test_verl_v1_fit_computes_metrics_before_clearing_the_batch() -> None:
    """Guard: fit() calls _compute_metrics before tq.kv_clear, so the hook can still read the batch."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    source = inspect.getsource(PPOTrainer.fit)
    assert source.index("self._compute_metrics(") < source.index("tq.kv_clear(")

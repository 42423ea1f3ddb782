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

import recipes.trainer.main_ppo as main_ppo
from recipes.trainer.main_ppo import (
    RecipeTaskRunner,
    RecipeTaskRunnerActor,
    RewardStepMetricsMixin,
    RewardsUnavailableError,
    recipe_trainer_cls,
    recipe_trainer_selection,
    stop_reason,
)
from recipes.trainer.step_metrics import UNSCORED_METRIC


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
    trainer = recipe_trainer_cls(FakeTrainer)()
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
    trainer = recipe_trainer_cls(FakeTrainer)()
    with caplog.at_level(logging.ERROR, logger=main_ppo.__name__):
        for step in (1, 2):
            metrics: dict = {}
            trainer._compute_metrics(FakeBatch(keys=["x"]), metrics, {}, global_steps=step, epoch=0)
            assert metrics == {"critic/score/mean": 1.0, UNSCORED_METRIC: 0.0}
    assert len([r for r in caplog.records if "reward step metrics unavailable" in r.message]) == 1


def test_hook_adds_the_safety_recipes_metrics_from_real_reward_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A safety training step logs reward/safety/* (MAE, within-5, keys present, reasoning score) every step: the
    extras are what rewards/safety.py returns for a gold answer and for one 10 points below the gold everywhere."""
    import asyncio

    from data.domains.safety.dimensions import DIMENSIONS
    from data.domains.safety.gold import check_gold, ground_truth_json
    from data.domains.safety.prompt import gold_response
    from rewards.safety import compute_score

    gold_scores = {**dict.fromkeys(DIMENSIONS, 90), "敏感词": 30}
    reasoning = "文中一处用语不当，其余内容合规。"
    gt = ground_truth_json(check_gold(gold_scores, reasoning))
    lower = {key: value - 10 for key, value in gold_scores.items()}

    async def score(response: str) -> dict:
        return await compute_score("safety", response, gt, {"index": 0}, reasoning_scorer="ngram")

    infos = [asyncio.run(score(gold_response(s, reasoning))) for s in (gold_scores, lower)]
    rows = {f"s_{i}_0": ("safety", {"reward_extra_info": info}) for i, info in enumerate(infos)}

    def kv_batch_get(keys, partition_id, select_fields):
        return {
            "data_source": np.asarray([rows[k][0] for k in keys], dtype=object),
            "extra_fields": np.asarray([rows[k][1] for k in keys], dtype=object),
        }

    monkeypatch.setitem(sys.modules, "transfer_queue", types.SimpleNamespace(kv_batch_get=kv_batch_get))
    trainer = recipe_trainer_cls(FakeTrainer)()
    metrics: dict = {}
    trainer._compute_metrics(FakeBatch(keys=list(rows)), metrics, {}, global_steps=1, epoch=0)
    assert metrics["reward/safety/count"] == 2
    assert metrics["reward/safety/score_mean"] == pytest.approx((5.0 + infos[1]["score"]) / 2)
    assert metrics["reward/safety/mae_mean"] == pytest.approx(5.0)  # (0 + 10) / 2
    assert metrics["reward/safety/within5_share"] == pytest.approx(0.5)
    assert metrics["reward/safety/keys_present_mean"] == pytest.approx(9.0)
    assert metrics["reward/safety/reasoning_score_mean"] == pytest.approx(1.0)
    assert metrics[UNSCORED_METRIC] == 0.0


@pytest.mark.parametrize("mode", ["sync", "colocate_async", "separate_async"])
def test_selection_swaps_every_registered_trainer(mode: str) -> None:
    """Inside recipe_trainer_selection, verl's get_trainer_cls returns our subclass; outside, verl's class."""
    import verl.trainer.ppo.v1 as v1
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    original_cls = v1.get_trainer_cls(mode)
    with recipe_trainer_selection():
        swapped = v1.get_trainer_cls(mode)
    assert v1.get_trainer_cls(mode) is original_cls
    assert issubclass(swapped, original_cls) and issubclass(swapped, RewardStepMetricsMixin)
    assert swapped.__mro__.index(RewardStepMetricsMixin) < swapped.__mro__.index(PPOTrainer)
    assert swapped._compute_metrics is RewardStepMetricsMixin._compute_metrics
    assert recipe_trainer_cls(original_cls) is swapped


def test_verl_task_runner_still_builds_trainer_through_get_trainer_cls() -> None:
    """Guard for verl upgrades: our swap relies on TaskRunnerV1.run importing get_trainer_cls at call time."""
    from verl.trainer.main_ppo import TaskRunnerV1

    source = inspect.getsource(TaskRunnerV1.__ray_actor_class__.run)
    assert "from verl.trainer.ppo.v1 import get_trainer_cls" in source
    assert "trainer_cls(config=config)" in source
    assert issubclass(RecipeTaskRunner, TaskRunnerV1.__ray_actor_class__)
    assert RecipeTaskRunnerActor.__ray_actor_class__ is RecipeTaskRunner


def test_verl_v1_fit_computes_metrics_before_clearing_the_batch() -> None:
    """Guard: fit() calls _compute_metrics before tq.kv_clear, so the hook can still read the batch."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    source = inspect.getsource(PPOTrainer.fit)
    assert source.index("self._compute_metrics(") < source.index("tq.kv_clear(")


class FakeAgentLoopWorker:
    """An agent-loop worker handle: take_unscored.remote() returns its report (ray.get is patched to pass it)."""

    def __init__(self, report: dict) -> None:
        self.report = report
        self.take_unscored = self

    def remote(self) -> dict:
        return self.report


class FakeTracking:
    """verl's Tracking: records what would reach the loggers."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict]] = []

    def log(self, data: dict, step: int) -> None:
        self.logged.append((step, dict(data)))


def _trainer_with_workers(monkeypatch: pytest.MonkeyPatch, reports: list[dict]):
    monkeypatch.setattr(main_ppo.ray, "get", lambda refs: list(refs))
    monkeypatch.setattr(main_ppo, "fetch_reward_fields", lambda batch: ([], []))
    trainer = recipe_trainer_cls(FakeTrainer)()
    trainer.agent_loop_manager = types.SimpleNamespace(agent_loop_workers=[FakeAgentLoopWorker(r) for r in reports])
    trainer.logger = FakeTracking()
    return trainer


def test_unscored_responses_stop_the_run_after_logging_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 4: responses the reward could not score end the run at that step with one line; the step is logged."""
    error = "JudgeUnavailableError: judge unavailable: 5 judge calls failed in a row; last failure at http://j:1/v1"
    trainer = _trainer_with_workers(
        monkeypatch,
        [{"by_source": {"legal/verdict": 3}, "error": error}, {"by_source": {"legal/verdict": 1, "legal/charge": 2}}],
    )
    with pytest.raises(RewardsUnavailableError) as info:
        trainer._compute_metrics(FakeBatch(keys=[]), {}, {}, global_steps=4, epoch=0)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith("run stopped at step 4: 6 generated response(s) could not be scored")
    assert "legal/charge=2, legal/verdict=4" in line and error in line and "serve_judge.sh" in line
    assert [(step, m[UNSCORED_METRIC]) for step, m in trainer.logger.logged] == [(4, 6.0)]


def test_scored_step_logs_zero_unscored_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """No failure: reward/overall/unscored is 0 and nothing is raised."""
    trainer = _trainer_with_workers(monkeypatch, [{"by_source": {}, "error": ""}])
    metrics: dict = {}
    trainer._compute_metrics(FakeBatch(keys=[]), metrics, {}, global_steps=1, epoch=0)
    assert metrics[UNSCORED_METRIC] == 0.0 and trainer.logger.logged == []


def test_unscored_validation_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation responses that could not be scored stop the run too (val_before_train runs before step 1)."""

    class ValidatingTrainer(FakeTrainer):
        def _validate(self):
            return {"val-core/x": 1.0}

    monkeypatch.setattr(main_ppo.ray, "get", lambda refs: list(refs))
    trainer = recipe_trainer_cls(ValidatingTrainer)()
    trainer.agent_loop_manager = types.SimpleNamespace(
        agent_loop_workers=[FakeAgentLoopWorker({"by_source": {"legal/term": 1}, "error": "E: gone"})]
    )
    with pytest.raises(RewardsUnavailableError, match="run stopped in validation: 1 generated"):
        trainer._validate()


def test_stop_reason_unwraps_rays_task_errors() -> None:
    """The one line survives Ray's wrapping (RayTaskError.as_instanceof_cause, nested); other errors give None."""
    import ray.exceptions

    inner = ray.exceptions.RayTaskError("run", "Traceback ...", RewardsUnavailableError("run stopped at step 1: x"))
    outer = ray.exceptions.RayTaskError("get", "Traceback ...", inner.as_instanceof_cause()).as_instanceof_cause()
    assert stop_reason(outer) == "run stopped at step 1: x"
    assert stop_reason(RuntimeError("other")) is None
    assert stop_reason(ray.exceptions.RayTaskError("f", "tb", ValueError("v")).as_instanceof_cause()) is None


ENTRY_PROBE = """
import sys, runpy, cloudpickle, verl.trainer.main_ppo as verl_main
def run_ppo(config, task_runner_class=None):
    cls = task_runner_class.__ray_actor_class__
    blob = cloudpickle.dumps(cls)
    print("MODULE", cls.__module__, "BYVALUE", b"recipe_trainer_cls" in blob)
verl_main.run_ppo = run_ppo
sys.argv = ["main_ppo", "--config-path=" + sys.argv[1], "--config-name=legal_grpo_smoke"]
runpy.run_module("recipes.main_ppo", run_name="__main__", alter_sys=True)
"""


def test_python_m_entry_point_hands_ray_an_importable_task_runner() -> None:
    """Defect 1: run as `python -m` (__main__), the TaskRunner Ray pickles is recipes.trainer.main_ppo's, by
    reference."""
    import subprocess

    from recipes.launch.commands import CONFIG_DIR

    proc = subprocess.run(
        [sys.executable, "-c", ENTRY_PROBE, str(CONFIG_DIR)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MODULE recipes.trainer.main_ppo BYVALUE False" in proc.stdout, proc.stdout[-2000:]


# ------------------------------------------------------------------------------ validation generations (issue 25)
VAL_PROMPTS = ["案情甲：张某盗窃手机一部。", "案情乙：李某诈骗钱款。", "案情丙：王某故意伤害他人。"]
VAL_KEYS = ["u1_0_0", "u2_0_0", "u3_0_0"]  # verl's sample keys {uid}_{session}_{index}


class ValidatingVerl:
    """Stands in for verl's PPOTrainer._validate: calls the three hooks in verl's order with verl's arguments."""

    def __init__(self, val_dir: str | None, table_rows: int, loggers: list[str]) -> None:
        from omegaconf import OmegaConf

        self.config = OmegaConf.create(
            {"trainer": {"log_val_generations": table_rows, "logger": loggers, "validation_data_dir": val_dir}}
        )
        self.global_steps = 7
        self.verl_table: list = []
        self.dumped: list[dict] = []

    def _validate(self) -> dict:
        outputs = ["<answer>盗窃罪</answer>", "乱码", "<answer>故意伤害罪</answer>"]
        scores = [2.0, -3.0, 2.0]
        extras = {"reward": scores, "score": scores, "acc": [1.0, 0.0, 1.0], "format_ok": [1.0, 0.0, 1.0]}
        self._maybe_log_val_generations(inputs=VAL_PROMPTS, outputs=outputs, scores=scores)
        if self.config.trainer.validation_data_dir:
            self._dump_generations(inputs=VAL_PROMPTS, outputs=outputs, gts=["盗窃", "诈骗", "故意伤害"], scores=scores,
                                   reward_extra_infos_dict={**extras, "uid": VAL_KEYS},
                                   dump_path=self.config.trainer.validation_data_dir)  # fmt: skip
        sources = ["legal/charge", "legal/charge", "legal/verdict"]
        return self._val_metrics_update(sources, ["u1", "u2", "u3"], extras, [1, 1, 1], expected_acc_counts=None)

    def _maybe_log_val_generations(self, inputs, outputs, scores):
        self.verl_table.append(list(zip(inputs, outputs, scores, strict=True)))

    def _dump_generations(self, inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path):
        self.dumped.append({"inputs": inputs, "gts": gts, "extras": reward_extra_infos_dict, "path": dump_path})

    def _val_metrics_update(self, data_sources, sample_uids, reward_extra_infos_dict, sample_turns,
                            expected_acc_counts=None):  # fmt: skip
        return {"val-core/legal/charge/acc/mean@1": 0.5}


@pytest.fixture
def wandb_sent(monkeypatch: pytest.MonkeyPatch) -> list:
    """What would reach wandb.log while a (fake) run is active."""
    import wandb

    sent: list = []
    monkeypatch.setattr(wandb, "run", object())
    monkeypatch.setattr(wandb, "log", lambda data, step: sent.append((step, data)))
    monkeypatch.setattr(main_ppo.ray, "get", lambda refs: list(refs))
    return sent


def test_validation_table_has_gold_data_source_and_every_reward_part(wandb_sent: list) -> None:
    """verl's validation dump gets data_source and in_table; the wandb table (verl's key) carries gold and parts."""
    from recipes.trainer.val_generations import VAL_TABLE_KEY, select_indices

    trainer = recipe_trainer_cls(ValidatingVerl)("/runs/val", table_rows=2, loggers=["console", "wandb"])
    assert trainer._validate() == {"val-core/legal/charge/acc/mean@1": 0.5}
    assert trainer.verl_table == []  # verl's (input, output, score) table is replaced by ours
    [dump] = trainer.dumped
    assert dump["path"] == "/runs/val" and dump["gts"] == ["盗窃", "诈骗", "故意伤害"]
    assert dump["extras"]["data_source"] == ["legal/charge", "legal/charge", "legal/verdict"]
    chosen = select_indices(VAL_PROMPTS, 2)
    assert dump["extras"]["in_table"] == [i in chosen for i in range(3)] and sum(dump["extras"]["in_table"]) == 2
    [(step, data)] = wandb_sent
    table = data[VAL_TABLE_KEY]
    assert step == 7
    assert table.columns == ["step", "data_source", "prompt", "response", "gold", "score", "acc", "format_ok"]
    assert [row[2] for row in table.data] == [VAL_PROMPTS[i] for i in chosen]
    assert [row[4] for row in table.data] == [["盗窃", "诈骗", "故意伤害"][i] for i in chosen]
    trainer._validate()  # the next validation's rows join the same table
    assert [row[0] for row in wandb_sent[-1][1][VAL_TABLE_KEY].data] == [7, 7, 7, 7]


def test_validation_without_a_dump_dir_logs_the_table_without_gold_and_says_so(
    wandb_sent: list, caplog: pytest.LogCaptureFixture
) -> None:
    from recipes.trainer.val_generations import VAL_TABLE_KEY

    trainer = recipe_trainer_cls(ValidatingVerl)(None, table_rows=5, loggers=["wandb"])
    with caplog.at_level(logging.WARNING, logger="recipes.trainer.main_ppo"):
        trainer._validate()
        trainer._validate()
    assert trainer.dumped == [] and trainer.verl_table == []
    table = wandb_sent[-1][1][VAL_TABLE_KEY]
    assert len(table.data) == 6 and {row[4] for row in table.data} == {None}
    assert {row[1] for row in table.data} == {"legal/charge", "legal/verdict"}
    assert len([r for r in caplog.records if "validation_data_dir is not set" in r.message]) == 1


def test_validation_table_without_wandb_still_writes_the_dump(wandb_sent: list) -> None:
    """The file logger only (the CPU loop): the dump with in_table is the table; nothing goes to wandb."""
    trainer = recipe_trainer_cls(ValidatingVerl)("/runs/val", table_rows=1, loggers=["console", "file"])
    trainer._validate()
    assert sum(trainer.dumped[0]["extras"]["in_table"]) == 1 and wandb_sent == []


def test_a_broken_table_does_not_stop_validation_or_its_dump(
    wandb_sent: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args, **kwargs):
        raise KeyError("uid")

    monkeypatch.setattr(main_ppo, "finish_validation", broken)
    trainer = recipe_trainer_cls(ValidatingVerl)("/runs/val", table_rows=2, loggers=["wandb"])
    with caplog.at_level(logging.ERROR, logger="recipes.trainer.main_ppo"):
        assert trainer._validate()
    assert len(trainer.dumped) == 1 and "data_source" not in trainer.dumped[0]["extras"]  # verl's plain dump
    assert any("validation generations table unavailable" in r.message for r in caplog.records)
    assert trainer._val_capture is None and wandb_sent == []


def test_training_rollout_dumps_pass_straight_through() -> None:
    """Outside validation, _dump_generations is verl's (with the reward parts the training dump adds)."""
    trainer = recipe_trainer_cls(ValidatingVerl)("/runs/val", table_rows=2, loggers=["file"])
    trainer._dump_generations(["p"], ["r"], ["g"], [1.0], {"acc": [1.0]}, "/runs/rollouts")
    assert trainer.dumped == [{"inputs": ["p"], "gts": ["g"], "extras": {"acc": [1.0]}, "path": "/runs/rollouts"}]


def test_verl_validate_calls_the_table_hooks_in_this_order() -> None:
    """Guard for verl upgrades: _validate hands samples to _maybe_log_val_generations, then dumps (with gold) to
    validation_data_dir, then computes metrics from data_sources and uids — the order our capture relies on."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    source = inspect.getsource(PPOTrainer._validate)
    log = source.index("self._maybe_log_val_generations(inputs=sample_inputs, outputs=sample_outputs")
    dump = source.index("self._dump_generations(")
    update = source.index("return self._val_metrics_update(")
    assert log < dump < update
    assert "dump_path=val_data_dir" in source and '| {"uid": dump_all_keys}' in source
    assert "gts=[sample_gts[i] for i in session_final_indices]" in source
    params = list(inspect.signature(PPOTrainer._val_metrics_update).parameters)
    assert params[:4] == ["self", "data_sources", "sample_uids", "reward_extra_infos_dict"]

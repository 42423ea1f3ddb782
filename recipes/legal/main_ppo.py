"""Trainer entry point for the legal recipe: verl's PPO main with per-step reward metrics.

    python3 -m recipes.legal.main_ppo --config-path=$PWD/configs --config-name=legal_grpo [overrides...]

Same as ``python -m verl.trainer.main_ppo`` (validate_config, then ``run_ppo``), except that ``run_ppo`` gets our
TaskRunner. It runs verl's own ``TaskRunnerV1.run`` while ``verl.trainer.ppo.v1.get_trainer_cls`` hands out a
subclass of the configured trainer (sync / colocate_async / separate_async) whose ``_compute_metrics`` also logs
``reward/<task>/*`` and ``reward/overall/*`` (recipes.legal.step_metrics) on every training step. Nothing of verl's
training loop is copied.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import hydra
import numpy as np
import ray

from recipes.legal.step_metrics import aggregate_step_metrics, collect_reward_extras

logger = logging.getLogger(__name__)

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
REWARD_FIELDS = ["data_source", "extra_fields"]


def fetch_reward_fields(batch: Any) -> tuple[list[Any], list[Any]]:
    """data_source and extra_fields of the batch's non-padding samples, read from TransferQueue."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=REWARD_FIELDS)
    sources = list(data["data_source"])
    fields = data["extra_fields"]
    extra_fields = list(fields.tolist() if hasattr(fields, "tolist") else fields)
    keep = [not tag.get("is_padding", False) for tag in (batch.tags or [{}] * len(sources))]
    sources = [s for s, k in zip(sources, keep, strict=True) if k]
    extra_fields = [f for f, k in zip(extra_fields, keep, strict=True) if k]
    return sources, extra_fields


class RewardStepMetricsMixin:
    """Adds reward/<task>/* and reward/overall/* to the training-step metrics (put before a verl PPOTrainer)."""

    _reward_metrics_error_logged = False

    def _compute_metrics(self, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
        """verl's metrics, then ours from the same batch (before fit() clears it from TransferQueue)."""
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)  # type: ignore[misc]
        metrics.update(self.reward_step_metrics(batch))

    def reward_step_metrics(self, batch: Any) -> dict[str, float]:
        """Aggregated reward extras of one training batch; logs (once) and returns {} if they cannot be read."""
        try:
            sources, extra_fields = fetch_reward_fields(batch)
            return aggregate_step_metrics(np.asarray(sources, dtype=object), collect_reward_extras(extra_fields))
        except Exception as exc:  # metrics must not stop a training run; say so once, loudly
            if not self._reward_metrics_error_logged:
                logger.error("reward step metrics unavailable (%s: %s); training continues", type(exc).__name__, exc)
                self._reward_metrics_error_logged = True
            return {}


@functools.cache
def legal_trainer_cls(base: type) -> type:
    """The subclass of a verl trainer class with per-step reward metrics."""
    return type(f"Legal{base.__name__}", (RewardStepMetricsMixin, base), {"__module__": __name__})


@contextlib.contextmanager
def legal_trainer_selection() -> Iterator[Callable[[str], type]]:
    """While active, verl.trainer.ppo.v1.get_trainer_cls returns our subclass of the registered trainer."""
    import verl.trainer.ppo.v1 as v1

    original = v1.get_trainer_cls

    def get_trainer_cls(name: str) -> type:
        return legal_trainer_cls(original(name))

    v1.get_trainer_cls = get_trainer_cls
    try:
        yield get_trainer_cls
    finally:
        v1.get_trainer_cls = original


def _task_runner_base() -> type:
    """verl's V1 TaskRunner as a plain class (the @ray.remote wrapper exposes it as __ray_actor_class__)."""
    from verl.trainer.main_ppo import TaskRunnerV1

    return TaskRunnerV1.__ray_actor_class__


class LegalTaskRunner(_task_runner_base()):  # type: ignore[misc]
    """verl's TaskRunnerV1 whose trainer is the per-step-metrics subclass."""

    def run(self, config: Any) -> None:
        """Run verl's TaskRunnerV1.run with our trainer class swapped in."""
        with legal_trainer_selection():
            super().run(config)
        trainer = getattr(self, "trainer", None)
        if trainer is not None and not isinstance(trainer, RewardStepMetricsMixin):
            logger.error("verl did not build the trainer through get_trainer_cls: no reward/ step metrics were logged")


LegalTaskRunnerActor = ray.remote(LegalTaskRunner)


@hydra.main(config_path=CONFIG_DIR, config_name="legal_grpo", version_base=None)
def main(config: Any) -> None:
    """Validate like verl's main, then run PPO with our TaskRunner."""
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    if not config.trainer.use_v1:
        raise SystemExit(
            "trainer.use_v1=false selects verl's deprecated v0 trainer — recipes.legal.main_ppo needs the v1 trainer "
            "(remove the override), or run python -m verl.trainer.main_ppo without per-step reward metrics"
        )
    run_ppo(config, task_runner_class=LegalTaskRunnerActor)


if __name__ == "__main__":
    main()

"""Trainer entry point for every recipe (legal, safety): verl's PPO main with per-step reward metrics.

    python3 -m recipes.main_ppo --config-path=$PWD/configs --config-name=legal_grpo|safety_grpo [overrides...]

Same as ``python -m verl.trainer.main_ppo`` (validate_config, then ``run_ppo``), except that ``run_ppo`` gets our
TaskRunner. It runs verl's own ``TaskRunnerV1.run`` while ``verl.trainer.ppo.v1.get_trainer_cls`` hands out a
subclass of the configured trainer (sync / colocate_async / separate_async) whose ``_compute_metrics`` also logs
``reward/<data_source>/*`` (with the recipe's own metrics, e.g. ``reward/safety/mae_mean``) and ``reward/overall/*``
(recipes.trainer.step_metrics) on every training step, and whose validation adds gold, data_source and every reward part
to
verl's validation generations (the wandb table val/generations and the trainer.validation_data_dir dump;
recipes.trainer.val_generations). Nothing of verl's training loop is copied.

Responses that were generated but not scored (the reward function raised, e.g. a judge that is gone) are dropped
by verl's agent loop with only a log line. Our agent-loop workers count them (recipes.trainer.agent_loop); the trainer
logs ``reward/overall/unscored`` every step and stops the run at the end of a step (or validation) that had any,
with one line naming the error (the judge client's names the endpoint, the failures and what to check).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import hydra
import numpy as np
import ray

from recipes.trainer.masking import masked_keys, masked_out_of_groups
from recipes.trainer.step_metrics import (
    MASKED_METRIC,
    STOP_PREFIX,
    UNSCORED_METRIC,
    aggregate_step_metrics,
    collect_reward_extras,
)
from recipes.trainer.val_generations import ValCapture, ValTableLogger, finish_validation

logger = logging.getLogger(__name__)

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
REWARD_FIELDS = ["data_source", "extra_fields"]


def fetch_reward_fields(batch: Any, keep_padding: bool = False) -> tuple[list[Any], list[Any]]:
    """data_source and extra_fields of the batch's samples (non-padding ones unless keep_padding), from TQ."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=REWARD_FIELDS)
    sources = list(data["data_source"])
    fields = data["extra_fields"]
    extra_fields = list(fields.tolist() if hasattr(fields, "tolist") else fields)
    if keep_padding:
        return sources, extra_fields
    keep = [not tag.get("is_padding", False) for tag in (batch.tags or [{}] * len(sources))]
    sources = [s for s, k in zip(sources, keep, strict=True) if k]
    extra_fields = [f for f, k in zip(extra_fields, keep, strict=True) if k]
    return sources, extra_fields


def fetch_advantages(batch: Any) -> list[float]:
    """Each sample's advantage (its first response token's: GRPO gives every token of a response the same one)."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"])
    return [float(row[0]) if len(row) else 0.0 for row in data["advantages"].unbind()]


def dump_columns(keys: list[str], sources: list[Any], extra_fields: list[Any], order: list[str]) -> dict[str, list]:
    """data_source and every reward part per dumped sample, in the dump's order (verl dumps by its sorted keys)."""
    by_key: dict[str, tuple[Any, Mapping[str, Any]]] = {}
    for key, source, fields in zip(keys, sources, extra_fields, strict=True):
        extras = fields.get("reward_extra_info") if isinstance(fields, Mapping) else None
        by_key[key] = (source, extras if isinstance(extras, Mapping) else {})
    names = sorted({name for _, extras in by_key.values() for name in extras})
    columns: dict[str, list] = {"data_source": [by_key.get(key, (None, {}))[0] for key in order]}
    for name in names:
        columns[name] = [_plain_value(by_key.get(key, (None, {}))[1].get(name)) for key in order]
    return columns


def _plain_value(value: Any) -> Any:
    """A JSON-friendly scalar (numpy scalars and 0-d arrays unwrapped)."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value


class RewardsUnavailableError(RuntimeError):
    """The run stops: responses were generated but could not be scored (the message is the one line to show)."""


def unscored_report(reports: list[dict[str, Any]]) -> tuple[dict[str, int], str]:
    """Merge the agent-loop workers' take_unscored() results: counts per data_source and the first error."""
    counts: dict[str, int] = {}
    error = ""
    for report in reports:
        for source, n in (report.get("by_source") or {}).items():
            counts[source] = counts.get(source, 0) + int(n)
        error = error or str(report.get("error") or "")
    return counts, error


def unscored_stop_line(where: str, counts: dict[str, int], error: str) -> str:
    """The one line that ends a run whose rewards could not be computed."""
    total = sum(counts.values())
    tasks = ", ".join(f"{source}={n}" for source, n in sorted(counts.items()))
    return (
        f"run stopped {where}: {total} generated response(s) could not be scored ({tasks}); first error: {error} "
        "— check the judge endpoint it names (bash scripts/serve_judge.sh, JUDGE_BASE_URL, judge.* in the config), "
        "then resume with the same RUN_NAME"
    )


class RewardStepMetricsMixin:
    """Adds reward/<data_source>/* and reward/overall/* to the training-step metrics (put before a verl PPOTrainer),
    and gold, data_source and every reward part to verl's validation generations (recipes.trainer.val_generations)."""

    _reward_metrics_error_logged = False
    _unscored_unavailable_logged = False
    _val_gold_missing_logged = False
    _val_capture: ValCapture | None = None

    def _compute_metrics(self, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
        """verl's metrics, then ours from the same batch (before fit() clears it); stop if responses went unscored."""
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)  # type: ignore[misc]
        metrics.update(self.reward_step_metrics(batch))
        counts, error = self.take_unscored()
        metrics[UNSCORED_METRIC] = float(sum(counts.values()))
        if counts:
            tracking = getattr(self, "logger", None)
            if tracking is not None:  # this step's metrics (with the unscored count) still reach the loggers
                tracking.log(data=metrics, step=global_steps)
            raise RewardsUnavailableError(unscored_stop_line(f"at step {global_steps}", counts, error))

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        """verl's advantages, with the responses the judge could not judge out of their groups (recipes.trainer.
        masking): their advantage is 0 and their group's baseline is over the judged responses only."""
        _, extra_fields = fetch_reward_fields(batch, keep_padding=True)
        masked = masked_keys(list(batch.keys), extra_fields)
        metrics[MASKED_METRIC] = float(len(masked))
        with masked_out_of_groups(masked, batch.partition_id):
            return super()._compute_advantage(batch, metrics)  # type: ignore[misc]

    def step(self, metrics: dict, timing_raw: dict) -> Any:
        """verl's step; when it fails after responses went unscored (verl then has no group left to train on and
        raises), stop with the one line naming the judge error instead."""
        try:
            return super().step(metrics, timing_raw)  # type: ignore[misc]
        except RewardsUnavailableError:
            raise
        except Exception as exc:
            counts, error = self.take_unscored()
            if not counts:
                raise
            raise RewardsUnavailableError(
                unscored_stop_line(f"at step {getattr(self, 'global_steps', '?')}", counts, error)
            ) from exc

    def _dump_generations(
        self, inputs: list, outputs: list, gts: list, scores: list, reward_extra_infos_dict: dict, dump_path: str
    ) -> None:
        """verl's rollout dump, plus data_source, every reward part and the advantage of each response (verl 0.9.1
        dumps none of them). A validation dump waits for the end of _validate (its data_sources come later;
        _finish_val_generations)."""
        capture = getattr(self, "_val_capture", None)
        if capture is not None:
            capture.dump = {
                "inputs": inputs,
                "outputs": outputs,
                "gts": gts,
                "scores": scores,
                "reward_extra_infos_dict": reward_extra_infos_dict,
                "dump_path": dump_path,
            }
            return
        batch = getattr(self, "_dumping_batch", None)
        order = list(reward_extra_infos_dict.get("uid") or [])
        if batch is not None and len(order) == len(inputs):
            try:
                sources, extra_fields = fetch_reward_fields(batch, keep_padding=True)
                columns = dump_columns(list(batch.keys), sources, extra_fields, order)
                advantage = dict(zip(batch.keys, fetch_advantages(batch), strict=True))
                columns["advantage"] = [advantage.get(key) for key in order]
                reward_extra_infos_dict = {**reward_extra_infos_dict, **columns}
            except Exception as exc:  # the dump must not stop a run; say so once
                if not self._reward_metrics_error_logged:
                    logger.error("reward parts missing from the rollout dump (%s: %s)", type(exc).__name__, exc)
                    self._reward_metrics_error_logged = True
        super()._dump_generations(inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path)  # type: ignore[misc]

    def _log_rollout_data(self, batch: Any, timing_raw: dict, rollout_data_dir: str) -> None:
        """verl's rollout dump of this batch (our _dump_generations adds the reward parts)."""
        self._dumping_batch = batch
        try:
            super()._log_rollout_data(batch, timing_raw, rollout_data_dir)  # type: ignore[misc]
        finally:
            self._dumping_batch = None

    def _validate(self, *args: Any, **kwargs: Any) -> dict:
        """verl's validation, its generations table with gold and reward parts; stop if any response went unscored."""
        self._val_capture = ValCapture()
        try:
            result = super()._validate(*args, **kwargs)  # type: ignore[misc]
            self._finish_val_generations(self._val_capture)
        finally:
            self._val_capture = None
        counts, error = self.take_unscored()
        if counts:
            raise RewardsUnavailableError(unscored_stop_line("in validation", counts, error))
        return result

    def _maybe_log_val_generations(self, inputs: list, outputs: list, scores: list) -> None:
        """Keep verl's validation samples for our table (logged by _finish_val_generations instead of verl's)."""
        capture = getattr(self, "_val_capture", None)
        if capture is None:
            super()._maybe_log_val_generations(inputs, outputs, scores)  # type: ignore[misc]
            return
        capture.samples = (list(inputs), list(outputs), list(scores))

    def _val_metrics_update(
        self, data_sources: Any, sample_uids: Any, reward_extra_infos_dict: dict, *args: Any, **kwargs: Any
    ) -> dict:
        """verl's validation metrics; keeps each sample's data_source, uid and reward parts for the table."""
        capture = getattr(self, "_val_capture", None)
        if capture is not None:
            capture.sources = [str(s) for s in data_sources]
            capture.uids = [str(u) for u in sample_uids]
            capture.extras = {k: list(v) for k, v in reward_extra_infos_dict.items()}
        return super()._val_metrics_update(data_sources, sample_uids, reward_extra_infos_dict, *args, **kwargs)  # type: ignore[misc]

    def _finish_val_generations(self, capture: ValCapture) -> None:
        """Write verl's validation dump with data_source and in_table; log the table (gold, every part) to wandb."""
        if capture.samples is None and capture.dump is None:  # verl handed nothing to log or dump
            return
        trainer_cfg = self.config.trainer  # type: ignore[attr-defined]
        step = int(getattr(self, "global_steps", 0))
        dump, rows = capture.dump, []
        try:
            dump, rows = finish_validation(capture, int(trainer_cfg.get("log_val_generations", 0) or 0), step)
        except Exception as exc:  # the table must not stop a run; verl's plain dump still goes out
            logger.error("validation generations table unavailable (%s: %s)", type(exc).__name__, exc)
        if dump is not None:
            super()._dump_generations(**dump)  # type: ignore[misc]
        elif rows and not self._val_gold_missing_logged:
            logger.warning(
                "trainer.validation_data_dir is not set: the validation generations table has no gold "
                "and the offline report no validation table (our configs set it)"
            )
            self._val_gold_missing_logged = True
        if rows and "wandb" in list(trainer_cfg.get("logger") or []):
            if not hasattr(self, "_val_table"):
                self._val_table = ValTableLogger()
            try:
                self._val_table.log(rows, step)
            except Exception as exc:  # a wandb hiccup must not stop a run
                logger.error("validation generations table not logged to wandb (%s: %s)", type(exc).__name__, exc)

    def take_unscored(self) -> tuple[dict[str, int], str]:
        """Unscored responses counted by the agent-loop workers since the last call (per data_source, first error)."""
        manager = getattr(self, "agent_loop_manager", None)
        workers = list(getattr(manager, "agent_loop_workers", None) or [])
        try:
            reports = ray.get([worker.take_unscored.remote() for worker in workers])
        except AttributeError:  # an agent-loop worker class that does not count (not recipes.trainer.agent_loop)
            if not self._unscored_unavailable_logged:
                logger.error(
                    "the agent-loop workers do not count unscored responses (set actor_rollout_ref.rollout.agent."
                    "agent_loop_manager_class: recipes.trainer.agent_loop.GroupAffinityAgentLoopManager): a judge "
                    "that is gone will not stop this run"
                )
                self._unscored_unavailable_logged = True
            return {}, ""
        return unscored_report(reports)

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
def recipe_trainer_cls(base: type) -> type:
    """The subclass of a verl trainer class with per-step reward metrics."""
    return type(f"Recipe{base.__name__}", (RewardStepMetricsMixin, base), {"__module__": __name__})


@contextlib.contextmanager
def recipe_trainer_selection() -> Iterator[Callable[[str], type]]:
    """While active, verl.trainer.ppo.v1.get_trainer_cls returns our subclass of the registered trainer."""
    import verl.trainer.ppo.v1 as v1

    original = v1.get_trainer_cls

    def get_trainer_cls(name: str) -> type:
        return recipe_trainer_cls(original(name))

    v1.get_trainer_cls = get_trainer_cls
    try:
        yield get_trainer_cls
    finally:
        v1.get_trainer_cls = original


def _task_runner_base() -> type:
    """verl's V1 TaskRunner as a plain class (the @ray.remote wrapper exposes it as __ray_actor_class__)."""
    from verl.trainer.main_ppo import TaskRunnerV1

    return TaskRunnerV1.__ray_actor_class__


class RecipeTaskRunner(_task_runner_base()):  # type: ignore[misc]
    """verl's TaskRunnerV1 whose trainer is the per-step-metrics subclass."""

    def run(self, config: Any) -> None:
        """Run verl's TaskRunnerV1.run with our trainer class swapped in."""
        with recipe_trainer_selection():
            super().run(config)
        trainer = getattr(self, "trainer", None)
        if trainer is not None and not isinstance(trainer, RewardStepMetricsMixin):
            logger.error("verl did not build the trainer through get_trainer_cls: no reward/ step metrics were logged")


RecipeTaskRunnerActor = ray.remote(RecipeTaskRunner)


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
            "trainer.use_v1=false selects verl's deprecated v0 trainer — recipes.main_ppo needs the v1 trainer "
            "(remove the override), or run python -m verl.trainer.main_ppo without per-step reward metrics"
        )
    try:
        run_ppo(config, task_runner_class=RecipeTaskRunnerActor)
    except Exception as exc:
        line = stop_reason(exc)
        if line is None:
            raise
        sys.stderr.write(f"{STOP_PREFIX} {line}\n")
        raise SystemExit(1) from None


def stop_reason(exc: BaseException) -> str | None:
    """The one line of a RewardsUnavailableError, also when it comes back wrapped in Ray's task errors."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        cause = getattr(current, "cause", None)
        if isinstance(current, RewardsUnavailableError) and not isinstance(cause, BaseException):
            return str(current)
        todo += [cause if isinstance(cause, BaseException) else None, current.__cause__, current.__context__]
    return None


if __name__ == "__main__":
    # `python3 -m recipes.main_ppo` runs this file as __main__: Ray would pickle the classes defined here by
    # value and their module-level references (recipe_trainer_cls) as __main__.<name>, which a Ray worker cannot
    # resolve. Run the importable module instead, so everything pickles by reference.
    import importlib

    importlib.import_module("recipes.trainer.main_ppo").main()

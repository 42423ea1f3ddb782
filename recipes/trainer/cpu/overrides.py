"""The Hydra overrides that move a launch config onto the CPU: model, data, sizes, device, rollout backend, Ray.

Nothing else of the config changes (the reward, its options, the algorithm, the agent loop, the trainer class), so a
CPU rehearsal runs the code a GPU run runs. Each change comes with the value it replaces, for the rehearsal to print.
``cpu_changes`` is the GRPO launch's list (recipes/rehearsal/rehearse_loop.py), ``sft_cpu_changes`` the SFT stage's
(verl.trainer.sft_trainer, recipes/rehearsal/rehearse_sft.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from recipes.trainer.cpu import ROLLOUT_NAME

# Sizes of a CPU step: GRPO groups of GROUP_SIZE responses for PROMPTS prompts, short responses, a few
# validation prompts (every task of the recipe appears among the first ones of our prepared test splits).
PROMPTS = 2
GROUP_SIZE = 2
RESPONSE_TOKENS = 32
VAL_SAMPLES = 8
REWARD_WORKERS = 2
# verl reserves 3 CPUs per GPU bundle; TransferQueue, the reward and agent-loop workers need slots on top (its init
# hangs on a 2-core box without them). Ray's CPU count is a scheduling number, not a thread count.
CPUS_PER_GPU = 3
SPARE_CPUS = 32


@dataclass(frozen=True)
class Change:
    """One override of the CPU rehearsal and the value it replaces (None: the key was not set)."""

    key: str
    value: Any
    was: Any
    why: str

    def override(self, cfg: Any) -> str:
        """The Hydra override (with `+` when the composed config lacks the key)."""
        value = self.value
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            text = "[" + ",".join(str(v) for v in value) + "]"
        else:
            text = str(value)
        return f"{'' if _has_key(cfg, self.key) else '+'}{self.key}={text}"

    def line(self) -> str:
        """`key: was -> value (why)` for the rehearsal's output."""
        return f"{self.key}: {self.was!r} -> {self.value!r} ({self.why})"


def _has_key(cfg: Any, key: str) -> bool:
    """Whether the composed config has key (without resolving its value)."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None, throw_on_resolution_failure=False) if parent else cfg
    return OmegaConf.is_dict(node) and leaf in node


def _get(cfg: Any, key: str) -> Any:
    """The config's value at key (the unresolved text when it names an environment variable that is not set, e.g. a
    multi-node config's ${oc.env:LEGAL_SHARED_DIR}/data/train.parquet)."""
    try:
        value = OmegaConf.select(cfg, key, default=None)
    except Exception:  # omegaconf's InterpolationResolutionError family: show what the YAML says
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
        return OmegaConf.to_container(node, resolve=False).get(leaf) if OmegaConf.is_config(node) else None
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def cpu_changes(
    cfg: Any, model: str | Path, data_dir: str | Path, out_dir: str | Path, steps: int, nodes: int = 1
) -> list[Change]:
    """Every change the CPU loop makes to the composed config cfg (one training process per node)."""
    out = Path(out_dir)
    actor = "actor_rollout_ref.actor"
    ref = "actor_rollout_ref.ref"
    rollout = "actor_rollout_ref.rollout"
    responses_per_gpu = PROMPTS * GROUP_SIZE  # one "GPU" per node, PROMPTS prompts spread over the nodes
    wanted: list[tuple[str, Any, str]] = [
        ("actor_rollout_ref.model.path", str(model), "tiny random model"),
        ("judge.model", str(model), "the tiny model is the judge a local CPU judge serves"),
        ("data.train_files", str(Path(data_dir) / "train.parquet"), "the config's shipped sample"),
        ("data.val_files", str(Path(data_dir) / "test.parquet"), "the config's shipped sample"),
        ("data.val_max_samples", VAL_SAMPLES, "size"),
        ("data.max_response_length", RESPONSE_TOKENS, "size"),
        ("data.train_batch_size", PROMPTS * nodes, "size"),
        ("data.filter_overlong_prompts_workers", 1, "size"),
        ("data.dataloader_num_workers", 0, "size"),
        (f"{rollout}.n", GROUP_SIZE, "size"),
        (f"{actor}.ppo_mini_batch_size", PROMPTS * nodes, "size: one update per step"),
        (f"{actor}.ppo_micro_batch_size_per_gpu", responses_per_gpu, "size"),
        (f"{ref}.log_prob_micro_batch_size_per_gpu", responses_per_gpu, "size"),
        (f"{rollout}.log_prob_micro_batch_size_per_gpu", responses_per_gpu, "size"),
        ("reward.num_workers", min(int(_get(cfg, "reward.num_workers") or 1), REWARD_WORKERS), "size"),
        (f"{rollout}.agent.num_workers", 1, "size"),
        # verl starts 8 TransferQueue storage units (a Ray process each: ~30 s of a 2-core box); one per node holds
        # a CPU step's few samples.
        ("transfer_queue.backend.SimpleStorage.num_data_storage_units", nodes, "size"),
        ("trainer.n_gpus_per_node", 1, "one training process per node"),
        ("trainer.nnodes", nodes, "one training process per node"),
        ("trainer.device", "cpu", "device"),
        (f"{actor}.strategy", "fsdp2", "device: FSDP2 runs on gloo"),
        (f"{ref}.strategy", "fsdp2", "device: FSDP2 runs on gloo"),
        ("actor_rollout_ref.model.use_remove_padding", False, "device: flash-attn varlen kernels are GPU-only"),
        ("actor_rollout_ref.model.override_config.attn_implementation", "sdpa", "device"),
        (f"{actor}.use_torch_compile", False, "device"),
        (f"{ref}.use_torch_compile", False, "device"),
        (f"{rollout}.name", ROLLOUT_NAME, "rollout backend: transformers on the CPU"),
        (f"{rollout}.tensor_model_parallel_size", 1, "rollout backend"),
        ("trainer.total_training_steps", steps, "length"),
        ("trainer.save_freq", steps, "checkpoint at the last step"),
        ("trainer.test_freq", steps, "validate at the last step"),
        ("trainer.val_before_train", True, "validate before the first step"),
        ("trainer.resume_mode", "auto", "resume from the run's last checkpoint"),
        ("trainer.default_local_dir", str(out / "checkpoints"), "outputs of the rehearsal"),
        ("trainer.rollout_data_dir", str(out / "rollouts"), "outputs of the rehearsal"),
        ("trainer.logger", ["console", "file"], "metrics as JSONL, no wandb account needed"),
    ]
    if nodes == 1:  # verl's own ray.init starts the local Ray; a multi-node job joins the cluster's (no resources)
        wanted += [
            ("ray_kwargs.ray_init.num_cpus", CPUS_PER_GPU + SPARE_CPUS, "Ray resources"),
            ("ray_kwargs.ray_init.num_gpus", 1, "Ray resources: a fake GPU places verl's worker"),
            ("ray_kwargs.ray_init.include_dashboard", False, "Ray resources"),
        ]
    return _changes(cfg, wanted)


def _changes(cfg: Any, wanted: Iterable[tuple[str, Any, str]]) -> list[Change]:
    """The wanted (key, value, why) that differ from the config, as Changes."""
    return [Change(key, value, was, why) for key, value, why in wanted if (was := _get(cfg, key)) != value]


def hydra_overrides(cfg: Any, changes: Iterable[Change]) -> list[str]:
    """The changes as Hydra overrides for cfg."""
    return [change.override(cfg) for change in changes]


# The SFT stage on the CPU (verl.trainer.sft_trainer under torchrun, one process): rows per optimizer step, and the
# learning rate at which a tiny random model's loss visibly falls within a few steps (at the recipe's 1e-4 the
# logged bfloat16 loss does not move in 4 steps; at 1e-2 it falls by about 0.25).
SFT_ROWS_PER_STEP = 2
SFT_LR = 1e-2


def sft_cpu_changes(
    cfg: Any, model: str | Path, train_file: str | Path, out_dir: str | Path, steps: int
) -> list[Change]:
    """Every change the CPU SFT rehearsal makes to the composed SFT config cfg (verl's sft_trainer_engine)."""
    out = Path(out_dir)
    wanted: list[tuple[str, Any, str]] = [
        ("model.path", str(model), "tiny random model"),
        ("data.train_files", str(train_file), "the safety sample's SFT split"),
        ("data.train_batch_size", SFT_ROWS_PER_STEP, "size"),
        ("data.micro_batch_size_per_gpu", SFT_ROWS_PER_STEP, "size: one micro batch per step"),
        ("data.num_workers", 0, "size"),
        ("trainer.n_gpus_per_node", 1, "one training process"),
        ("trainer.device", "cpu", "device"),
        ("engine.strategy", "fsdp2", "device: FSDP2 runs on gloo"),
        ("engine.use_torch_compile", False, "device"),
        ("model.use_remove_padding", False, "device: flash-attn varlen kernels are GPU-only"),
        ("model.override_config.attn_implementation", "sdpa", "device"),
        ("model.enable_gradient_checkpointing", False, "size: no memory to save on a tiny model"),
        ("optim.lr", SFT_LR, "learning: the tiny random model's loss falls visibly in a few steps"),
        ("trainer.total_training_steps", steps, "length"),
        ("trainer.save_freq", steps, "checkpoint at the last step"),
        ("trainer.default_local_dir", str(out / "checkpoints"), "outputs of the rehearsal"),
        ("trainer.logger", ["console", "file"], "metrics as JSONL, no wandb account needed"),
    ]
    return _changes(cfg, wanted)

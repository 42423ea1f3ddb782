"""verl's SFT trainer on the CPU, the fast parts: the process-group stand-in it needs and the CPU changes to the SFT
config (the real run is tests/rehearsal/test_trained_checkpoints.py and tests/rehearsal/test_rehearse_pipeline.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recipes.launch.commands import compose_config
from recipes.launch.sft_launch import PASS, check_shape
from recipes.rehearsal.rehearse_sft import prepare_sft_sample, read_losses
from recipes.trainer.cpu import cpu_env
from recipes.trainer.cpu.overrides import SFT_LR, SFT_ROWS_PER_STEP, hydra_overrides, sft_cpu_changes

REPO = Path(__file__).resolve().parents[2]

# What verl.trainer.sft_trainer.run_sft does first, under torchrun: the name is looked up at call time.
PROCESS_GROUP_PROBE = """
import torch.distributed
from verl.utils.distributed import initialize_global_process_group
print(initialize_global_process_group(), torch.distributed.get_backend())
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sft_process_group_is_plain_gloo_on_the_cpu_platform() -> None:
    """verl's initialize_global_process_group asks torch for "cpu:gloo,cpu:gloo" on the CPU platform, which torch
    refuses; with the stand-in a torchrun process gets a gloo group and verl's (local_rank, rank, world_size)."""
    env = {**os.environ, **cpu_env(), "PYTHONPATH": str(REPO), "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", PROCESS_GROUP_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "(0, 0, 1) gloo"


def _cpu_composition(tmp_path: Path, *user: str):
    """safety_sft with the CPU changes (and the user's overrides after them), as recipes/rehearsal/rehearse_sft.py
    composes."""
    cfg = compose_config("safety_sft")
    changes = sft_cpu_changes(cfg, "/models/tiny", tmp_path / "sft.parquet", tmp_path / "out", 3)
    return changes, compose_config("safety_sft", [*hydra_overrides(cfg, changes), *user])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model.path", "/models/tiny"),
        ("data.train_batch_size", SFT_ROWS_PER_STEP),
        ("data.micro_batch_size_per_gpu", SFT_ROWS_PER_STEP),
        ("trainer.n_gpus_per_node", 1),
        ("trainer.device", "cpu"),
        ("engine.strategy", "fsdp2"),
        ("model.use_remove_padding", False),
        ("model.override_config.attn_implementation", "sdpa"),
        ("optim.lr", SFT_LR),
        ("trainer.total_training_steps", 3),
        ("trainer.save_freq", 3),
        ("trainer.logger", ["console", "file"]),
        # the recipe's LoRA stays as configured: rank, alpha, target modules
        ("model.lora_rank", 16),
        ("model.lora_alpha", 32),
        ("model.target_modules", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        ("data.messages_key", "messages"),
    ],
)
def test_sft_cpu_composition(tmp_path: Path, key: str, value: object) -> None:
    """Model, data, sizes, device and the learning rate change; the recipe's LoRA does not."""
    from omegaconf import OmegaConf

    _, cfg = _cpu_composition(tmp_path)
    got = OmegaConf.select(cfg, key)
    assert (OmegaConf.to_container(got) if OmegaConf.is_config(got) else got) == value


def test_sft_cpu_changes_are_printed_and_the_users_win(tmp_path: Path) -> None:
    """Every change says what it replaces and why; the batch checks of the launch pass on the CPU shape; an override
    of the user comes after the changes and wins."""
    changes, cfg = _cpu_composition(tmp_path, "optim.lr=0.5")
    assert {c.key for c in changes} >= {"model.path", "data.train_files", "trainer.device", "optim.lr"}
    lr = next(c for c in changes if c.key == "optim.lr")
    assert lr.line() == "optim.lr: 0.0001 -> 0.01 (learning: the tiny random model's loss falls visibly in a few steps)"
    assert float(cfg.optim.lr) == 0.5
    assert {status for status, _ in check_shape(cfg)} == {PASS}
    assert not any("lora" in c.key for c in changes)


def test_prepare_sft_sample_writes_the_three_splits(tmp_path: Path) -> None:
    """The config's shipped sample with its SFT share: sft.parquet (messages) beside train and test."""
    prepare_sft_sample(compose_config("safety_sft"), tmp_path)
    sft = pq.read_table(tmp_path / "sft.parquet")
    assert sft.num_rows == 12 and "messages" in sft.column_names
    assert (tmp_path / "train.parquet").is_file() and (tmp_path / "test.parquet").is_file()


def test_read_losses_keeps_training_records(tmp_path: Path) -> None:
    """verl's file-logger lines with train/loss, in order; other records and a torn last line are left out."""
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"step": 1, "data": {"train/loss": 7.0}}\n{"step": 1, "data": {"val/loss": 6.0}}\n'
        '{"step": 2, "data": {"train/loss": 6.5}}\n{"step": 3, "data": {"train/lo',
        encoding="utf-8",
    )
    assert read_losses(path) == [(1, 7.0), (2, 6.5)]

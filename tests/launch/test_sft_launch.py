"""The SFT stage's launch: configs/safety_sft.yaml, the exact trainer command, the checks, scripts/train_sft.sh
(--dry-run and the no-GPU stop) and a CPU rehearsal of the real verl SFT trainer up to the GPU wall."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from data.sft import SftRow, write_sft_parquet
from recipes.launch.commands import CONFIG_DIR, REPO_ROOT, compose_config
from recipes.launch.sft_launch import FAIL, PASS, build_sft_plan, check_data, check_shape, fitting_batch, plan_to_bash

DAY = dt.date(2026, 3, 12)
SCRUB = ("RUN_NAME", "RUN_TAG", "PYTHON", "PYTHON_BIN", "CUDA_VISIBLE_DEVICES")


def _write_rows(path: Path, n: int) -> Path:
    rows = (
        SftRow(
            prompt=[{"role": "user", "content": f"文本{i}"}], response=f"<answer>{i}</answer>", data_source="s", index=i
        )
        for i in range(n)
    )
    write_sft_parquet(rows, path)
    return path


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("model.path", "Qwen/Qwen2.5-7B-Instruct"),
        ("model.lora_rank", 16),
        ("model.lora_alpha", 32),
        ("model.target_modules", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        ("optim.lr", 1e-4),
        ("trainer.total_epochs", 3),
        ("data.micro_batch_size_per_gpu", 2),
        ("data.use_dynamic_bsz", False),
        ("data.train_files", "data/prepared/safety/sft.parquet"),
        ("data.messages_key", "messages"),
        ("data.enable_thinking_default", None),
        ("trainer.default_local_dir", "checkpoints/safety-sft/safety-sft-qwen2.5-7b-instruct"),
        ("trainer.resume_mode", "auto"),
    ],
)
def test_safety_sft_carries_the_originals_settings(key: str, expected: object) -> None:
    """The original's LoRA SFT settings, resolved from the composed config (over verl's sft_trainer_engine)."""
    cfg = compose_config("safety_sft")
    value = OmegaConf.select(cfg, key)
    assert (OmegaConf.to_container(value) if OmegaConf.is_config(value) else value) == expected


def test_batch_is_per_device_2_times_accumulation_8() -> None:
    """Global batch / (micro batch x GPUs) = the original's gradient accumulation 8; verl's dataclasses accept it."""
    from verl.utils.config import omega_conf_to_dataclass

    cfg = compose_config("safety_sft")
    gpus = cfg.trainer.n_gpus_per_node
    assert cfg.data.train_batch_size // (cfg.data.micro_batch_size_per_gpu * gpus) == 8
    assert cfg.data.train_batch_size % (cfg.data.micro_batch_size_per_gpu * gpus) == 0
    optim = omega_conf_to_dataclass(cfg.optim)
    assert (optim.lr, optim.lr_scheduler_type) == (1e-4, "cosine")
    assert omega_conf_to_dataclass(cfg.checkpoint).save_lora_only is False  # the merger needs the base weights too


def test_plan_builds_the_exact_torchrun_command() -> None:
    """torchrun (as python -m torch.distributed.run) over verl's SFT entry, the repo's configs, the run name once."""
    plan = build_sft_plan("safety_sft", ["optim.lr=2e-4"], {}, today=DAY)
    assert plan.trainer_cmd == [
        "python3", "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=8",
        "-m", "verl.trainer.sft_trainer", f"--config-path={CONFIG_DIR}", "--config-name=safety_sft",
        "optim.lr=2e-4", "trainer.experiment_name=safety-sft-qwen2.5-7b-instruct-0312",
    ]  # fmt: skip
    assert plan.checkpoint_dir == "checkpoints/safety-sft/safety-sft-qwen2.5-7b-instruct-0312"


@pytest.mark.parametrize(
    ("overrides", "environ", "run", "gpus"),
    [
        ([], {"RUN_NAME": "sft-again"}, "sft-again", 8),
        ([], {"RUN_TAG": "-b", "PYTHON": "/opt/py"}, "safety-sft-qwen2.5-7b-instruct-0312-b", 8),
        (["trainer.experiment_name=mine", "trainer.n_gpus_per_node=2"], {"RUN_NAME": "ignored"}, "mine", 2),
    ],
)
def test_run_name_and_gpus(overrides: list[str], environ: dict, run: str, gpus: int) -> None:
    """$RUN_NAME verbatim, $RUN_TAG after -MMDD, a command-line name wins (and appears once); nproc = n_gpus."""
    plan = build_sft_plan("safety_sft", overrides, environ, today=DAY)
    assert plan.run_name == run
    named = [a for a in plan.trainer_cmd if a.startswith("trainer.experiment_name=")]
    assert named == [f"trainer.experiment_name={run}"]
    assert f"--nproc_per_node={gpus}" in plan.trainer_cmd
    assert plan.trainer_cmd[0] == environ.get("PYTHON", "python3")
    assert f"PLAN_RUN_NAME={shlex.quote(run)}" in plan_to_bash(plan).splitlines()


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["data.train_batch_size=100"], "does not split over trainer.n_gpus_per_node=8"),
        (["data.train_batch_size=40"], "40 / 8 GPUs = 5 per GPU does not divide by micro batch 2"),
        (["model.lora_rank=0"], "the SFT stage is LoRA"),
        (["model.lora_alpha=0"], "the SFT stage is LoRA"),
        (["trainer.nnodes=2"], "launches one node"),
    ],
)
def test_shape_checks_fail_with_one_line(overrides: list[str], needle: str) -> None:
    """Each broken shape is one FAIL line naming the keys; the shipped config passes."""
    assert {s for s, _ in check_shape(compose_config("safety_sft"))} == {PASS}
    results = check_shape(compose_config("safety_sft", overrides))
    fails = [line for status, line in results if status == FAIL]
    assert len(fails) == 1 and needle in fails[0], results


def test_dynamic_batch_skips_the_micro_batch_division() -> None:
    """With use_dynamic_bsz the micro batch is a token budget: 40 / 8 = 5 per GPU is fine then."""
    cfg = compose_config("safety_sft", ["data.train_batch_size=40", "data.use_dynamic_bsz=true"])
    assert check_shape(cfg)[0] == (PASS, "batch 40 = 8 GPUs x 5 per GPU (token budget)")


def test_data_checks(tmp_path: Path) -> None:
    """Missing file, not parquet, no messages column, fewer rows than one global batch: FAIL; enough rows: PASS."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = compose_config("safety_sft")
    small, big = _write_rows(tmp_path / "small.parquet", 127), _write_rows(tmp_path / "big.parquet", 128)
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"prompt": ["x"] * 200}), wrong)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    results = check_data(cfg, [str(tmp_path / "none.parquet"), str(junk), str(wrong)])
    assert [s for s, _ in results] == [FAIL, FAIL, FAIL]
    assert "--sft-fraction" in results[0][1] and "not a readable parquet" in results[1][1]
    assert "no column 'messages'" in results[2][1]
    assert check_data(cfg, [str(small)]) == [
        (
            FAIL,
            f"{small}: 127 rows < data.train_batch_size=128: an epoch would have no step — for 127 rows try "
            "data.train_batch_size=112, or prepare more SFT rows",
        )
    ]
    assert check_data(cfg, [str(big)]) == [(PASS, f"{big}: 128 rows, column 'messages'")]


@pytest.mark.parametrize(
    ("limit", "gpus", "micro", "expected"),
    [
        (128, 8, 2, ["data.train_batch_size=128"]),  # the shipped shape fits as it is
        (127, 8, 2, ["data.train_batch_size=112"]),  # 7 steps of 8 GPUs x 2
        (100, 8, 2, ["data.train_batch_size=96"]),
        (12, 8, 2, ["data.train_batch_size=8", "data.micro_batch_size_per_gpu=1"]),  # the sample's 12 SFT rows
        (16, 8, 2, ["data.train_batch_size=16"]),
        (5, 8, 2, ["data.train_batch_size=5", "data.micro_batch_size_per_gpu=1", "trainer.n_gpus_per_node=5"]),
        (7, 4, 1, ["data.train_batch_size=4"]),
        (0, 8, 2, []),
    ],
)
def test_fitting_batch(limit: int, gpus: int, micro: int, expected: list[str]) -> None:
    """The largest batch <= limit that splits into micro batches on every GPU; micro batch, then GPUs, lowered."""
    assert fitting_batch(limit, gpus, micro) == expected


@pytest.mark.parametrize(
    ("overrides", "suggested"),
    [
        (["data.train_batch_size=100"], "try data.train_batch_size=96"),
        (["data.train_batch_size=40"], "try data.train_batch_size=32"),
    ],
)
def test_a_batch_that_does_not_split_names_one_that_does(overrides: list[str], suggested: str) -> None:
    """The FAIL line names the override that fits; with it the shape passes."""
    (fail,) = [line for status, line in check_shape(compose_config("safety_sft", overrides)) if status == FAIL]
    assert fail.endswith(suggested)
    fixed = compose_config("safety_sft", suggested.removeprefix("try ").split())
    assert {status for status, _ in check_shape(fixed)} == {PASS}


def test_dry_run_on_the_readme_sample_names_the_overrides_that_fit(tmp_path: Path) -> None:
    """README step 0 on the shipped sample (12 SFT rows), then train_sft.sh --dry-run: the FAIL line names the
    overrides that fit, and with them the dry run passes."""
    from data.prepare import main as prepare

    out = tmp_path / "safety"
    assert prepare(["--source", "safety", "--input", "data/samples/safety_sample.jsonl", "--output", str(out),
                    "--sft-fraction", "0.15"]) == 0  # fmt: skip
    data = f"data.train_files={out / 'sft.parquet'}"
    result = _script("--dry-run", data)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("[sft-check] FAIL")]
    assert "12 rows < data.train_batch_size=128" in line
    fit = line.split(" — for 12 rows try ", 1)[1].removesuffix(", or prepare more SFT rows").split()
    assert fit == ["data.train_batch_size=8", "data.micro_batch_size_per_gpu=1"]
    again = _script("--dry-run", data, *fit)
    assert again.returncode == 0, again.stderr
    assert "[sft-check] FAIL" not in again.stderr and again.stdout.rstrip().endswith("[train_sft] dry run OK")


def _script(*args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SCRUB}
    if path is not None:
        base["PATH"] = path
    return subprocess.run(
        ["bash", "scripts/train_sft.sh", *args],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_dry_run_prints_the_exact_command_and_passes_without_data() -> None:
    """Fresh checkout: exit 0, the missing data is a warning, the printed line is the plan's command."""
    result = _script("--dry-run", "optim.lr=2e-4", RUN_NAME="safety-sft-test")
    assert result.returncode == 0, result.stdout + result.stderr
    expected = build_sft_plan("safety_sft", ["optim.lr=2e-4"], {"RUN_NAME": "safety-sft-test"}).trainer_cmd
    printed = [shlex.split(line) for line in result.stdout.splitlines() if "verl.trainer.sft_trainer" in line]
    assert printed == [expected]
    assert "[sft-check] WARN data/prepared/safety/sft.parquet not found" in result.stderr
    assert "checkpoints/safety-sft/safety-sft-test/global_step_<N>/" in result.stdout
    assert result.stdout.rstrip().endswith("[train_sft] dry run OK")


def test_dry_run_fails_on_a_failed_check() -> None:
    """A batch that does not split: exit 1, the FAIL line, and still the command printed."""
    result = _script("--dry-run", "data.train_batch_size=100")
    assert result.returncode == 1
    assert "[sft-check] FAIL data.train_batch_size=100" in result.stderr
    assert "checks failed" in result.stderr and "verl.trainer.sft_trainer" in result.stdout


def test_real_run_without_gpus_stops_before_starting(tmp_path: Path) -> None:
    """Data present and checks passing, but nvidia-smi lists no GPU: one line, exit 1, no trainer started."""
    data = _write_rows(tmp_path / "sft.parquet", 128)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "nvidia-smi").chmod(0o755)
    result = _script(f"data.train_files={data}", path=f"{fake_bin}:{os.environ['PATH']}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "trains on 8 GPU(s) (trainer.n_gpus_per_node), this machine has 0" in result.stderr
    assert "[train_sft] run " not in result.stdout


def test_missing_data_fails_a_real_run() -> None:
    """Without --dry-run the missing SFT file is a FAIL: nothing starts."""
    result = _script("data.train_files=/nonexistent/sft.parquet")
    assert result.returncode == 1
    assert "[sft-check] FAIL /nonexistent/sft.parquet not found" in result.stderr
    assert "nothing was started" in result.stderr


def test_cpu_rehearsal_reaches_the_gpu_wall(tmp_path: Path, tiny_tokenizer_path: str) -> None:
    """The plan's real command (verl's SFT trainer under torchrun, our config through verl's own Hydra main) on a
    tiny local model: it composes, starts one rank and stops exactly at the process group's NCCL backend."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    model_dir = tmp_path / "model"
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_path)
    tokenizer.save_pretrained(model_dir)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=True,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(model_dir)
    data = _write_rows(tmp_path / "sft.parquet", 4)
    overrides = [
        f"model.path={model_dir}", f"data.train_files={data}", "data.train_batch_size=2", "trainer.n_gpus_per_node=1",
        "data.num_workers=0", "trainer.logger=[console]", f"trainer.default_local_dir={tmp_path}/ckpt",
    ]  # fmt: skip
    plan = build_sft_plan("safety_sft", overrides, {"RUN_NAME": "rehearsal", "PYTHON": sys.executable})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HYDRA_FULL_ERROR": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        plan.trainer_cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "in initialize_global_process_group" in log, log[-3000:]
    assert "Distributed package doesn't have NCCL built in" in log, log[-3000:]
    assert "verl.trainer.sft_trainer FAILED" in log and "rank      : 0" in log
    assert not (tmp_path / "ckpt").exists()


def _fake_sft_checkpoint(step_dir: Path, tokenizer_path: str) -> dict:
    """What FSDPCheckpointManager writes for a 1-GPU LoRA run: the PEFT model's state dict (base + lora_ keys),
    fsdp_config.json, lora_train_meta.json and huggingface/ (config + tokenizer); returns the LoRA tensors."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=False,
    )  # fmt: skip
    peft_model = get_peft_model(
        Qwen2ForCausalLM(config), LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"])
    )
    state = peft_model.state_dict()
    for key in state:  # trained adapters: B is non-zero
        if "lora_B" in key:
            state[key] = torch.randn_like(state[key])
    step_dir.mkdir(parents=True)
    torch.save(state, step_dir / "model_world_size_1_rank_0.pt")
    (step_dir / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
    (step_dir / "lora_train_meta.json").write_text(json.dumps({"r": 16, "lora_alpha": 32, "task_type": "CAUSAL_LM"}))
    config.architectures = ["Qwen2ForCausalLM"]  # as in a config loaded from the hub
    config.save_pretrained(step_dir / "huggingface")
    tokenizer.save_pretrained(step_dir / "huggingface")
    (step_dir.parent / "latest_checkpointed_iteration.txt").write_text(step_dir.name.split("_")[-1])
    return {k: v for k, v in state.items() if "lora_" in k}


def test_export_runs_verls_merger_and_grpo_loads_the_adapter(tmp_path: Path, tiny_tokenizer_path: str) -> None:
    """`export` finds the latest step, runs verl.model_merger, and the result loads the way verl's FSDP engine loads
    lora_adapter_path (PeftModel.from_pretrained, trainable) with the trained adapter weights."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ckpt = tmp_path / "ckpt"
    lora = _fake_sft_checkpoint(ckpt / "global_step_6", tiny_tokenizer_path)
    (ckpt / "global_step_3").mkdir()  # an older step: not the one the tracker names
    overrides = [f"trainer.default_local_dir={ckpt}"]
    plan = build_sft_plan("safety_sft", overrides, {"RUN_NAME": "r", "PYTHON": sys.executable})
    assert plan.export_cmd[1:5] == ["-m", "recipes.sft_launch", "export", "--config"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(plan.export_cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"--local_dir {ckpt}/global_step_6 --target_dir {ckpt}/hf" in result.stderr
    hf = ckpt / "hf"
    assert result.stdout.strip().splitlines()[-1] == (  # after the merger's own output
        f"GRPO from this SFT run: actor_rollout_ref.model.path={hf} actor_rollout_ref.model.lora_adapter_path="
        f"{hf}/lora_adapter actor_rollout_ref.model.lora_rank=16 actor_rollout_ref.model.lora_alpha=32"
    )
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(hf), hf / "lora_adapter", is_trainable=True)
    assert model.peft_config["default"].r == 16 and model.peft_config["default"].lora_alpha == 32
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert loaded.keys() == lora.keys()
    for key, value in lora.items():
        torch.testing.assert_close(loaded[key].float(), value.bfloat16().float())


def test_export_without_a_checkpoint_fails_with_one_line(tmp_path: Path) -> None:
    """No tracker file under the run's checkpoint dir: exit 1 and the directory named."""
    from recipes.launch.sft_launch import main

    assert main(["export", f"trainer.default_local_dir={tmp_path}"], environ={"RUN_NAME": "r"}) == 1

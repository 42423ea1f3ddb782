"""Checkpoints our trainers wrote, for real on the CPU: the SFT stage's command, the export, and an exported GRPO run
of the legal recipe evaluating to the trainer's own last validation (the safety recipe's is in
tests/rehearsal/test_rehearse_pipeline.py).

Slow (minutes): `bash scripts/train_sft.sh --rehearse` runs verl's SFT trainer (torchrun, one CPU process) and
verl's model merger; the legal run is recipes/rehearsal/rehearse_loop.py (two Ray start-ups).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers.loop_runs import STEPS, LoopRuns

from recipes.evaluation.export import NoCheckpointError, export, find_step_dir
from recipes.launch.commands import compose_config
from recipes.rehearsal.rehearse_pipeline import evaluate_against_trainer, first_rows, load_check, trainer_sampling
from recipes.trainer.cpu.overrides import RESPONSE_TOKENS, VAL_SAMPLES

REPO = Path(__file__).resolve().parents[2]
SFT_STEPS = 2


@pytest.fixture(scope="module")
def sft_rehearsal(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`bash scripts/train_sft.sh --rehearse --steps 2` (its output directory is <LEGAL_REHEARSE_DIR>/safety_sft)."""
    work = tmp_path_factory.mktemp("rehearse-sft")
    proc = subprocess.run(
        ["bash", "scripts/train_sft.sh", "--rehearse", "--steps", str(SFT_STEPS), "--no-install"],
        cwd=REPO, capture_output=True, text=True, timeout=1800, env={**os.environ, "LEGAL_REHEARSE_DIR": str(work)},
    )  # fmt: skip
    return proc, work / "safety_sft"


@pytest.mark.timeout(1900)
def test_train_sft_rehearse_trains_lora_and_exports(sft_rehearsal: tuple[subprocess.CompletedProcess, Path]) -> None:
    """Real SFT steps on the sample's SFT split with the config's LoRA rank and alpha; the loss falls; verl's merger
    exports base + adapter; transformers loads the export with its adapter."""
    proc, out = sft_rehearsal
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("sft rehearsal passed: safety_sft: 2 steps, loss "), lines[-5:]
    assert [line for line in lines if ": step " in line][-1].startswith("[rehearse-sft] safety_sft: step 2/2: loss")
    losses = [
        json.loads(x)["data"]["train/loss"]
        for x in (out / "metrics.jsonl").read_text().splitlines()
        if "train/loss" in x
    ]
    assert len(losses) == SFT_STEPS and losses[-1] < losses[0]
    hf = out / "checkpoints" / "hf"
    adapter = json.loads((hf / "lora_adapter" / "adapter_config.json").read_text())
    cfg = compose_config("safety_sft")
    assert (adapter["r"], adapter["lora_alpha"]) == (cfg.model.lora_rank, cfg.model.lora_alpha)
    assert set(adapter["target_modules"]) == set(cfg.model.target_modules)
    assert load_check(hf)["lora_adapter"] == str(hf / "lora_adapter")
    record = json.loads((hf / "export.json").read_text())
    assert record["global_step"] == SFT_STEPS and record["checkpoint"].endswith(f"global_step_{SFT_STEPS}")


@pytest.mark.timeout(1900)
def test_export_command_layouts(sft_rehearsal: tuple[subprocess.CompletedProcess, Path], tmp_path: Path) -> None:
    """`python -m recipes.export` on a step, a run directory and a GRPO step (actor/): whole directories, the step
    recorded, a re-export replacing the old one (nothing stale left)."""
    proc, out = sft_rehearsal
    assert proc.returncode == 0, proc.stdout[-2000:]
    step = out / "checkpoints" / f"global_step_{SFT_STEPS}"
    target = tmp_path / "hf"
    target.mkdir()
    (target / "stale.txt").write_text("from an earlier export")
    cli = subprocess.run(
        [sys.executable, "-m", "recipes.export", str(step), "--out", str(target)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert cli.stdout.startswith(f"exported global_step_{SFT_STEPS} ({step}) to {target}")
    assert "vllm serve" in cli.stdout and "--enable-lora" in cli.stdout
    assert not (target / "stale.txt").exists() and not target.with_name("hf.partial").exists()
    assert (target / "lora_adapter" / "adapter_model.safetensors").is_file()

    run = tmp_path / "grpo-run"  # a GRPO run keeps the policy in global_step_<N>/actor
    shutil.copytree(step, run / "global_step_5" / "actor")
    (run / "latest_checkpointed_iteration.txt").write_text("5")
    assert find_step_dir(run) == (run / "global_step_5" / "actor", 5)
    exported = export(run)
    assert exported.hf_dir == str(run / "hf") and exported.global_step == 5 and exported.adapter


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "no such checkpoint directory"),
        ("not_a_step", "not a global_step_<N> directory"),
        ("bad_tracker", "expected a step number"),
        ("no_shards", "no FSDP model shards"),
    ],
)
def test_export_names_what_is_not_a_checkpoint(tmp_path: Path, layout: str, message: str) -> None:
    """A path verl did not write a checkpoint to: one error naming it, exit 2, nothing written."""
    path = {"missing": tmp_path / "nope", "not_a_step": tmp_path, "bad_tracker": tmp_path,
            "no_shards": tmp_path / "global_step_3"}[layout]  # fmt: skip
    if layout == "bad_tracker":
        (tmp_path / "latest_checkpointed_iteration.txt").write_text("three")
    if layout == "no_shards":
        path.mkdir()
    with pytest.raises(NoCheckpointError, match=message):
        find_step_dir(path)
    cli = subprocess.run([sys.executable, "-m", "recipes.export", str(path)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert cli.returncode == 2 and message in cli.stderr
    assert not (tmp_path / "hf").exists()


@pytest.mark.timeout(2400)
@pytest.mark.loop_runs("legal_grpo_rules")
def test_legal_grpo_export_evaluates_to_the_trainers_validation(loop_runs: LoopRuns, tmp_path: Path) -> None:
    """legal_grpo_rules (no judge), the loop tier's run (2 real GRPO steps + a resumed one): the last checkpoint
    exported, evaluated with `recipes.evaluation.evaluate --backend hf --mode rules` on the rows the trainer validated
    on; the
    greedy responses, the reward values per row and the logged per-task acc are the trainer's."""
    config = "legal_grpo_rules"
    run = loop_runs.get(config)
    assert run.proc.returncode == 0, run.failure()
    val = first_rows(run.data / "test.parquet", tmp_path / "val.parquet", VAL_SAMPLES)  # unshuffled: the first ones
    assert len(set(pq.read_table(val).column("data_source").to_pylist())) == 4  # every legal task validated
    exported = export(run.out / "checkpoints", tmp_path / "hf")
    assert exported.adapter is None and exported.global_step == STEPS + 1  # full parameters: a plain HF directory
    cfg = compose_config(config, [f"data.max_response_length={RESPONSE_TOKENS}"])  # the CPU loop's budget
    sampling = trainer_sampling(cfg, val, tmp_path / "sampling.yaml")
    block = evaluate_against_trainer(Path(exported.hf_dir), run.out, val, config, tmp_path / "report", sampling,
                                     extra=["--mode", "rules"])  # fmt: skip
    assert block["reproduces_trainer"], block["problems"]
    assert block["identical_responses"] == f"{VAL_SAMPLES}/{VAL_SAMPLES}"
    tasks = block["tasks"]
    assert set(tasks) == {"legal/charge", "legal/article", "legal/term", "legal/verdict"}
    assert all("acc" in numbers and "score" in numbers for numbers in tasks.values())
    metrics = json.loads(Path(block["metrics"]).read_text())
    assert metrics["overall"]["generation"] == {"backend": "hf", "lora_adapter": None}

"""`python -m recipes.safety.rejection_sample --model <tiny model>`: vLLM's offline LLM generating for real (CPU
build), scored by rewards/safety.py, selected, written and reported — one round end to end.

The tiny model's answers are nonsense, so the threshold is set below the reward's minimum (-5): every answer
passes, and the cap and the dedup decide what is kept. The arithmetic on chosen answers is in
tests/safety/test_rejection_sample.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from helpers.real_vllm import REPO_ROOT, run_module

from recipes.safety.selection import answer_key

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]

N = 3
ROWS = 3
KEEP = 2


@pytest.fixture(scope="module")
def small_train_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first rows of the shipped safety sample's prepared train split (with the SFT share carved out)."""
    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("rs_data")
    argv = ["--source", "safety", "--input", "data/samples/safety_sample.jsonl", "--output", str(out)]
    assert prepare([*argv, "--sft-fraction", "0.15"]) == 0
    pq.write_table(pq.read_table(out / "train.parquet").slice(0, ROWS), out / "small.parquet")
    return out / "small.parquet"


def _round(model: Path, data: Path, out: Path, *extra: str) -> str:
    """Run one round with the tiny model's CPU settings; its stdout (the run must succeed)."""
    cfg = yaml.safe_load((REPO_ROOT / "configs" / "safety_rejection.yaml").read_text(encoding="utf-8"))
    # 48 new tokens: the random model never emits EOS, and each decode step costs on 2 cores.
    cfg["sampling"].update(max_tokens=48)
    cfg["llm"].update(dtype="float32", enforce_eager=True, max_model_len=4096)
    out.mkdir(parents=True)
    config = out.parent / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return run_module(
        ["recipes.safety.rejection_sample", "--model", str(model), "--data", str(data), "--n", str(N),
         "--out", str(out), "--keep", str(KEEP), "--threshold", "-10", "--config", str(config), *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def base_round(tiny_model_dir: Path, small_train_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One round with the tiny model itself."""
    out = tmp_path_factory.mktemp("rs") / "round"
    stdout = _round(tiny_model_dir, small_train_set, out)
    assert "Kept " in stdout and "round.json" in stdout
    return out


def test_rejection_round_generates_with_vllm_and_writes_the_next_round(
    tiny_model_dir: Path, base_round: Path, tiny_tokenizer
) -> None:
    """samples.jsonl has n answers per row; scores.jsonl scores each; sft.parquet holds the kept answers (at most
    KEEP distinct per text) and loads in verl's SFT dataset; round.json's numbers agree with the files."""
    out = base_round

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(s["row"], s["sample"]) for s in samples] == [(i, k) for i in range(ROWS) for k in range(N)]
    assert len({s["response"] for s in samples}) > 1  # sampled text, not one canned string
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(s["row"], s["sample"]) for s in scores] == [(s["row"], s["sample"]) for s in samples]
    assert all(-5.0 <= s["score"] <= 5.0 for s in scores)

    r = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert r["config"]["model"] == str(tiny_model_dir) and r["config"]["n"] == N
    assert r["generated"] == ROWS * N and r["texts"] == ROWS
    assert r["reward"]["mean_generated"] == pytest.approx(sum(s["score"] for s in scores) / len(scores))
    kept = [s for s in scores if s["kept"]]
    assert r["kept"] == len(kept) and r["reward"]["mean_kept"] == pytest.approx(
        sum(s["score"] for s in kept) / len(kept)
    )
    assert r["dropped"]["below_threshold"] == 0
    assert r["kept"] + sum(r["dropped"].values()) == ROWS * N
    per_text = [sum(1 for s in kept if s["row"] == i) for i in range(ROWS)]
    keys = [{answer_key(s["response"]) for s in samples if s["row"] == i} - {""} for i in range(ROWS)]
    distinct = [len(k) for k in keys]
    assert per_text == [min(KEEP, d) for d in distinct]
    assert r["outputs"]["grpo"]["rows"] == 0  # every answer passed: every text saturated
    assert len(r["dimensions"]) == 9 and "distribution_line" in r
    assert (out / "round.md").read_text(encoding="utf-8").count("\n| ") >= 9 + 8

    sft = pq.read_table(out / "sft.parquet").to_pylist()
    responses = {(s["row"], s["sample"]): s["response"] for s in samples}
    assert sorted(row["messages"][-1]["content"] for row in sft) == sorted(
        responses[(s["row"], s["sample"])] for s in kept
    )
    assert pq.read_table(out / "train.parquet").num_rows == 0

    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from recipes.launch.commands import compose_config

    data = compose_config("safety_sft", [f"data.train_files={out / 'sft.parquet'}"]).data
    assert len(MultiTurnSFTDataset(str(out / "sft.parquet"), tiny_tokenizer, data)) == len(sft)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random (not zero-initialized) rank-8 PEFT LoRA adapter directory for the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter") / "lora_adapter"
    get_peft_model(model, lora).save_pretrained(str(out))
    return out


def test_lora_adapter_changes_what_is_generated(
    tiny_model_dir: Path, small_train_set: Path, base_round: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    """--lora-adapter generates with base + adapter (vLLM's LoRA path): the same seeds give other answers than the
    base model alone, and round.json names the adapter."""
    out = tmp_path / "lora_round"
    _round(tiny_model_dir, small_train_set, out, "--lora-adapter", str(tiny_adapter))
    r = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert r["config"]["lora_adapter"] == str(tiny_adapter) and r["generated"] == ROWS * N

    def responses(d: Path) -> list[str]:
        return [json.loads(x)["response"] for x in (d / "samples.jsonl").read_text(encoding="utf-8").splitlines()]

    assert len(responses(out)) == ROWS * N
    assert responses(out) != responses(base_round)

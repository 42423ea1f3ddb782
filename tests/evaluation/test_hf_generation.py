"""Generation with transformers on the CPU: the CPU rollout's server and evaluation's `--backend hf` decode alike.

A "lively" tiny Qwen2 (our tokenizer, random weights drawn wide so greedy answers differ from prompt to prompt) and a
random LoRA adapter on it stand in for an exported LoRA run. The server receives them the way verl's worker sends a
LoRA run's weights on the CPU (the base with `.base_layer` names, then the adapter with LoraConfig.to_dict()), and
what it generates must be what `recipes.evaluation.generation.generate_hf` generates from the files. Then the commands:
`python -m recipes.evaluate --backend hf` and `python -m recipes.safety.rejection_sample --backend hf`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from helpers.tokenizer import build_tiny_tokenizer

from recipes.evaluation.generation import GenerationError, generate_hf, prompt_token_ids, resolve_adapter
from recipes.evaluation.hf_generate import load_causal_lm
from recipes.trainer.cpu.rollout import HFGenerationServer

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NEW_TOKENS = 12
CONVERSATIONS = [
    [{"role": "system", "content": "审核员"}, {"role": "user", "content": text}]
    for text in ("今天天气晴朗，适合放风筝。", "被告人张某秘密窃取他人财物。", "公司年会定在下个月十五号。", "2 3 5 7")
]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export as verl's merger lays out a LoRA run: base weights (bfloat16 on disk) + lora_adapter/."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("export")
    tokenizer = build_tiny_tokenizer(out)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=eos,
        eos_token_id=eos, pad_token_id=eos, initializer_range=0.4,
    )  # fmt: skip
    torch.manual_seed(7)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out))
    lora = get_peft_model(
        Qwen2ForCausalLM(config), LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, init_lora_weights=False)
    )
    lora.save_pretrained(str(out / "adapter"))
    (out / "adapter").rename(out / "lora_adapter")
    return out


def greedy(max_tokens: int = NEW_TOKENS) -> dict[str, Any]:
    """Evaluation's sampling sections, greedy."""
    return {"llm": {"max_model_len": 2048}, "sampling": {"temperature": 0.0, "max_tokens": max_tokens, "n": 1}}


def _verl_base_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base weights as verl sends a LoRA run's first sync: wrapped layers named `….base_layer.weight`."""
    out = {}
    for name, tensor in state.items():
        module, _, leaf = name.rpartition(".")
        out[f"{module}.base_layer.{leaf}" if module.split(".")[-1] in TARGETS else name] = tensor.float()
    return out


def test_server_generates_what_the_hf_backend_generates(export_dir: Path) -> None:
    """Base + adapter pushed into the CPU rollout's server as verl pushes them; its greedy answers (one batch of
    concurrent requests) are the HF backend's answers from the exported files, token for token."""
    from peft import LoraConfig
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    server = HFGenerationServer(str(export_dir), 1024, NEW_TOKENS, None, seed=0, replica_rank=0)
    base = load_file(str(export_dir / "model.safetensors"))
    adapter_cfg = json.loads((export_dir / "lora_adapter" / "adapter_config.json").read_text())
    peft_config = LoraConfig(r=adapter_cfg["r"], lora_alpha=adapter_cfg["lora_alpha"], target_modules=TARGETS).to_dict()
    adapter = {
        k: v.float() for k, v in load_file(str(export_dir / "lora_adapter" / "adapter_model.safetensors")).items()
    }

    tokenizer = AutoTokenizer.from_pretrained(str(export_dir))
    prompts = prompt_token_ids(tokenizer, CONVERSATIONS, None)

    async def run() -> list[Any]:
        await server.load_weights(_verl_base_names(base), 0, peft_config, base_sync_done=False)
        await server.load_weights(adapter, 1, peft_config, base_sync_done=True)
        calls = [server.generate(p, {"temperature": 0.0, "logprobs": True}, f"r{i}") for i, p in enumerate(prompts)]
        return list(await asyncio.gather(*calls))

    outputs = asyncio.run(run())
    served = [tokenizer.decode(o.token_ids, skip_special_tokens=True) for o in outputs]
    assert all(o.log_probs is not None and len(o.log_probs) == len(o.token_ids) for o in outputs)
    assert all(o.extra_fields["global_steps"] == 1 for o in outputs)
    evaluated = generate_hf(str(export_dir), CONVERSATIONS, None, greedy(), str(export_dir / "lora_adapter"))
    assert served == [texts[0] for texts in evaluated]
    assert len(set(served)) > 1, served  # the answers depend on the prompt: the comparison means something
    base_only = generate_hf(str(export_dir), CONVERSATIONS, None, greedy(), None)
    assert base_only != evaluated  # the adapter is applied, not ignored


def test_server_holds_its_weights_in_the_rollout_dtype(export_dir: Path) -> None:
    """Full weights arrive in float32 from the actor; the server keeps them rounded through bfloat16 (vLLM's
    rollout.dtype, and the dtype verl's merger exports), computing in float32."""
    server = HFGenerationServer(str(export_dir), 1024, NEW_TOKENS, None, seed=0, replica_rank=0)
    state = {k: v.float() + 1e-4 for k, v in load_causal_lm(str(export_dir)).state_dict().items()}
    asyncio.run(server.load_weights(state, 3))
    held = server.model.state_dict()
    for name, tensor in state.items():
        assert held[name].dtype == torch.float32
        assert torch.equal(held[name], tensor.to(torch.bfloat16).float()), name
    assert server.global_steps == 3


@pytest.mark.parametrize(
    ("sampling_cfg", "message"),
    [
        ({"sampling": {"stop": ["</answer>"]}}, "does not implement: stop"),
        ({"sampling": {"presence_penalty": 1.0, "logprobs": 1}}, "does not implement: logprobs, presence_penalty"),
        ({"sampling": {}, "hf": {"threads": 1, "device": "cuda"}}, "hf section: device"),
        ({"sampling": {"n": 0}}, "sampling.n and hf.batch_size must be >= 1"),
    ],
)
def test_hf_backend_refuses_what_it_does_not_implement(export_dir: Path, sampling_cfg: dict, message: str) -> None:
    """A sampling key the transformers backend would not honour is an error naming it, never silently ignored."""
    with pytest.raises(GenerationError, match=message):
        generate_hf(str(export_dir), CONVERSATIONS[:1], None, sampling_cfg)


def test_hf_backend_names_a_model_it_cannot_load(tmp_path: Path) -> None:
    """A directory without a model: one error naming it."""
    with pytest.raises(GenerationError, match=f"transformers cannot load {tmp_path}"):
        generate_hf(str(tmp_path), CONVERSATIONS[:1], None, greedy())


@pytest.mark.parametrize(
    ("layout", "flag", "expected"),
    [
        ("lora", None, "lora_adapter"),  # verl's merger layout: applied
        ("lora", "none", None),  # the base alone, on request
        ("lora", "/elsewhere/adapter", "/elsewhere/adapter"),
        ("full", None, None),  # a full-parameter export has no adapter
    ],
)
def test_resolve_adapter(tmp_path: Path, layout: str, flag: str | None, expected: str | None) -> None:
    """MODEL/lora_adapter is applied unless --lora-adapter names another one or none."""
    if layout == "lora":
        (tmp_path / "lora_adapter").mkdir()
        (tmp_path / "lora_adapter" / "adapter_config.json").write_text("{}")
    found = resolve_adapter(str(tmp_path), flag)
    assert found == (str(tmp_path / expected) if expected == "lora_adapter" else expected)


@pytest.fixture(scope="module")
def safety_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped safety sample prepared, its first three test rows."""
    out = tmp_path_factory.mktemp("safety")
    subprocess.run(
        [sys.executable, "-m", "data.prepare", "--source", "safety", "--input", "data/samples/safety_sample.jsonl",
         "--output", str(out)],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    table = pq.read_table(out / "test.parquet")
    pq.write_table(table.slice(0, 3), out / "small.parquet")
    return out


def test_evaluate_model_with_the_hf_backend(export_dir: Path, safety_rows: Path, tmp_path: Path) -> None:
    """`recipes.evaluation.evaluate --model EXPORT --backend hf`: the export's adapter applied, the answers
    generate_hf's, the
    backend recorded in overall.generation."""
    sampling = tmp_path / "sampling.yaml"
    sampling.write_text(yaml.safe_dump(greedy()), encoding="utf-8")
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.evaluate", "--data", str(safety_rows / "small.parquet"), "--model",
         str(export_dir), "--backend", "hf", "--sampling-config", str(sampling), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    overall = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["overall"]
    assert overall["generation"] == {"backend": "hf", "lora_adapter": str(export_dir / "lora_adapter")}
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = pq.read_table(safety_rows / "small.parquet").to_pylist()
    want = generate_hf(str(export_dir), [r["prompt"] for r in rows], None, greedy(), str(export_dir / "lora_adapter"))
    assert [x["response"] for x in lines] == [w[0] for w in want]
    assert len((out / "scores.jsonl").read_text(encoding="utf-8").splitlines()) == len(rows)


def test_rejection_round_with_the_hf_backend(export_dir: Path, safety_rows: Path, tmp_path: Path) -> None:
    """`recipes.safety.rejection_sample --model EXPORT --backend hf`: n sampled answers per text (the export's adapter
    applied), each scored, the round reported with its backend."""
    cfg = yaml.safe_load((REPO / "configs" / "safety_rejection.yaml").read_text(encoding="utf-8"))
    cfg["sampling"].update(max_tokens=8, n=2)
    cfg["llm"]["max_model_len"] = 2048
    config = tmp_path / "round.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "r1"
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.safety.rejection_sample", "--model", str(export_dir), "--backend", "hf",
         "--data", str(safety_rows / "small.parquet"), "--out", str(out), "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    round_json = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert round_json["config"]["backend"] == "hf"
    assert round_json["config"]["lora_adapter"] == str(export_dir / "lora_adapter")
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((s["row"], s["sample"]) for s in samples) == [(r, k) for r in range(3) for k in range(2)]
    assert len((out / "scores.jsonl").read_text(encoding="utf-8").splitlines()) == 6

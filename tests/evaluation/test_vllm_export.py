"""vLLM's CPU build on checkpoints our trainers wrote: it serves an export with its LoRA adapter, and an evaluation
with `--backend vllm` reproduces the trainer's last validation within the vLLM share.

A LoRA SFT run (verl's SFT trainer, 2 steps) and a GRPO run from it (1 step + a resumed one) are trained on the CPU
and exported with recipes/evaluation/export.py, as `bash scripts/rehearse_pipeline.sh` does; vLLM runs from .venv-vllm
(needs
AVX-512). The transformers backend reproduces the trainer with no changed response
(tests/rehearsal/test_rehearse_pipeline.py);
vLLM's kernels round differently and a random model's logits are often near-tied, so up to a quarter of the greedy
responses may take another token (README "The stages on the CPU").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.real_vllm import REPO_ROOT, SERVER_MODULE, free_port, run_module, script_env, stop_group, vllm_python
from helpers.tiny_model import build_tiny_model

from recipes.evaluation.export import export
from recipes.launch.commands import compose_config
from recipes.rehearsal.rehearse_loop import rehearse_loop
from recipes.rehearsal.rehearse_pipeline import first_rows, trainer_sampling
from recipes.rehearsal.rehearse_sft import rehearse_sft
from recipes.trainer.cpu.overrides import RESPONSE_TOKENS

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(3000)]

VLLM_SHARE = 0.25


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """SFT (LoRA) -> export -> GRPO from the adapter -> export, on the CPU; the validation dump kept."""
    model = build_tiny_model()
    out = tmp_path_factory.mktemp("trained")
    sft = rehearse_sft("safety_sft", model, out / "data", out / "sft", 2, emit=lambda line: None)
    assert sft.passed, sft.problems
    val = first_rows(out / "data" / "test.parquet", out / "data" / "val.parquet", 8)
    grpo = out / "grpo"
    overrides = [*sft.grpo_overrides, "actor_rollout_ref.actor.optim.lr=1e-2", f"data.val_files={val}",
                 "data.val_max_samples=-1", f"trainer.validation_data_dir={grpo / 'validation'}",
                 "reward.custom_reward_function.reward_kwargs.reasoning_scorer=ngram"]  # fmt: skip
    result = rehearse_loop("safety_grpo", model, out / "data", grpo, 1, overrides, emit=lambda line: None)
    assert result.passed, result.problems
    exported = export(grpo / "checkpoints", grpo / "hf")
    assert exported.adapter is not None
    cfg = compose_config("safety_grpo", [f"data.max_response_length={RESPONSE_TOKENS}"])
    return {"hf": Path(exported.hf_dir), "adapter": Path(exported.adapter), "val": val, "grpo": grpo, "cfg": cfg}


def test_vllm_evaluation_reproduces_the_trainers_validation(trained: dict[str, Any], tmp_path: Path) -> None:
    """`recipes.evaluation.evaluate --backend vllm` on the export (its adapter applied by vLLM's LoRA request), then
    recipes.evaluation.validation_match with the vLLM share."""
    sampling = trainer_sampling(trained["cfg"], trained["val"], tmp_path / "sampling.yaml")
    cfg = yaml.safe_load(sampling.read_text(encoding="utf-8"))
    cfg["llm"].update(enforce_eager=True, dtype="float32")  # no compilation on a small CPU; the tiny model in fp32
    sampling.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    report = tmp_path / "report"
    run_module(["recipes.evaluate", "--data", str(trained["val"]), "--model", str(trained["hf"]),
    "--backend", "vllm",
                "--sampling-config", str(sampling), "--config", "safety_grpo", "--out", str(report)])  # fmt: skip
    overall = json.loads((report / "metrics.json").read_text(encoding="utf-8"))["overall"]
    assert overall["generation"] == {"backend": "vllm", "lora_adapter": str(trained["adapter"])}
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.validation_match", "--trainer-out", str(trained["grpo"]), "--report",
         str(report), "--data", str(trained["val"]), "--model", str(trained["hf"]), "--config", "safety_grpo",
         "--max-changed-share", str(VLLM_SHARE)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((report / "validation_match.json").read_text(encoding="utf-8"))["ok"]


def test_vllm_serves_the_export_with_its_adapter(trained: dict[str, Any], tmp_path: Path) -> None:
    """`vllm serve DIR --enable-lora --lora-modules policy=DIR/lora_adapter` (as recipes.evaluation.export prints it)
    answers
    a completion for the adapter's name."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(vllm_python()), "-m", SERVER_MODULE, "--model", str(trained["hf"]), "--port", str(port),
         "--host", "127.0.0.1", "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048", "--enable-lora",
         "--max-lora-rank", "16", "--lora-modules", f"policy={trained['adapter']}"],
        cwd=REPO_ROOT, env=script_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-4000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-4000:]
            time.sleep(2)
        body = json.dumps({"model": "policy", "prompt": "今天天气晴朗", "max_tokens": 4, "temperature": 0}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as reply:
            answer = json.loads(reply.read())
        assert answer["model"] == "policy" and isinstance(answer["choices"][0]["text"], str)
    finally:
        stop_group(server.pid)
        log.close()

"""recipes/evaluation/generation.py without vLLM: prompts rendered with the training template, samples written per
prompt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from recipes.evaluation.generation import (
    GenerationError,
    fit_context,
    model_context,
    prompts_over,
    render_prompts,
    write_samples,
)
from recipes.legal.evaluate import load_chat_template

REPO = Path(__file__).resolve().parents[2]


def test_render_prompts_with_the_training_template(tiny_tokenizer_path: str) -> None:
    """The R1-zero template of configs/legal_grpo.yaml, not the tokenizer's own chat template: the prompt ends
    inside the think block and carries the user's text."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_path)
    template = load_chat_template("legal_grpo")
    conversations = [[{"role": "user", "content": "被告人张某窃得电瓶两块。"}], [{"role": "user", "content": "案情二"}]]
    prompts = render_prompts(tokenizer, conversations, template)
    assert len(prompts) == 2
    assert "被告人张某窃得电瓶两块。" in prompts[0] and "案情二" in prompts[1]
    assert all(p.rstrip().endswith("<think>") for p in prompts)
    assert all("<|im_start|>" not in p for p in prompts)  # the tokenizer's own template was not used


def test_write_samples_one_line_per_completion(tmp_path: Path) -> None:
    """Keys in prompt order, samples numbered 0..n-1, text kept as generated (unicode, empty)."""
    path = write_samples(
        tmp_path / "out" / "p.jsonl",
        [{"index": 3, "data_source": "legal/charge"}, {"index": 5, "data_source": "legal/term"}],
        [["盗窃罪", ""], ["有期徒刑一年", "拘役五个月"]],
    )
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(x["index"], x["sample"], x["response"]) for x in lines] == [
        (3, 0, "盗窃罪"), (3, 1, ""), (5, 0, "有期徒刑一年"), (5, 1, "拘役五个月"),
    ]  # fmt: skip
    assert lines[2]["data_source"] == "legal/term"


def test_write_samples_rejects_mismatched_lengths(tmp_path: Path) -> None:
    """One completion list per key: anything else is an error, never a silently shorter file."""
    with pytest.raises(GenerationError, match="2 keys for 1 prompts"):
        write_samples(tmp_path / "p.jsonl", [{"index": 0}, {"index": 1}], [["x"]])


# ---------------------------------------------------------------- a model with a shorter context (issue 24 item 11)


def _model_dir(path: Path, config: dict, tokenizer_max: int | None = None) -> str:
    """A directory with only a config.json (and a tokenizer_config.json when tokenizer_max is given)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", **config}), encoding="utf-8")
    if tokenizer_max is not None:
        (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": tokenizer_max}), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("config", "tokenizer_max", "expected"),
    [
        ({"max_position_embeddings": 4096}, None, (4096, "max_position_embeddings")),
        ({"max_position_embeddings": 4096}, 2048, (2048, "model_max_length in tokenizer_config.json")),
        ({"max_position_embeddings": 4096}, 131072, (4096, "max_position_embeddings")),
        ({"max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}}, None,
         (8192, "max_position_embeddings x rope factor 2.0")),
        ({"max_position_embeddings": 4096, "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                                             "original_max_position_embeddings": 1024}}, None,
         (4096, "max_position_embeddings")),
    ],
    ids=["plain", "tokenizer-shorter", "tokenizer-longer", "linear-rope", "yarn-already-scaled"],
)  # fmt: skip
def test_model_context_as_vllm_derives_it(
    tmp_path: Path, config: dict, tokenizer_max: int | None, expected: tuple[int, str]
) -> None:
    """The smallest length key, the tokenizer's model_max_length when smaller, a RoPE factor vLLM applies."""
    assert model_context(_model_dir(tmp_path / "m", config, tokenizer_max)) == expected


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-7B-Instruct", "/nonexistent/model"])
def test_model_context_unknown_without_a_local_config(model: str) -> None:
    """A hub name or a missing directory: not told here (vLLM checks it), never a download."""
    assert model_context(model) is None


SAMPLING = {"llm": {"max_model_len": 6144, "dtype": "bfloat16"}, "sampling": {"max_tokens": 2048, "n": 1}}


def test_fit_context_caps_the_budget_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 4k model under the 6k budget: max_model_len becomes 4096 with one warning; the rest is as configured."""
    model = _model_dir(tmp_path / "m4k", {"max_position_embeddings": 4096})
    with caplog.at_level("WARNING", logger="recipes.evaluation.generation"):
        fitted = fit_context(model, SAMPLING)
    assert fitted == {"llm": {"max_model_len": 4096, "dtype": "bfloat16"}, "sampling": {"max_tokens": 2048, "n": 1}}
    assert SAMPLING["llm"]["max_model_len"] == 6144  # the caller's config is not changed
    (record,) = caplog.records
    assert record.levelname == "WARNING" and record.getMessage() == (
        f"{model} allows 4096 tokens of context (max_position_embeddings): llm.max_model_len capped from 6144 to "
        "4096, so a prompt and its response share 4096 tokens (a response stops there, before max_tokens 2048, once "
        "its prompt is over 2048 tokens)"
    )


@pytest.mark.parametrize(
    ("context", "llm"), [(8192, {"max_model_len": 6144}), (6144, {"max_model_len": 6144}), (4096, {})]
)
def test_fit_context_leaves_a_budget_that_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, context: int, llm: dict
) -> None:
    """A budget within the model's context, or none (vLLM takes the model's own): unchanged, nothing said."""
    model = _model_dir(tmp_path / "m", {"max_position_embeddings": context})
    cfg = {"llm": llm, "sampling": {"max_tokens": 2048}}
    assert fit_context(model, cfg) == cfg and not caplog.records


def test_prompts_over_names_the_prompts_without_room(tiny_tokenizer_path: str) -> None:
    """Prompts of max_model_len tokens or more leave no room for a response: position and count of each."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_path)
    prompts = ["短", "被告人张某窃得电瓶两块，价值人民币三百元。" * 20, "中等长度的案情。" * 3]
    counts = [len(tokenizer.encode(p)) for p in prompts]
    limit = counts[2] + 1
    assert counts[0] < limit <= counts[1]
    assert prompts_over(tokenizer, prompts, limit) == [(1, counts[1])]
    assert prompts_over(tokenizer, prompts, counts[2]) == [(1, counts[1]), (2, counts[2])]


def test_evaluate_with_a_short_context_model_caps_before_vllm(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`evaluate --model` with the tiny model cut to 512 positions: the cap is said before vLLM is imported (here a
    stand-in vllm package that refuses to import, so the run then stops with the usual one line, exit 2)."""
    model = tmp_path / "tiny-512"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 512}), encoding="utf-8")
    blocked = tmp_path / "no_vllm" / "vllm"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('vllm is blocked in this test')\n", encoding="utf-8")
    data = tmp_path / "data"
    from data.prepare import main as prepare

    assert prepare(["--source", "cail2018", "--input", str(REPO / "data/samples/cail2018_sample.jsonl"), "--output",
                    str(data), "--test-size", "4", "--train-size", "4"]) == 0  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{blocked.parent}{os.pathsep}{REPO}"}
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.legal.evaluate", "--data", str(data / "test.parquet"), "--model", str(model),
         "--out", str(tmp_path / "report")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    (cap,) = [i for i, line in enumerate(lines) if "llm.max_model_len capped from 6144 to 512" in line]
    assert " WARNING recipes.evaluation.generation: " in lines[cap]
    assert f"{model} allows 512 tokens of context (max_position_embeddings)" in lines[cap]
    (stop,) = [i for i, line in enumerate(lines) if "--model needs vLLM" in line]
    assert cap < stop and "Traceback" not in proc.stderr

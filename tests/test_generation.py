"""recipes/generation.py without vLLM: prompts rendered with the training template, samples written per prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from recipes.generation import GenerationError, render_prompts, write_samples
from recipes.legal.evaluate import load_chat_template


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

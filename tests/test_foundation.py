"""The shared fixtures work with verl's real classes: tokenizer round-trips, NaiveRewardManager scores a DataProto."""

from __future__ import annotations

import pathlib

import pytest
import tomllib
from omegaconf import OmegaConf
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text",
    [
        "<think>被告人张某犯盗窃罪。</think><answer>盗窃罪</answer>",
        "有期徒刑三年六个月，并处罚金人民币五千元。",
        "English thinking first, then 中文。",
    ],
)
def test_tiny_tokenizer_round_trips(tiny_tokenizer, text):
    """Byte-level BPE decodes exactly what it encoded, Chinese included."""
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert tiny_tokenizer.decode(ids, skip_special_tokens=False) == text


def test_tiny_tokenizer_has_chat_template(tiny_tokenizer):
    """verl renders prompts through apply_chat_template; the tiny tokenizer must have one."""
    rendered = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": "事实"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\n事实<|im_end|>\n<|im_start|>assistant\n"


def _exact_match(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """Trivial reward: 1.0 when the response equals the gold text."""
    return {"score": float(solution_str == ground_truth), "source_len": float(len(data_source))}


@pytest.mark.parametrize(("response", "expected"), [("盗窃罪", 1.0), ("诈骗罪", 0.0), ("", 0.0)])
async def test_naive_reward_manager_scores_dataproto(tiny_tokenizer, reward_dataproto, response, expected):
    """verl's own NaiveRewardManager.run_single decodes the padded response and calls our function."""
    data = reward_dataproto(
        prompts=["请预测罪名"], responses=[response], data_sources=["legal/charge"], ground_truths=["盗窃罪"]
    )
    # Built inside the running loop: the manager binds to the loop it was created in, as in verl's worker.
    manager = NaiveRewardManager(OmegaConf.create({}), tiny_tokenizer, _exact_match)
    result = await manager.run_single(data)
    assert result["reward_score"] == expected
    assert result["reward_extra_info"] == {"score": expected, "source_len": float(len("legal/charge"))}


def test_dataproto_masks_match_lengths(tiny_tokenizer, reward_dataproto):
    """Attention mask covers exactly the prompt and response tokens (what verl uses for valid length)."""
    data = reward_dataproto(
        prompts=["事实", "另一个更长一些的事实"],
        responses=["短", "一个比较长的回答"],
        data_sources=["legal/charge"] * 2,
        ground_truths=["x", "y"],
        prompt_length=32,
        response_length=32,
    )
    for i, (p, r) in enumerate([("事实", "短"), ("另一个更长一些的事实", "一个比较长的回答")]):
        p_len = len(tiny_tokenizer.encode(p, add_special_tokens=False))
        r_len = len(tiny_tokenizer.encode(r, add_special_tokens=False))
        assert int(data.batch["attention_mask"][i, :32].sum()) == p_len
        assert int(data.batch["attention_mask"][i, 32:].sum()) == r_len


def test_layout_and_plain_folders():
    """Top-level packages import from the repo root; tests/ and scripts/ stay plain folders."""
    for pkg in ("rewards", "judge", "data", "recipes"):
        assert (REPO / pkg / "__init__.py").is_file(), pkg
    assert not (REPO / "tests" / "__init__.py").exists()
    assert not (REPO / "scripts" / "__init__.py").exists()


def test_pyproject_pins_verl_extras():
    """The train extra pins verl[vllm]==0.9.1; the test extra pins the CPU verl-core variant, no vllm."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "verl[vllm]==0.9.1" in extras["train"]
    assert "verl[verl-core]==0.9.1" in extras["test"]
    assert not any("vllm" in dep and "verl" not in dep for dep in extras["test"])


def test_tiny_tokenizer_keeps_tags_when_skipping_special_tokens(tiny_tokenizer):
    """verl decodes responses with skip_special_tokens=True; the format tags must survive that, as with Qwen2.5."""
    text = "想一想</think><answer>盗窃罪</answer>"
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == text

"""The R1-zero format rule and answer extraction (rewards/format.py), plus the pure shaping helpers."""

from __future__ import annotations

import pytest

from rewards.format import check_format, extract_answer, extract_thinking
from rewards.shaping import LengthRef, chinese_share, language_reward, length_penalty, length_ref_from

# (response, ok) with response_starts_in_think=True: the prompt ends in "<think>", the response starts inside it.
INSIDE_THINK = [
    ("推理过程</think><answer>盗窃罪</answer>", True),
    ("推理过程</think>\n<answer>盗窃罪</answer>\n", True),
    ("推理\n多行\n</think>  \n\n<answer>\n有期徒刑一年\n</answer>  \n", True),
    ("</think><answer>盗窃罪</answer>", True),  # empty thinking is allowed (as open-r1's rule)
    ("Let me think. 先分析。</think><answer>第264条</answer>", True),
    # RECIPE failure mode: missing </answer> (truncated or forgotten).
    ("推理</think><answer>盗窃罪", False),
    ("推理</think><answer>盗窃罪</answer", False),
    # RECIPE failure mode: repeated blocks.
    ("推理</think><answer>盗窃罪</answer><answer>诈骗罪</answer>", False),
    ("推理</think><answer>盗窃罪</answer></think><answer>盗窃罪</answer>", False),
    ("推理</think><think>再想想</think><answer>盗窃罪</answer>", False),
    ("<think>推理</think><answer>盗窃罪</answer>", False),  # a stray <think> repeats the one in the prompt
    ("推理<think>嵌套</think><answer>盗窃罪</answer>", False),
    ("推理</think><answer>盗窃罪</answer></answer>", False),
    ("推理</think><answer><answer>盗窃罪</answer>", False),
    # Missing pieces.
    ("推理<answer>盗窃罪</answer>", False),  # no </think>
    ("推理</think>盗窃罪", False),  # no answer block
    ("推理</think>", False),
    ("", False),
    ("推理</think><answer></answer>", False),  # empty answer
    ("推理</think><answer>   \n </answer>", False),  # whitespace-only answer
    # Wrong order or stray text.
    ("<answer>盗窃罪</answer>推理</think>", False),
    ("推理</think>所以答案是<answer>盗窃罪</answer>", False),  # text between </think> and <answer>
    ("推理</think><answer>盗窃罪</answer>还有一些补充说明", False),  # text after </answer>
    ("推理</answer></think><answer>盗窃罪", False),
    # Tags are case-sensitive and exact.
    ("推理</Think><answer>盗窃罪</answer>", False),
    ("推理</think><Answer>盗窃罪</Answer>", False),
]

# (response, ok) with response_starts_in_think=False: the response must open the think block itself.
OPENS_THINK = [
    ("<think>推理</think><answer>盗窃罪</answer>", True),
    ("  \n<think>推理</think>\n<answer>盗窃罪</answer>\n", True),  # leading whitespace is allowed
    ("<think></think><answer>盗窃罪</answer>", True),
    ("推理</think><answer>盗窃罪</answer>", False),  # no opening tag
    ("好的<think>推理</think><answer>盗窃罪</answer>", False),  # text before <think>
    ("<think>推理<think>再想</think><answer>盗窃罪</answer>", False),
    ("<think>推理</think><answer>盗窃罪</answer><think>又想</think>", False),
    ("<think>推理</think><answer>盗窃罪", False),
    ("<think>推理</think><answer> </answer>", False),
]


@pytest.mark.parametrize(("response", "ok"), INSIDE_THINK)
def test_format_response_starts_inside_think(response, ok):
    """Default rule: thinking, </think>, <answer>non-empty</answer>, each tag once, nothing else."""
    assert check_format(response) is ok
    assert check_format(response, starts_in_think=True) is ok


@pytest.mark.parametrize(("response", "ok"), OPENS_THINK)
def test_format_response_opens_think(response, ok):
    """Without starts_in_think the response must begin with <think> (leading whitespace allowed)."""
    assert check_format(response, starts_in_think=False) is ok


@pytest.mark.parametrize("response", [None, 123, b"<answer>x</answer>"])
def test_format_non_string_is_wrong(response):
    """A non-string never passes and has no answer."""
    assert check_format(response) is False
    assert extract_answer(response) is None


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        ("推理</think><answer>盗窃罪</answer>", "盗窃罪"),
        ("推理</think><answer>\n  盗窃罪、诈骗罪 \n</answer>", "盗窃罪、诈骗罪"),
        ("<answer>盗窃罪</answer><answer>诈骗罪</answer>", "诈骗罪"),  # the last block wins
        ("<answer>盗窃罪</answer><answer>诈骗罪", "盗窃罪"),  # an unclosed last block is ignored
        ("<answer>外<answer>内</answer>", "内"),  # the innermost opening before the last close
        ("<answer>盗窃罪</answer><answer>  </answer>", None),  # the last block is empty
        ("推理</think><answer>盗窃罪", None),  # missing </answer>
        ("推理</think>盗窃罪</answer>", None),  # missing <answer>
        ("没有任何标签", None),
        ("", None),
        ("</answer><answer>", None),  # close before open is no block
    ],
)
def test_extract_answer(response, answer):
    """The content of the last complete <answer> block, stripped; None when there is none or it is empty."""
    assert extract_answer(response) == answer


@pytest.mark.parametrize(
    ("response", "starts_in_think", "thinking"),
    [
        ("推理</think><answer>x</answer>", True, "推理"),
        ("<think>推理</think><answer>x</answer>", False, "推理"),
        ("<think>推理</think><answer>x</answer>", True, "推理"),  # a repeated <think> is not thinking text
        ("推理<answer>x</answer>", True, "推理"),  # no </think>: up to <answer>
        ("只有推理", True, "只有推理"),
    ],
)
def test_extract_thinking(response, starts_in_think, thinking):
    """The thinking part is what precedes </think> (or <answer>)."""
    assert extract_thinking(response, starts_in_think) == thinking


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("", 0.0),
        ("123 ,.!", 0.0),  # no letters at all
        ("被告人犯盗窃罪", 1.0),
        ("theft", 0.0),
        ("盗窃ab", 0.5),  # 2 CJK of 4 letters
        ("盗窃 is 2 words", 2 / 9),  # digits and spaces do not count
        ("ＡＢ盗窃", 0.5),  # full-width Latin letters are letters
        ("とうなん盗窃", 2 / 6),  # kana are letters but not Chinese
    ],
)
def test_chinese_share(text, share):
    """Share of CJK ideographs among letters of any script."""
    assert chinese_share(text) == pytest.approx(share)
    assert language_reward(text) == pytest.approx(share)


@pytest.mark.parametrize(
    ("length", "correct", "ref", "expected"),
    [
        # Exact Kimi formula from the group's min and max.
        (100, True, LengthRef(min_len=100, max_len=300), 0.5),
        (300, True, LengthRef(min_len=100, max_len=300), -0.5),
        (200, True, LengthRef(min_len=100, max_len=300), 0.0),
        (100, False, LengthRef(min_len=100, max_len=300), 0.0),  # wrong answers never gain from being short
        (300, False, LengthRef(min_len=100, max_len=300), -0.5),
        # Typical length only: 0 at the reference, clipped to [-0.5, 0.5].
        (200, True, LengthRef(ref_len=200), 0.0),
        (0, True, LengthRef(ref_len=200), 0.5),
        (100, True, LengthRef(ref_len=200), 0.25),
        (300, False, LengthRef(ref_len=200), -0.25),
        (10_000, True, LengthRef(ref_len=200), -0.5),
        (100, False, LengthRef(ref_len=200), 0.0),
        # No reference → no penalty.
        (10_000, False, LengthRef(), 0.0),
    ],
)
def test_length_penalty(length, correct, ref, expected):
    """Kimi-1.5 length reward relative to the group."""
    assert length_penalty(length, correct, ref) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("extra_info", "default", "expected"),
    [
        ({"group_min_length": 10, "group_max_length": 90}, 500.0, LengthRef(min_len=10.0, max_len=90.0)),
        ({"group_min_length": 10, "group_max_length": 10, "group_mean_length": 50}, None, LengthRef(ref_len=50.0)),
        ({"group_mean_length": 120, "ref_length": 80}, 500.0, LengthRef(ref_len=120.0)),
        ({"ref_length": 80}, 500.0, LengthRef(ref_len=80.0)),
        ({"ref_length": "80"}, 500.0, LengthRef(ref_len=500.0)),  # not a number → ignored
        ({"ref_length": 0}, None, LengthRef()),
        ({}, 500.0, LengthRef(ref_len=500.0)),
        (None, None, LengthRef()),
    ],
)
def test_length_ref_from(extra_info, default, expected):
    """Group statistics come from extra_info first, then the per-task default."""
    assert length_ref_from(extra_info, default) == expected

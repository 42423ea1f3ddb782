"""R1-zero output format: ``<think> … </think> <answer> … </answer>`` — the format check and answer extraction.

The format rule (issue 4), with ``starts_in_think`` (default; the base-model chat template ends in ``<think>`` so the
response starts INSIDE the think block):

    thinking text, "</think>", optional whitespace, "<answer>", non-empty answer, "</answer>", optional whitespace

and nothing else; each tag appears exactly once (a stray ``<think>`` in the response counts as a repeat of the one in
the prompt; a second ``<answer>`` block fails). Without ``starts_in_think`` the response must open with ``<think>``
itself; leading whitespace before it is allowed (tokenizers and templates often leave a space or newline after
"Assistant:"), anything else before it is not.

Decisions, written once here:
- The thinking text may be empty (as open-r1's ``<think>.*?</think>`` rule); the answer may not (whitespace only
  counts as empty).
- Tags are matched exactly and case-sensitively; ``<Answer>`` is plain text.
- ``extract_answer`` is lenient on purpose: it reads the last complete ``<answer>…</answer>`` block even when the
  format is wrong (the format penalty is separate); a block with no closing tag (truncated response) is no answer.
"""

from __future__ import annotations

import re

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "THINK_CLOSE",
    "THINK_OPEN",
    "check_format",
    "extract_answer",
    "extract_thinking",
]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

# Compiled once at import. Tag counts are checked before matching, so the lazy groups cannot skip over a tag.
_INSIDE_THINK = re.compile(r"(?s)(.*?)</think>\s*<answer>(.*?)</answer>\s*")
_OPENS_THINK = re.compile(r"(?s)\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*")


def check_format(response: str, starts_in_think: bool = True) -> bool:
    """Whether the response follows the think/answer format exactly (see the module docstring)."""
    if not isinstance(response, str):
        return False
    if (
        response.count(THINK_CLOSE) != 1
        or response.count(ANSWER_OPEN) != 1
        or response.count(ANSWER_CLOSE) != 1
        or response.count(THINK_OPEN) != (0 if starts_in_think else 1)
    ):
        return False
    match = (_INSIDE_THINK if starts_in_think else _OPENS_THINK).fullmatch(response)
    return match is not None and bool(match.group(2).strip())


def extract_answer(response: str) -> str | None:
    """Content of the last complete ``<answer>…</answer>`` block, stripped; None when there is none or it is empty."""
    if not isinstance(response, str):
        return None
    end = response.rfind(ANSWER_CLOSE)
    if end < 0:
        return None
    start = response.rfind(ANSWER_OPEN, 0, end)
    if start < 0:
        return None
    answer = response[start + len(ANSWER_OPEN) : end].strip()
    return answer or None


def extract_thinking(response: str, starts_in_think: bool = True) -> str:
    """The thinking part: text before the first ``</think>`` (without an opening ``<think>``).

    With no ``</think>``, the text before the first ``<answer>``, or the whole response when there is none.
    """
    if not isinstance(response, str):
        return ""
    end = response.find(THINK_CLOSE)
    if end < 0:
        end = response.find(ANSWER_OPEN)
    head = response if end < 0 else response[:end]
    if not starts_in_think or head.lstrip().startswith(THINK_OPEN):
        start = head.find(THINK_OPEN)
        if start >= 0:
            head = head[start + len(THINK_OPEN) :]
    return head

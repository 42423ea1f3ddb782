"""What the safety recipe tells the LLM judge: the grade wording (judge_prompts.yaml) and what it compares."""

from __future__ import annotations

from pathlib import Path

__all__ = ["JUDGE_PROMPTS_PATH", "REASONING_LABEL"]

JUDGE_PROMPTS_PATH = Path(__file__).with_name("judge_prompts.yaml")
"""The reasoning grader's prompts (only `grade`; the rest of judge/prompts.yaml is kept)."""

REASONING_LABEL = "内容安全审查理由"
"""What the judge is told it compares (the gold reasoning against the model's reasoning)."""

"""A loopback judge's answers for the CPU training loop's tests: well-formed for every question the legal and
safety rewards ask, and the prediction a request carries."""

from __future__ import annotations

from typing import Any


def judge_reply(body: dict[str, Any]) -> str:
    """No error for the prison-term question, the top grade for every other one."""
    return "误差：0个月" if "误差" in str(body.get("messages")) else "2"


def prediction(body: dict[str, Any]) -> str:
    """The prediction a judge request carries (between the judge prompt's fence markers)."""
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    return text.split("<<<预测开始>>>", 1)[-1].split("<<<预测结束>>>", 1)[0]

"""One gold case per legal task, the response wrapper and the scripted judge reply the reward tests share."""

from __future__ import annotations

import re

_SAYS = re.compile(r"JUDGE_SAYS:([^\n<]*)")

# (ground_truth, extra_info) per task, as data.prepare writes them.
GOLD = {
    "charge": ("盗窃罪、诈骗罪", {"index": 0, "charges": ["盗窃罪", "诈骗罪"]}),
    "article": ("第67条、第264条", {"index": 1, "articles": [67, 264]}),
    "term": ("有期徒刑三年六个月", {"index": 2, "term_kind": "fixed", "term_months": 42}),
    "verdict": (
        "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。",
        {"index": 3, "charges": ["盗窃罪"], "term_kind": "fixed", "term_months": 18, "fine": 5000},
    ),
}


def wrap(answer: str) -> str:
    """A well-formatted response (the prompt ended in <think>)."""
    return f"先分析案情。</think>\n<answer>{answer}</answer>"


def scripted_reply(request: dict) -> str:
    """The judge's answer: what the prediction asks for after JUDGE_SAYS:, else "2"."""
    user = "\n".join(str(m.get("content", "")) for m in request["messages"] if m.get("role") == "user")
    found = _SAYS.search(user)
    return found.group(1).strip() if found else "2"

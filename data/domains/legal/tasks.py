"""The four legal tasks: names, Chinese labels, data_source strings and the prompt text for each task."""

from __future__ import annotations

import re

__all__ = [
    "ANSWER_FORMAT",
    "CHAT_SYSTEM_PROMPT",
    "INSTRUCTIONS",
    "TASKS",
    "TASK_LABELS",
    "TEMPLATES",
    "build_prompt",
    "data_source",
    "fixes_months",
    "parse_tasks",
    "task_of",
]

TASKS: tuple[str, ...] = ("charge", "article", "term", "verdict")
"""Task names, in the canonical order (rows, stats and quotas follow it)."""

TASK_LABELS: dict[str, str] = {"charge": "罪名", "article": "法条", "term": "刑期", "verdict": "判决结果"}
"""Chinese label per task, as the judge prompt names it."""

TEMPLATES: tuple[str, ...] = ("base", "chat")
"""`base`: one user message (the R1-zero wrapping comes from the training chat template); `chat`: system + user."""

ANSWER_FORMAT = (
    "请先在<think>与</think>之间写出你的推理过程，然后在<answer>与</answer>之间给出最终答案，"
    "即：<think>推理过程</think><answer>最终答案</answer>。<answer>中只写答案本身，不要写理由。"
)
"""The output format every task asks for."""

INSTRUCTIONS: dict[str, str] = {
    "charge": (
        "请根据下面的案件事实，判断被告人构成的罪名。"
        "答案只写罪名，每个罪名以“罪”字结尾；构成多个罪名时用顿号“、”分隔，"
        "例如：<answer>盗窃罪、诈骗罪</answer>。"
    ),
    "article": (
        "请根据下面的案件事实，指出本案判决应当依据的《中华人民共和国刑法》条文。"
        "答案只写条文序号，用阿拉伯数字，多个条文用顿号“、”分隔，"
        "例如：<answer>第264条、第67条</answer>。"
    ),
    "term": (
        "请根据下面的案件事实，预测法院对被告人判处的主刑及刑期。"
        "答案只写刑种和刑期，例如：<answer>有期徒刑一年六个月</answer>、<answer>拘役五个月</answer>；"
        "判处无期徒刑、死刑（含死刑缓期执行）或免予刑事处罚的，直接写出“无期徒刑”“死刑”或“免予刑事处罚”；"
        "只判处罚金、没有主刑的，写“单处罚金”。缓刑不是刑期，不要写入答案；罚金数额也不要写入答案。"
    ),
    "verdict": (
        "请根据下面的案件事实，写出本案的判决结果。"
        "答案应写明被告人姓名、所犯罪名、判处的刑罚（主刑及刑期）和罚金数额（如有），"
        "例如：<answer>被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。</answer>"
    ),
}
"""What the answer must contain, per task (Chinese; the facts follow)."""

CHAT_SYSTEM_PROMPT = (
    "你是一名熟悉《中华人民共和国刑法》和中国刑事审判实务的法官助理。"
    "你会根据案件事实作出判断，先在<think></think>中逐步推理，再在<answer></answer>中给出简洁的最终答案。"
)
"""System message for `--template chat` (instruct models)."""

_FACTS_HEADER = "案件事实："
# An instruction that asks for the term as a number of months (以月为单位, 刑期的月数): the unit of a bare number.
_MONTHS_UNIT = re.compile(r"以月为单位|按月计|月数|多少个月")


def fixes_months(task: str) -> bool:
    """Whether the task's instruction fixes the answer's unit as months, so a bare number (12) is 12 months.

    Rewards and evaluation read answers knowing only the task (verl passes the data_source, not the prompt); every
    prompt of a task is built from INSTRUCTIONS[task], so the instruction is what the prompt asked. Today's term
    instruction asks for 有期徒刑一年六个月-style text: the unit is not fixed and a bare number stays unreadable.
    """
    return bool(_MONTHS_UNIT.search(INSTRUCTIONS.get(task, "")))


def data_source(task: str) -> str:
    """verl data_source for a task: "charge" → "legal/charge"."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return f"legal/{task}"


def task_of(source: str) -> str:
    """Inverse of data_source: "legal/term" → "term"; anything else raises ValueError."""
    prefix, _, task = source.partition("/")
    if prefix != "legal" or task not in TASKS:
        raise ValueError(f"not a legal data_source: {source!r}; expected legal/<{'|'.join(TASKS)}>")
    return task


def parse_tasks(text: str) -> tuple[str, ...]:
    """Comma list of task names → tuple in canonical order, without repeats; unknown names raise ValueError."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; expected a comma list of {', '.join(TASKS)}")
    if not names:
        raise ValueError("no task given; expected a comma list of " + ", ".join(TASKS))
    return tuple(t for t in TASKS if t in names)


def build_prompt(task: str, fact: str, template: str = "base") -> list[dict[str, str]]:
    """Chat messages for one item: `base` → [user]; `chat` → [system, user]. Same keys in every message."""
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    user = f"{INSTRUCTIONS[task]}{ANSWER_FORMAT}\n\n{_FACTS_HEADER}\n{fact.strip()}"
    if template == "base":
        return [{"role": "user", "content": user}]
    if template == "chat":
        return [{"role": "system", "content": CHAT_SYSTEM_PROMPT}, {"role": "user", "content": user}]
    raise ValueError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")

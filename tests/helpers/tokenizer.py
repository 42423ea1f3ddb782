"""A tiny byte-level BPE tokenizer trained locally on our own sample text (never downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = ("data/samples/cail2018_sample.jsonl", "data/samples/judgments_sample.jsonl")
# Tags are plain text, as in Qwen2.5: verl decodes with skip_special_tokens=True, which would strip special ones.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Fixed text so the tokenizer is the same whether or not the sample files changed.
SEED_TEXT = [
    "<think>被告人张某以非法占有为目的，秘密窃取他人财物，数额较大，其行为已构成盗窃罪。</think>",
    "<answer>盗窃罪、诈骗罪；第二百六十四条、第六十七条；有期徒刑一年六个月，并处罚金人民币五千元。</answer>",
    "The defendant stole property. Answer: theft. Term: 3 years 6 months. 拘役五个月 管制一年 无期徒刑 死刑",
    "误差：6个月 结果：2 完全正确 部分正确 错误 0 1 2 3 4 5 6 7 8 9",
]

# A Qwen-like chat template: enough for verl's RLHFDataset and apply_chat_template.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    """Seed text plus the facts of the shipped samples, when present."""
    lines = list(SEED_TEXT)
    for rel in SAMPLE_FILES:
        path = REPO_ROOT / rel
        if not path.exists():
            continue
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            text = record.get("fact") or record.get("text") if isinstance(record, dict) else None
            if isinstance(text, str):
                lines.append(text)
    return lines


def build_tiny_tokenizer(out_dir: str | Path, vocab_size: int = 1200) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on local text, save it as a HF tokenizer in out_dir, and return it."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    hf_tokenizer.chat_template = CHAT_TEMPLATE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_tokenizer.save_pretrained(str(out))
    return hf_tokenizer

"""A random-weight tiny Qwen2 with our local BPE tokenizer, saved once into a cache dir (never downloaded).

vLLM's CPU build serves it in well under a minute; its answers are nonsense, but the API, structured-output decoding,
the server process and its failures are vLLM's own. Run as a script to build it: ``python tests/helpers/tiny_model.py
DIR``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `helpers.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.tokenizer import CHAT_TEMPLATE, build_tiny_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO_ROOT / ".cache" / "tiny-qwen2"
# Small enough to load in seconds on 2 cores; head_dim 32 is one vLLM's CPU attention supports.
MODEL_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 8192,
}
SEED = 0


def _fingerprint() -> str:
    """Changes whenever the shape, the template or the tokenizer code changes: a stale cache is rebuilt."""
    tokenizer_src = (Path(__file__).parent / "tokenizer.py").read_bytes()
    blob = json.dumps([MODEL_SHAPE, SEED, CHAT_TEMPLATE], sort_keys=True).encode() + tokenizer_src
    return hashlib.sha256(blob).hexdigest()[:16]


def build_tiny_model(cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    """The tiny model's directory (config, safetensors, tokenizer); built on first use, reused while unchanged."""
    out = Path(cache_dir)
    stamp = out / "legal-grpo-tiny-model.txt"
    want = _fingerprint()
    if stamp.is_file() and stamp.read_text().strip() == want:
        return out
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(out)
    specials = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        bos_token_id=specials[0],
        eos_token_id=specials[0],
        pad_token_id=specials[0],
        torch_dtype="float32",
        **MODEL_SHAPE,
    )
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(str(out), safe_serialization=True)
    stamp.write_text(want + "\n")
    return out


if __name__ == "__main__":
    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CACHE))


# ------------------------------------------------------------------------------------- a format-primed tiny model
# Tests that need the judge inside the CPU loop need answers: a random model almost never writes <answer>…</answer>.
# With a constant prompt (a chat template that ignores the messages, PRIMED_TEMPLATE) a few seconds of training make
# the tiny model write a well-formed legal answer, each of `answers` about equally often when sampled.
PRIMED_TEMPLATE = "Q: <think>"
PRIMED_CACHE = REPO_ROOT / ".cache"


def primed_response(answer: str) -> str:
    """The response the primed model writes for one answer (after the template's "<think>")."""
    return f"</think> <answer>{answer}</answer>"


def build_primed_model(answers: tuple[str, ...], cache_dir: str | Path | None = None, steps: int = 150) -> Path:
    """The tiny model fine-tuned to answer PRIMED_TEMPLATE with primed_response(a), a drawn from answers, then stop.

    A test fixture, not a recipe stage. Built once into cache_dir (default .cache/tiny-qwen2-primed-<hash>), reused
    while the base model, the template and the answers are unchanged.
    """
    want = hashlib.sha256(json.dumps([_fingerprint(), PRIMED_TEMPLATE, list(answers), steps]).encode()).hexdigest()
    out = Path(cache_dir) if cache_dir else PRIMED_CACHE / f"tiny-qwen2-primed-{want[:12]}"
    stamp = out / "legal-grpo-primed-model.txt"
    if stamp.is_file() and stamp.read_text().strip() == want:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = build_tiny_model()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(SEED)
    prompt = tokenizer(PRIMED_TEMPLATE, add_special_tokens=False)["input_ids"]
    rows = [tokenizer(primed_response(a), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            for a in answers]  # fmt: skip
    width = len(prompt) + max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.eos_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):  # right-padded: every row's positions start at 0
        ids[i, : len(prompt) + len(row)] = torch.tensor(prompt + row)
        mask[i, : len(prompt) + len(row)] = 1
        labels[i, len(prompt) : len(prompt) + len(row)] = torch.tensor(row)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    stamp.write_text(want + "\n")
    return out

"""A tiny random-weight Qwen2 model with the local tokenizer, built on this machine (nothing downloaded)."""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.tokenizer import build_tiny_tokenizer

# Small enough to build in a second, shaped like Qwen2 (GQA, tied embeddings) so verl treats it as one.
TINY_QWEN2 = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}


def build_tiny_qwen(out_dir: str | Path, seed: int = 0) -> Path:
    """Save a random-weight Qwen2ForCausalLM and the tiny tokenizer in out_dir; return the directory."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = build_tiny_tokenizer(out)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_QWEN2,
    )
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).save_pretrained(str(out))
    return out


def main() -> None:
    """CLI: python tests/helpers/tiny_qwen.py OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    build_tiny_qwen(parser.parse_args().out_dir)


if __name__ == "__main__":
    main()

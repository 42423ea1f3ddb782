"""Batched generation with transformers: left-padded token prompts, greedy or sampled, cut after the first stop token.

One implementation for two callers, so that they decode alike (padding, stop rule, log-probs):
- the CPU rollout's server (recipes/trainer/cpu/rollout.py), which verl's trainer generates and validates with on a
  machine without GPUs;
- the transformers backend of offline generation (recipes/evaluation/generation.py: ``evaluate --model``, rejection
sampling),
  which evaluates an exported checkpoint where vLLM cannot run.
No verl, no Ray: plain torch + transformers (+ peft for a LoRA adapter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Completion", "Decoding", "generate_batch", "load_causal_lm", "round_weights", "stop_and_pad_ids"]


@dataclass(frozen=True)
class Decoding:
    """The sampling settings one batch shares (vLLM's SamplingParams names; temperature <= 0 is greedy)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int = 16


@dataclass
class Completion:
    """One generated answer: its token ids up to and including the first stop token, and their log-probs."""

    token_ids: list[int]
    log_probs: list[float] | None


def stop_and_pad_ids(model: Any, model_path: str | None = None) -> tuple[set[int], int]:
    """(stop ids, pad id) as vLLM reads them: generation_config.json's eos_token_id (else the model config's); the
    pad id is the generation config's or the model config's pad, else the smallest stop id."""
    from transformers import GenerationConfig

    generation = model.generation_config
    if model_path is not None:
        try:
            generation = GenerationConfig.from_pretrained(model_path)
        except OSError:
            pass
    config = model.config
    eos = generation.eos_token_id if generation.eos_token_id is not None else config.eos_token_id
    stop_ids = {int(t) for t in (eos if isinstance(eos, list) else [eos]) if t is not None}
    if not stop_ids:
        raise ValueError(f"{model_path or 'the model'}: no eos_token_id in its generation or model config")
    pad = generation.pad_token_id if generation.pad_token_id is not None else config.pad_token_id
    return stop_ids, int(pad if pad is not None else min(stop_ids))


def round_weights(module: torch.nn.Module, dtype: torch.dtype) -> None:
    """Round every floating parameter through dtype in place (kept in its own dtype): the values a rollout engine
    holding the weights in dtype computes with (vLLM's rollout.dtype, bfloat16 by default)."""
    with torch.no_grad():
        for param in module.parameters():
            if param.is_floating_point() and param.dtype != dtype:
                param.copy_(param.to(dtype).to(param.dtype))


def load_causal_lm(model_path: str, adapter: str | None = None) -> Any:
    """A transformers causal LM in float32 on the CPU (eval mode), with a PEFT LoRA adapter applied unmerged."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    model.eval()
    return model


@torch.no_grad()
def generate_batch(
    model: Any,
    prompts: Sequence[Sequence[int]],
    decoding: Decoding,
    stop_ids: set[int],
    pad_id: int,
    want_logprobs: bool = False,
) -> list[Completion]:
    """Left-padded batched sampling (greedy at temperature <= 0) with the raw log-probs of the chosen tokens; each
    answer ends after its first stop token (kept in token_ids, as verl's rollout keeps the EOS)."""
    if not prompts:
        return []
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        attention[row, width - len(prompt) :] = 1
    greedy = decoding.temperature <= 0
    sampling = {} if greedy else {
        "temperature": decoding.temperature,
        "top_p": decoding.top_p,
        "top_k": decoding.top_k if decoding.top_k > 0 else 0,
    }  # fmt: skip
    generated = model.generate(
        input_ids=input_ids,
        attention_mask=attention,
        max_new_tokens=decoding.max_tokens,
        do_sample=not greedy,
        eos_token_id=sorted(stop_ids),
        pad_token_id=pad_id,
        output_logits=want_logprobs,
        return_dict_in_generate=True,
        **sampling,
    )
    new_tokens = generated.sequences[:, width:]
    chosen = None
    if want_logprobs:
        logprobs = torch.stack(generated.logits, dim=1).float().log_softmax(-1)
        chosen = logprobs.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
    out = []
    for row in range(len(prompts)):
        tokens = new_tokens[row].tolist()
        end = next((i + 1 for i, t in enumerate(tokens) if t in stop_ids), len(tokens))
        out.append(Completion(tokens[:end], chosen[row, :end].tolist() if chosen is not None else None))
    return out

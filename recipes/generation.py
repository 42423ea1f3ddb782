"""Offline generation with vLLM: chat prompts rendered with a given template, n completions per prompt.

Generic (no task knowledge): evaluation (``recipes.evaluate --model``) uses it, and so can any tool that
samples from a policy (rejection sampling). The sampling config is a mapping with two sections passed through as
keyword arguments: ``llm`` → ``vllm.LLM(model=PATH, **llm)``, ``sampling`` → ``vllm.SamplingParams(**sampling)``
(configs/eval_sampling.yaml). vLLM is imported lazily: it exists on GPU nodes and in the test tier's .venv-vllm.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Conversation = Sequence[Mapping[str, str]]


class GenerationError(RuntimeError):
    """Generation cannot run here (vLLM missing) or its inputs are unusable."""


def render_prompts(tokenizer: Any, conversations: Sequence[Conversation], chat_template: str | None) -> list[str]:
    """Prompts as verl renders them: the template (None: the tokenizer's own), add_generation_prompt=True."""
    return [
        tokenizer.apply_chat_template(
            [dict(m) for m in conv], chat_template=chat_template, tokenize=False, add_generation_prompt=True
        )
        for conv in conversations
    ]


def generate(
    model: str,
    conversations: Sequence[Conversation],
    chat_template: str | None,
    sampling_cfg: Mapping[str, Any],
    adapter: str | None = None,
) -> list[list[str]]:
    """For each conversation, the texts of its ``sampling.n`` completions (in sample order); ``adapter``: a PEFT LoRA
    adapter directory applied on the model (verl's merger leaves a LoRA run's adapter unmerged)."""
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise GenerationError(
            "vLLM is not installed here (GPU node: pip install -e '.[train]'; CPU tests: scripts/test.sh's .venv-vllm)"
        ) from exc
    llm_kwargs = dict(sampling_cfg.get("llm") or {})
    request = None
    if adapter:
        llm_kwargs = {"enable_lora": True, "max_lora_rank": _adapter_rank(adapter), **llm_kwargs}
        request = LoRARequest("policy", 1, str(Path(adapter).resolve()))
    sampling_kwargs = dict(sampling_cfg.get("sampling") or {})
    llm = LLM(model=model, **llm_kwargs)
    prompts = render_prompts(llm.get_tokenizer(), conversations, chat_template)
    plus = f" + adapter {adapter}" if adapter else ""
    logger.info("generating %d prompts × n=%s with %s%s", len(prompts), sampling_kwargs.get("n", 1), model, plus)
    from recipes.progress import tqdm  # vLLM's bar as plain lines in logs and pipes (use_tqdm takes a tqdm factory)

    outputs = llm.generate(prompts, SamplingParams(**sampling_kwargs), use_tqdm=tqdm, lora_request=request)
    return [[completion.text for completion in output.outputs] for output in outputs]


def _adapter_rank(adapter: str) -> int:
    """The LoRA rank ``r`` of a PEFT adapter directory (vLLM must be told the largest rank it serves)."""
    config_path = Path(adapter) / "adapter_config.json"
    try:
        return int(json.loads(config_path.read_text(encoding="utf-8"))["r"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GenerationError(f"{config_path}: not a PEFT LoRA adapter config with a rank 'r' ({exc})") from exc


def write_samples(path: str | Path, keys: Sequence[Mapping[str, Any]], completions: Sequence[Sequence[str]]) -> Path:
    """JSON lines ``{**key, "response": text, "sample": i}``: one line per completion, keys in prompt order."""
    if len(keys) != len(completions):
        raise GenerationError(f"{len(keys)} keys for {len(completions)} prompts")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for key, texts in zip(keys, completions, strict=True):
            for sample, text in enumerate(texts):
                handle.write(json.dumps({**key, "response": text, "sample": sample}, ensure_ascii=False) + "\n")
    return out

"""Offline generation: chat prompts rendered with a given template, n completions per prompt, by vLLM or transformers.

Generic (no task knowledge): evaluation (``recipes.evaluate --model``) uses it, and so can any tool that
samples from a policy (rejection sampling). The sampling config is a mapping with two sections passed through as
keyword arguments: ``llm`` → ``vllm.LLM(model=PATH, **llm)``, ``sampling`` → ``vllm.SamplingParams(**sampling)``
(configs/eval_sampling.yaml). vLLM is imported lazily: it exists on GPU nodes and in the test tier's .venv-vllm.

A model with a shorter context than ``llm.max_model_len`` (a 4k-context model under the 6k budget): before vLLM is
imported, the budget is capped to what the model allows, with a warning (fit_context); a prompt that does not fit
even then stops the run with one line (ContextError) instead of vLLM's traceback.

Backends (``backend``): ``vllm`` (GPU nodes; the default) and ``hf``: transformers in float32 on the CPU through
recipes/evaluation/hf_generate.py, the code the CPU rollout of verl's trainer generates with
(recipes/trainer/cpu/rollout.py), so
a checkpoint trained on the CPU evaluates on the CPU to the trainer's own validation numbers. ``hf`` reads the same
``sampling`` keys (temperature, top_p, top_k, max_tokens, n, seed, skip_special_tokens; any other is an error, not
ignored), ``llm.max_model_len`` and its own optional ``hf`` section (batch_size, threads).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Conversation = Sequence[Mapping[str, str]]

BACKENDS = ("vllm", "hf")
ADAPTER_DIR = "lora_adapter"
"""Where verl's model merger puts a LoRA run's adapter inside the exported directory (recipes/evaluation/export.py)."""
# SamplingParams keys the transformers backend honours (with vLLM's defaults); any other is refused, not ignored.
HF_SAMPLING_DEFAULTS: dict[str, Any] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": -1,
    "max_tokens": 16,
    "n": 1,
    "seed": None,
    "skip_special_tokens": True,
}
HF_DEFAULTS: dict[str, Any] = {"batch_size": 16, "threads": 1}


# vLLM 0.32 takes the model's context as the smallest of these config keys (model_max_length alone wins when set):
# vllm/transformers_utils/model_arch_config_convertor.py, derive_max_model_len_and_key.
CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
# RoPE types whose scaling factor vLLM does not apply on top (vllm/config/model.py, _get_and_verify_max_len).
UNSCALED_ROPE = ("default", "su", "longrope", "llama3", "yarn", "deepseek_yarn", "deepseek_llama_scaling")


class GenerationError(RuntimeError):
    """Generation cannot run here (vLLM missing) or its inputs are unusable."""


class ContextError(GenerationError):
    """Prompts longer than the model's context allows; ``first`` is the position of the first one."""

    def __init__(self, message: str, first: int) -> None:
        super().__init__(message)
        self.first = first


def model_context(model: str) -> tuple[int, str] | None:
    """The longest context (tokens) vLLM allows a local model directory, and the config key it comes from.

    None when it cannot be told here (no local config.json, a config transformers cannot read): vLLM checks it then.
    """
    path = Path(model)
    if not (path / "config.json").is_file():
        return None
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # an unknown model type or remote code: leave the check to vLLM
        logger.debug("cannot read %s/config.json here (%s); vLLM checks the context itself", model, exc)
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    found = [(int(v), k) for k in CONTEXT_KEYS if isinstance(v := getattr(text, k, None), (int, float))]
    if not found:
        return None
    if isinstance(getattr(text, "model_max_length", None), (int, float)):
        length, key = int(text.model_max_length), "model_max_length"
    else:
        length, key = min(found)
    tokenizer_config = path / "tokenizer_config.json"
    if tokenizer_config.is_file():
        limit = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("model_max_length")
        if isinstance(limit, (int, float)) and limit < length:
            length, key = int(limit), "model_max_length in tokenizer_config.json"
    rope = getattr(text, "rope_scaling", None) or getattr(text, "rope_parameters", None)
    if isinstance(rope, Mapping) and "gemma3" not in str(getattr(config, "model_type", "")):
        kind = rope.get("rope_type", rope.get("type", "default"))
        if kind not in UNSCALED_ROPE and isinstance(rope.get("factor"), (int, float)):
            length, key = int(length * rope["factor"]), f"{key} x rope factor {rope['factor']}"
    return length, key


def fit_context(model: str, sampling_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """sampling_cfg with ``llm.max_model_len`` capped to the model's context, saying so in a warning; unchanged when
    it fits, when it is unset (vLLM takes the model's own) or when the model's context cannot be told here."""
    cfg = {**sampling_cfg, "llm": dict(sampling_cfg.get("llm") or {})}
    wanted = cfg["llm"].get("max_model_len")
    found = model_context(model) if isinstance(wanted, int) and wanted > 0 else None
    if found is None or wanted <= found[0]:
        return cfg
    context, key = found
    cfg["llm"]["max_model_len"] = context
    max_tokens = (sampling_cfg.get("sampling") or {}).get("max_tokens")
    logger.warning(
        "%s allows %d tokens of context (%s): llm.max_model_len capped from %d to %d, so a prompt and its response "
        "share %d tokens (a response stops there, before max_tokens %s, once its prompt is over %s tokens)",
        model, context, key, wanted, context, context, max_tokens,
        context - max_tokens if isinstance(max_tokens, int) else "that minus max_tokens",
    )  # fmt: skip
    return cfg


def prompts_over(tokenizer: Any, prompts: Sequence[str], max_model_len: int) -> list[tuple[int, int]]:
    """(position, token count) of each prompt that leaves no room for a response within max_model_len."""
    over = []
    for i, prompt in enumerate(prompts):
        n = len(tokenizer.encode(prompt))
        if n >= max_model_len:
            over.append((i, n))
    return over


def render_prompts(tokenizer: Any, conversations: Sequence[Conversation], chat_template: str | None) -> list[str]:
    """Prompts as verl renders them: the template (None: the tokenizer's own), add_generation_prompt=True."""
    return [
        tokenizer.apply_chat_template(
            [dict(m) for m in conv], chat_template=chat_template, tokenize=False, add_generation_prompt=True
        )
        for conv in conversations
    ]


def resolve_adapter(model: str, adapter: str | None) -> str | None:
    """The LoRA adapter to apply: ``adapter`` as given ("none": no adapter), else MODEL/lora_adapter when verl's merger
    put one there (a LoRA run's export: the weights in MODEL alone are the model the run started from)."""
    if adapter is not None:
        return None if adapter.strip().lower() == "none" else adapter
    found = Path(model) / ADAPTER_DIR
    if (found / "adapter_config.json").is_file():
        logger.info("applying the LoRA adapter of the export: %s (--lora-adapter none: the base alone)", found)
        return str(found)
    return None


def generate(
    model: str,
    conversations: Sequence[Conversation],
    chat_template: str | None,
    sampling_cfg: Mapping[str, Any],
    adapter: str | None = None,
    backend: str = "vllm",
) -> list[list[str]]:
    """For each conversation, the texts of its ``sampling.n`` completions (in sample order); ``adapter``: a PEFT LoRA
    adapter directory applied on the model (verl's merger leaves a LoRA run's adapter unmerged); ``backend``: vllm or
    hf (module docstring)."""
    if backend not in BACKENDS:
        raise GenerationError(f"unknown generation backend {backend!r} (one of {', '.join(BACKENDS)})")
    sampling_cfg = fit_context(model, sampling_cfg)  # before vLLM: its own check is a traceback
    if backend == "hf":
        return generate_hf(model, conversations, chat_template, sampling_cfg, adapter)
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
    limit = int(getattr(getattr(llm.llm_engine, "model_config", None), "max_model_len", 0) or 0)
    over = prompts_over(llm.get_tokenizer(), prompts, limit) if limit else []
    if over:
        (first, n), longest = over[0], max(count for _, count in over)
        raise ContextError(
            f"{len(over)} of {len(prompts)} prompts do not fit the model's context of {limit} tokens (prompt {first}: "
            f"{n} tokens; longest {longest}); prepare the data with --tokenizer and a smaller --max-prompt-tokens, or "
            "use a model with a longer context",
            first,
        )
    plus = f" + adapter {adapter}" if adapter else ""
    logger.info("generating %d prompts × n=%s with %s%s", len(prompts), sampling_kwargs.get("n", 1), model, plus)
    from data.progress import tqdm  # vLLM's bar as plain lines in logs and pipes (use_tqdm takes a tqdm factory)

    outputs = llm.generate(prompts, SamplingParams(**sampling_kwargs), use_tqdm=tqdm, lora_request=request)
    return [[completion.text for completion in output.outputs] for output in outputs]


def hf_settings(sampling_cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    """(sampling keys with vLLM's defaults, the hf section, llm.max_model_len); unknown keys are errors."""
    sampling = dict(sampling_cfg.get("sampling") or {})
    unknown = sorted(set(sampling) - set(HF_SAMPLING_DEFAULTS))
    if unknown:
        raise GenerationError(
            f"sampling keys the transformers backend does not implement: {', '.join(unknown)} "
            f"(it reads {', '.join(HF_SAMPLING_DEFAULTS)}): use --backend vllm or drop them"
        )
    hf = dict(sampling_cfg.get("hf") or {})
    unknown = sorted(set(hf) - set(HF_DEFAULTS))
    if unknown:
        raise GenerationError(f"unknown keys in the sampling config's hf section: {', '.join(unknown)}")
    max_model_len = (sampling_cfg.get("llm") or {}).get("max_model_len")
    return {**HF_SAMPLING_DEFAULTS, **sampling}, {**HF_DEFAULTS, **hf}, max_model_len


def prompt_token_ids(
    tokenizer: Any, conversations: Sequence[Conversation], chat_template: str | None
) -> list[list[int]]:
    """Each conversation's prompt as token ids: the template rendered with add_generation_prompt=True and tokenized
    without added special tokens (as verl's agent loop tokenizes a rollout prompt)."""
    texts = render_prompts(tokenizer, conversations, chat_template)
    return [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]


def generate_hf(
    model: str,
    conversations: Sequence[Conversation],
    chat_template: str | None,
    sampling_cfg: Mapping[str, Any],
    adapter: str | None = None,
) -> list[list[str]]:
    """generate() with transformers on the CPU (recipes/evaluation/hf_generate.py): left-padded batches of hf.batch_size
    answers, each prompt's n answers next to each other, decoded as verl decodes a response."""
    import torch
    from transformers import AutoTokenizer

    from recipes.evaluation.hf_generate import Decoding, generate_batch, load_causal_lm, stop_and_pad_ids

    sampling, hf, max_model_len = hf_settings(sampling_cfg)
    n, batch_size = int(sampling["n"]), int(hf["batch_size"])
    if n < 1 or batch_size < 1:
        raise GenerationError(f"sampling.n and hf.batch_size must be >= 1 (got {n}, {batch_size})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        policy = load_causal_lm(model, adapter)
    except (OSError, ValueError) as exc:
        raise GenerationError(f"transformers cannot load {model}{' + ' + adapter if adapter else ''}: {exc}") from exc
    stop_ids, pad_id = stop_and_pad_ids(policy, model)
    prompts = prompt_token_ids(tokenizer, conversations, chat_template)
    limit = int(max_model_len) if max_model_len else int(getattr(policy.config, "max_position_embeddings", 4096))
    for i, ids in enumerate(prompts):
        if len(ids) >= limit:
            raise GenerationError(f"prompt {i} has {len(ids)} tokens, llm.max_model_len is {limit}")
    threads = torch.get_num_threads()
    torch.set_num_threads(int(hf["threads"]))
    if sampling["seed"] is not None:
        torch.manual_seed(int(sampling["seed"]))
    plus = f" + adapter {adapter}" if adapter else ""
    logger.info("generating %d prompts × n=%d with transformers (CPU, float32): %s%s", len(prompts), n, model, plus)
    jobs = [(i, ids) for i, ids in enumerate(prompts) for _ in range(n)]
    out: list[list[str]] = [[] for _ in prompts]
    try:
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            longest = max(len(ids) for _, ids in chunk)
            decoding = Decoding(
                temperature=float(sampling["temperature"]),
                top_p=float(sampling["top_p"]),
                top_k=int(sampling["top_k"] or -1),
                max_tokens=max(1, min(int(sampling["max_tokens"]), limit - longest)),
            )
            for (i, _), completion in zip(
                chunk, generate_batch(policy, [ids for _, ids in chunk], decoding, stop_ids, pad_id), strict=True
            ):
                text = tokenizer.decode(completion.token_ids, skip_special_tokens=bool(sampling["skip_special_tokens"]))
                out[i].append(text)
    finally:
        torch.set_num_threads(threads)
    return out


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

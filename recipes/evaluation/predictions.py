"""Predictions generated for an evaluation (``--model``, vLLM or transformers): the sampling YAML, the prompt
template, the file.

The prompts are the rows' ``prompt`` conversations, rendered as training renders them: with the training config's
``actor_rollout_ref.model.custom_chat_template`` when it sets one (the legal base-model template), else with the
model's own chat template (the safety recipe's instruct policy). The samples go to ``OUT/predictions.jsonl`` in the
shared predictions format, one line per sample, and are then read back like any ``--predictions`` file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recipes.evaluation.inputs import EvaluationInputError, Rows

__all__ = ["generate_predictions", "load_chat_template", "load_sampling_config"]


def load_sampling_config(path: str | Path) -> dict[str, Any]:
    """A sampling YAML (configs/eval_sampling*.yaml) as {'llm': {...}, 'sampling': {...}}."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"sampling config {path} not found")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for section in ("llm", "sampling"):
        if not isinstance(cfg.get(section), dict):
            raise EvaluationInputError(f"{path}: section {section!r} must be a mapping")
    return cfg


def load_chat_template(config_name: str, overrides: Sequence[str] = (), required: bool = True) -> str | None:
    """actor_rollout_ref.model.custom_chat_template of the composed training config.

    None when the config sets none and ``required`` is False (the model's own template renders the prompt).
    """
    from omegaconf import OmegaConf

    from recipes.launch.commands import ConfigError, compose_config

    try:
        cfg = compose_config(config_name, overrides)
    except ConfigError as exc:
        raise EvaluationInputError(str(exc)) from exc
    template = OmegaConf.select(cfg, "actor_rollout_ref.model.custom_chat_template")
    if isinstance(template, str) and template.strip():
        return template
    if required:
        raise EvaluationInputError(
            f"config {config_name}: actor_rollout_ref.model.custom_chat_template is not set — "
            "evaluation renders prompts with the training template"
        )
    return None


def generate_predictions(
    model: str,
    data: Rows,
    chat_template: str | None,
    sampling_cfg: Mapping[str, Any],
    out_path: Path,
    adapter: str | None = None,
    backend: str = "vllm",
) -> Path:
    """Generate every row's samples into out_path (predictions JSONL, rows in key order) with vLLM or transformers
    (recipes/evaluation/generation.py); ``adapter``: a LoRA adapter on the model."""
    from recipes.evaluation.generation import ContextError, GenerationError, generate, write_samples

    keys = sorted(data)
    prompts = [list(data[k]["prompt"]) for k in keys]
    try:
        completions = generate(model, prompts, chat_template, sampling_cfg, adapter=adapter, backend=backend)
    except ContextError as exc:  # prompt position i is the i-th key in sorted order
        data_source, index = keys[exc.first]
        raise EvaluationInputError(
            f"--model {model}: {exc} (prompt {exc.first} is {data_source} index {index})"
        ) from exc
    except GenerationError as exc:
        if backend == "hf":
            raise EvaluationInputError(f"--model with --backend hf: {exc}") from exc
        raise EvaluationInputError(
            f"--model needs vLLM: {exc}. On a machine without it, --backend hf generates with transformers (CPU); "
            "or generate predictions elsewhere and pass --predictions PRED.jsonl instead."
        ) from exc
    return write_samples(out_path, [{"index": i, "data_source": ds} for ds, i in keys], completions)

"""verl's own trainer on a machine without GPUs: a CPU platform, a transformers rollout and a few stand-ins.

Loaded only when asked: with ``cpu_env()`` in its environment, every verl process imports
``recipes.trainer.cpu.register`` at ``import verl`` (verl's ``VERL_USE_EXTERNAL_MODULES`` hook);
``bash scripts/train_grpo.sh --rehearse`` sets it. A GPU run never imports this package. In each process it

- registers the ``cpu`` platform (``VERL_PLATFORM=cpu`` selects it): device "cpu", gloo, Ray's "GPU" resource
  (``platform.py``);
- registers the ``hf_cpu`` rollout (``actor_rollout_ref.rollout.name=hf_cpu``): transformers generation with
  log-probs, weights from verl's naive checkpoint engine (``rollout.py``);
- installs the stand-ins of ``standins.py`` (the process-group backend string, the reference model's pinned
  offload).

verl's FSDP engine registers itself for cuda/npu only; ``VERL_ENGINE_DEVICE=cuda`` (verl's own override in
``EngineRegistry.get_engine_cls``) picks it, and it runs on the CPU with FSDP2 and gloo. ``overrides.py`` lists the
config changes a CPU run needs; ``judge.py`` serves the tiny model as a judge with vLLM's CPU build.
"""

from __future__ import annotations

REGISTER_MODULE = "recipes.trainer.cpu.register"
PLATFORM_NAME = "cpu"
ROLLOUT_NAME = "hf_cpu"
# A JSONL file every weight sync of the CPU rollout appends its checksum to (the rehearsal's resume check).
WEIGHTS_LOG_ENV = "LEGAL_CPU_WEIGHTS_LOG"


def cpu_env() -> dict[str, str]:
    """Environment variables that make every verl process of a run use this package."""
    return {
        "VERL_PLATFORM": PLATFORM_NAME,
        "VERL_USE_EXTERNAL_MODULES": REGISTER_MODULE,
        "VERL_ENGINE_DEVICE": "cuda",
    }

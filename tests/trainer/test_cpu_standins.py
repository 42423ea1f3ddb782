"""Guard of the CPU training path (recipes/trainer/cpu): fails loudly when a verl name it relies on changes.

The CPU path registers a platform and a rollout in verl's registries and replaces two verl functions. A verl upgrade
that renames, moves or reshapes any of them must break here, with the name, and not deep inside a CPU run.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# (module, attribute, what the CPU path uses it for)
VERL_NAMES = [
    ("verl.plugin.platform.platform_manager", "PlatformRegistry", "registers the cpu platform"),
    ("verl.plugin.platform.platform_manager", "_detect_platform_name", "VERL_PLATFORM picks the platform"),
    ("verl.plugin.platform.platform_base", "PlatformBase", "the platform interface PlatformCPU implements"),
    ("verl.utils.import_utils", "import_external_libs", "VERL_USE_EXTERNAL_MODULES imports our register module"),
    ("verl.utils.distributed", "initialize_global_process_group_ray", "stand-in: plain gloo backend"),
    ("verl.utils.distributed", "initialize_global_process_group", "stand-in: plain gloo backend (the SFT trainer)"),
    ("verl.workers.engine.fsdp.transformer_impl", "CPUOffloadPolicy", "stand-in: unpinned offload of the ref model"),
    ("verl.workers.engine.base", "EngineRegistry", "VERL_ENGINE_DEVICE=cuda picks the FSDP engine"),
    ("verl.workers.rollout.replica", "RolloutReplicaRegistry", "registers the hf_cpu replica"),
    ("verl.workers.rollout.replica", "RolloutReplica", "HFRolloutReplica's base"),
    ("verl.workers.rollout.replica", "TokenOutput", "what the generation server returns"),
    ("verl.workers.rollout.base", "_ROLLOUT_REGISTRY", "registers the hf_cpu adapter"),
    ("verl.workers.rollout.base", "BaseRollout", "HFServerAdapter's base"),
    ("verl.workers.rollout.llm_server", "LLMServerClient", "calls server.generate(prompt_ids, sampling_params, …)"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker", "update_weights hands the rollout full tensors"),
    ("verl.trainer.ppo.v1.trainer_base", "PPOTrainer", "forces the naive checkpoint engine, dumps rollouts"),
]


@pytest.mark.parametrize(("module", "name", "why"), VERL_NAMES, ids=[f"{m}.{n}" for m, n, _ in VERL_NAMES])
def test_verl_names_the_cpu_path_uses_exist(module: str, name: str, why: str) -> None:
    """Each verl name the CPU path relies on is still there."""
    assert hasattr(importlib.import_module(module), name), f"verl lost {module}.{name} ({why})"


def _source(module: str, name: str) -> str:
    return inspect.getsource(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize(
    ("module", "name", "text", "why"),
    [
        (
            "verl.utils.distributed",
            "initialize_global_process_group_ray",
            'f"cpu:gloo,{get_device_name()}:',
            "the default backend string the stand-in replaces",
        ),
        (
            "verl.utils.distributed",
            "initialize_global_process_group",
            'backend = f"cpu:gloo,{get_device_name()}:',
            "the SFT trainer's backend string the stand-in replaces",
        ),
        (
            "verl.utils.distributed",
            "initialize_global_process_group",
            "return local_rank, rank, world_size",
            "what the SFT trainer unpacks from the stand-in",
        ),
        (
            "verl.workers.engine.fsdp.transformer_impl",
            "FSDPEngine",
            "CPUOffloadPolicy(pin_memory=True)",
            "the pinned offload the stand-in unpins",
        ),
        (
            "verl.workers.engine.base",
            "EngineRegistry",
            'os.getenv("VERL_ENGINE_DEVICE")',
            "the override that selects the FSDP engine on CPU",
        ),
        (
            "verl.trainer.ppo.v1.trainer_base",
            "PPOTrainer",
            'checkpoint_engine_config.backend = "naive"',
            "weights reach the rollout in-process through update_weights",
        ),
        (
            "verl.workers.engine_workers",
            "ActorRolloutRefWorker",
            "await self.rollout.update_weights(",
            "the naive sync calls our adapter",
        ),
        (
            "verl.workers.rollout.llm_server",
            "LLMServerClient",
            "await server.generate.remote(",
            "the agent loop calls our server's generate",
        ),
        (
            "verl.trainer.ppo.v1.trainer_base",
            "PPOTrainer",
            "def _dump_generations(",
            "recipes.trainer.main_ppo adds the reward parts to the rollout dump here",
        ),
        (
            "verl.trainer.ppo.v1.trainer_base",
            "PPOTrainer",
            "def _log_rollout_data(",
            "recipes.trainer.main_ppo adds the reward parts to the rollout dump here",
        ),
    ],  # fmt: skip
)
def test_verl_code_the_cpu_path_depends_on_is_unchanged(module: str, name: str, text: str, why: str) -> None:
    """The verl code each stand-in or hook replaces still reads the way the stand-in assumes."""
    assert text in _source(module, name), f"{module}.{name} no longer contains {text!r} ({why})"


def test_platform_implements_every_abstract_method() -> None:
    """PlatformCPU implements the whole PlatformBase interface (an abstract method added upstream fails here)."""
    from verl.plugin.platform.platform_base import PlatformBase

    from recipes.trainer.cpu.platform import PlatformCPU

    missing = sorted(PlatformBase.__abstractmethods__ - {n for n in dir(PlatformCPU) if not n.startswith("__")})
    assert not missing and not PlatformCPU.__abstractmethods__, missing
    platform = PlatformCPU()
    assert (platform.device_name, platform.communication_backend_name(), platform.ray_resource_name()) == (
        "cpu",
        "gloo",
        "GPU",
    )
    assert not platform.is_platform_available(use_smi_check=True), "a GPU node must never auto-detect the CPU platform"


def test_rollout_classes_implement_verls_interfaces() -> None:
    """The adapter and the replica implement verl's abstract methods; the server answers every replica call."""
    from verl.workers.rollout.base import BaseRollout
    from verl.workers.rollout.replica import RolloutReplica

    from recipes.trainer.cpu.rollout import HFGenerationServer, HFRolloutReplica, HFServerAdapter

    assert not HFServerAdapter.__abstractmethods__ and issubclass(HFServerAdapter, BaseRollout)
    assert not HFRolloutReplica.__abstractmethods__ and issubclass(HFRolloutReplica, RolloutReplica)
    replica_calls = {"wake_up", "sleep", "abort_all_requests", "resume_generation", "clear_kv_cache",
                     "release_kv_cache", "resume_kv_cache", "start_profile", "stop_profile"}  # fmt: skip
    for call in replica_calls:
        assert "server." + call in _source("verl.workers.rollout.replica", "RolloutReplica"), call
        assert callable(getattr(HFGenerationServer, call, None)), call


def test_registration_happens_only_in_processes_that_ask(tmp_path: Path) -> None:
    """With cpu_env() verl resolves the cpu platform and the hf_cpu rollout; without it, nothing of ours loads."""
    from recipes.trainer.cpu import cpu_env

    probe = (
        "import sys, verl\n"
        "from verl.plugin.platform import get_platform\n"
        "from verl.workers.rollout.replica import RolloutReplicaRegistry\n"
        "ours = sorted(m for m in sys.modules if m.startswith('recipes.trainer.cpu'))\n"
        "print(get_platform().device_name if ours else '-', 'hf_cpu' in RolloutReplicaRegistry._registry, ours)\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES")}
    base["PYTHONPATH"] = str(REPO_ROOT)
    with_cpu = subprocess.run([sys.executable, "-c", probe], env={**base, **cpu_env()}, capture_output=True,
                              text=True, timeout=300, check=True)  # fmt: skip
    assert with_cpu.stdout.split()[:2] == ["cpu", "True"], with_cpu.stdout + with_cpu.stderr[-2000:]
    plain = subprocess.run([sys.executable, "-c", probe], env=base, capture_output=True, text=True, timeout=300,
                           check=True)  # fmt: skip
    assert plain.stdout.split() == ["-", "False", "[]"], plain.stdout


def test_the_trainer_entry_never_imports_the_cpu_path() -> None:
    """A GPU run's entry point (recipes.trainer.main_ppo, the launch commands) imports nothing of
    recipes.trainer.cpu."""
    probe = (
        "import sys, recipes.trainer.main_ppo, recipes.launch.commands, rewards.legal, rewards.safety\n"
        "print(sorted(m for m in sys.modules if m.startswith('recipes.trainer.cpu')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout

"""A verl platform for machines without an accelerator: device "cpu", gloo collectives, Ray's "GPU" resource.

verl 0.9.1 falls back to its "nvidia" platform when nothing is detected (verl/plugin/platform/platform_manager.py
``_detect_platform_name``), so every device call goes to torch.cuda. Registered under ``VERL_PLATFORM=cpu``, this one
answers with torch's CPU device. Its Ray resource is still "GPU": verl places one worker per GPU bundle, and a
rehearsal offers fake GPUs with ``ray.init(num_gpus=N)``, so the exact multi-GPU placement of a config runs on CPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import psutil
import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

from recipes.trainer.cpu import PLATFORM_NAME


class CPUDeviceModule(ModuleType):
    """What verl calls on ``get_torch_device()`` (torch.cuda's names), answered for the CPU.

    torch.cpu has only a few of torch.cuda's functions; the rest are memory and cache calls that mean nothing
    without an accelerator (no-ops and zeros), and the RNG calls, which map to torch's CPU generator so that a
    checkpoint's saved RNG state restores on resume.
    """

    def __init__(self) -> None:
        super().__init__("recipes.trainer.cpu.device")
        for name in ("current_device", "current_stream", "stream", "Stream", "Event", "synchronize", "set_device"):
            setattr(self, name, getattr(torch.cpu, name))

    @staticmethod
    def is_available() -> bool:
        """False: verl skips its accelerator-memory bookkeeping (verl/utils/memory_utils.py) when this is False."""
        return False

    @staticmethod
    def device_count() -> int:
        """One CPU device per process."""
        return 1

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        """The device's name."""
        return "cpu"

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        """torch's CPU generator state (saved in verl's checkpoints)."""
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        """Restore torch's CPU generator state."""
        torch.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        """Seed torch's CPU generator."""
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        """(free, total) bytes of host memory."""
        memory = psutil.virtual_memory()
        return memory.available, memory.total

    @staticmethod
    def _zero(*args: Any, **kwargs: Any) -> int:
        return 0

    @staticmethod
    def _nothing(*args: Any, **kwargs: Any) -> None:
        return None

    memory_allocated = memory_reserved = max_memory_allocated = max_memory_reserved = _zero
    empty_cache = ipc_collect = set_per_process_memory_fraction = reset_peak_memory_stats = _nothing
    reset_accumulated_memory_stats = _nothing


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """verl's platform interface on a machine without an accelerator."""

    _device_module = CPUDeviceModule()

    @property
    def device_name(self) -> str:
        """torch device type of tensors and meshes."""
        return "cpu"

    @property
    def vendor_name(self) -> str:
        """No accelerator vendor."""
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        """The torch.cuda stand-in above."""
        return self._device_module

    def is_available(self) -> bool:
        """Always: the CPU is there."""
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        """Never auto-detected: only ``VERL_PLATFORM=cpu`` selects it (a GPU node must never land here)."""
        return False

    def current_device(self) -> str:  # type: ignore[override]
        """ "cpu", not an index: verl passes this to .to() and torch.device(), where 0 would mean an accelerator."""
        return "cpu"

    def device_count(self) -> int:
        """One device."""
        return 1

    def set_device(self, device_index: int) -> None:
        """Nothing to select."""

    def synchronize(self, device_index: int | None = None) -> None:
        """CPU work is synchronous."""

    def manual_seed(self, seed: int) -> None:
        """Seed torch's CPU generator."""
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        """Seed torch's CPU generator."""
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        """No caching allocator to configure."""

    def empty_cache(self) -> None:
        """No device cache."""

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        """No compute capability."""
        return None, None

    def communication_backend_name(self) -> str:
        """gloo: torch.distributed's CPU backend."""
        return "gloo"

    def visible_devices_envvar(self) -> str:
        """Ray sets CUDA_VISIBLE_DEVICES for its "GPU" resource; verl reads local ranks from it."""
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        """No profiler ranges."""
        yield

    def profiler_start(self) -> None:
        """No device profiler."""

    def profiler_stop(self) -> None:
        """No device profiler."""

    def ray_resource_name(self) -> str:
        """Ray's "GPU": the rehearsal offers fake GPUs so verl's placement runs as on a GPU node."""
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        """Same as CUDA: Ray must not narrow CUDA_VISIBLE_DEVICES of the rollout server actors."""
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        """No CUDA IPC: weights reach the rollout through Ray (recipes.trainer.cpu.rollout)."""
        return False

    def cudart(self) -> Any:
        """No CUDA runtime."""
        return None


def selected() -> bool:
    """Whether this process runs verl on the CPU platform (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME

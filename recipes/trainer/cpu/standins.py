"""Stand-ins for the few verl 0.9.1 functions that assume an accelerator; each names the function it replaces.

Applied once per process by ``recipes.trainer.cpu`` (loaded through ``VERL_USE_EXTERNAL_MODULES`` at ``import verl``,
before verl's worker modules bind these names). tests/trainer/test_cpu_standins.py fails when a name changes in verl.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from verl.utils import distributed as verl_distributed
from verl.workers.engine.fsdp import transformer_impl as verl_fsdp_impl

_ORIGINAL_PG_INIT = verl_distributed.initialize_global_process_group_ray
_ORIGINAL_PG_INIT_TORCHRUN = verl_distributed.initialize_global_process_group
_ORIGINAL_OFFLOAD_POLICY = verl_fsdp_impl.CPUOffloadPolicy


def initialize_global_process_group_ray(timeout_second: Any = None, backend: str | None = None) -> None:
    """verl.utils.distributed.initialize_global_process_group_ray: its default backend string
    "cpu:gloo,{device}:{backend}" names the CPU twice on this platform, which torch refuses; plain gloo here."""
    if backend is None or backend.count("cpu:") > 1:
        backend = "gloo"
    _ORIGINAL_PG_INIT(timeout_second=timeout_second, backend=backend)


def initialize_global_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
    """verl.utils.distributed.initialize_global_process_group (torchrun entry points: verl.trainer.sft_trainer): its
    backend string "cpu:gloo,{device}:{backend}" names the CPU twice on this platform, which torch refuses; plain gloo
    here. Same return value: (local_rank, rank, world_size)."""
    import os
    from datetime import timedelta

    import torch.distributed

    torch.distributed.init_process_group(
        backend="gloo", timeout=timedelta(seconds=timeout_second), init_method=os.environ.get("DIST_INIT_METHOD")
    )
    return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def cpu_offload_policy(pin_memory: bool = True) -> Any:
    """verl.workers.engine.fsdp.transformer_impl's CPUOffloadPolicy(pin_memory=True) for the reference model:
    pinning host memory needs an accelerator; unpinned here."""
    return _ORIGINAL_OFFLOAD_POLICY(pin_memory=False)


def apply() -> None:
    """Install the stand-ins (idempotent)."""
    verl_distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    verl_distributed.initialize_global_process_group = initialize_global_process_group
    verl_fsdp_impl.CPUOffloadPolicy = functools.wraps(_ORIGINAL_OFFLOAD_POLICY)(cpu_offload_policy)
    engine_workers = sys.modules.get("verl.workers.engine_workers")
    if engine_workers is not None:  # it binds the name at import: replace it there too
        engine_workers.initialize_global_process_group_ray = initialize_global_process_group_ray

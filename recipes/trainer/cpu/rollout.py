"""A rollout backend for the CPU: transformers generates, verl's naive checkpoint engine brings the weights.

Registered as ``actor_rollout_ref.rollout.name=hf_cpu`` in verl's two rollout registries
(verl/workers/rollout/replica.py ``RolloutReplicaRegistry`` and verl/workers/rollout/base.py ``_ROLLOUT_REGISTRY``),
the places vLLM, SGLang and TensorRT-LLM register theirs. It has the same three parts as verl's vLLM backend:

- ``HFRolloutReplica`` (verl's ``RolloutReplica``): starts one ``HFGenerationServer`` actor per replica, on the node
  of the replica's first training worker, as vLLMReplica does;
- ``HFGenerationServer``: token in, tokens and their log-probs out (verl's ``TokenOutput``), the ``generate`` call
  verl's ``LLMServerClient`` makes on a vLLM server; concurrent requests with the same sampling settings are
  generated as one left-padded batch;
- ``HFServerAdapter`` (verl's ``BaseRollout``): lives in the training worker. The v1 sync trainer syncs weights
  with the "naive" checkpoint engine: ``ActorRolloutRefWorker.update_weights`` hands it the actor's full tensors,
  and it sends them to its server through Ray (no NCCL, no CUDA IPC).

LoRA runs sync as they do into vLLM on a GPU node (verl's default ``model.lora.merge=false``): the base weights once,
then the adapter tensors with its LoraConfig every step; the server applies the adapter unmerged with peft, as vLLM
applies a LoRA request. ``lora.merge=true`` (merged full weights) works too. The server rounds every weight through
``rollout.dtype`` (bfloat16, vLLM's default) and computes in float32, so a checkpoint exported by verl's merger (in
bfloat16) generates with transformers exactly what the trainer's validation generated (recipes/evaluation/hf_generate.py
holds
the generation code both use).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from recipes.evaluation.hf_generate import Decoding, generate_batch, load_causal_lm, round_weights, stop_and_pad_ids
from recipes.trainer.cpu import ROLLOUT_NAME, WEIGHTS_LOG_ENV

logger = logging.getLogger(__name__)

# How long the server waits for more concurrent requests before it generates a batch (seconds).
BATCH_WINDOW_S = 0.05
MAX_BATCH = 64


def server_name(replica_rank: int) -> str:
    """The Ray actor name of a replica's generation server (the adapter in the worker looks it up)."""
    return f"hf_cpu_server_{replica_rank}"


@dataclass(frozen=True)
class SamplingKey:
    """The sampling settings one generate() batch shares."""

    temperature: float
    top_p: float
    top_k: int
    max_tokens: int


@dataclass
class _Request:
    prompt_ids: list[int]
    key: SamplingKey
    want_logprobs: bool
    done: asyncio.Future = field(repr=False)


def sampling_key(
    sampling_params: dict[str, Any], prompt_len: int, prompt_length: int, response_length: int, max_model_len: int
) -> SamplingKey:
    """verl's sampling_params as one batch key; max_tokens as vLLMHttpServer.generate computes its default."""
    if "max_tokens" in sampling_params:
        max_tokens = int(sampling_params["max_tokens"])
    elif "max_new_tokens" in sampling_params:
        max_tokens = int(sampling_params["max_new_tokens"])
    else:
        max_tokens = min(response_length, prompt_length + response_length - prompt_len)
    max_tokens = max(1, min(max_tokens, max_model_len - prompt_len))
    top_k = int(sampling_params.get("top_k", -1) or -1)
    return SamplingKey(
        temperature=float(sampling_params.get("temperature", 1.0)),
        top_p=float(sampling_params.get("top_p", 1.0)),
        top_k=top_k if top_k > 0 else -1,
        max_tokens=max_tokens,
    )


class HFGenerationServer:
    """One replica's generator: a transformers causal LM on the CPU, weights pushed by the training worker."""

    def __init__(
        self,
        model_path: str,
        prompt_length: int,
        response_length: int,
        max_model_len: int | None,
        seed: int,
        replica_rank: int,
        weight_dtype: str = "bfloat16",
    ) -> None:
        torch.set_num_threads(1)  # many processes share a few cores in a rehearsal
        self.model = load_causal_lm(model_path)
        # The rollout engine holds its weights in rollout.dtype (vLLM: bfloat16) and verl's model merger exports in
        # bfloat16: weights are rounded through it on every load (computed in float32), so the exported checkpoint
        # generates what this server generated.
        self.weight_dtype = getattr(torch, weight_dtype)
        round_weights(self.model, self.weight_dtype)
        self.eos_ids, self.pad_id = stop_and_pad_ids(self.model, model_path)
        self.peft_config: Any = None  # the LoRA config of the adapter the actor syncs (None: merged / full weights)
        self.prompt_length, self.response_length = prompt_length, response_length
        self.max_model_len = max_model_len or int(getattr(self.model.config, "max_position_embeddings", 4096))
        torch.manual_seed(seed + replica_rank)  # generation runs under one lock: the global generator is ours
        self.global_steps: int | None = None
        self.weight_version = 0
        self._pending: list[_Request] = []
        self._batcher: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Any = None,
        video_data: Any = None,
        **kwargs: Any,
    ) -> TokenOutput:
        """verl's token-in-token-out call (vLLMHttpServer.generate's signature)."""
        if image_data is not None or video_data is not None:
            raise ValueError("the CPU rollout generates text only")
        prompt_ids = [int(t) for t in prompt_ids]
        key = sampling_key(
            sampling_params, len(prompt_ids), self.prompt_length, self.response_length, self.max_model_len
        )
        request = _Request(
            prompt_ids, key, bool(sampling_params.get("logprobs")), asyncio.get_running_loop().create_future()
        )
        self._pending.append(request)
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._run_batches())
        return await request.done

    async def _run_batches(self) -> None:
        """Collect concurrent requests for a moment, then generate them batch by batch (one key per batch)."""
        await asyncio.sleep(BATCH_WINDOW_S)
        while self._pending:
            key = self._pending[0].key
            batch = [r for r in self._pending if r.key == key][:MAX_BATCH]
            self._pending = [r for r in self._pending if all(r is not b for b in batch)]
            try:
                async with self._lock:
                    outputs = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as exc:  # every waiting caller sees the failure
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                continue
            for request, output in zip(batch, outputs, strict=True):
                if not request.done.done():
                    request.done.set_result(output)

    def _generate_batch(self, batch: list[_Request]) -> list[TokenOutput]:
        """One left-padded batch through recipes/evaluation/hf_generate.py (the code evaluation's transformers backend
        runs)."""
        key = batch[0].key
        decoding = Decoding(temperature=key.temperature, top_p=key.top_p, top_k=key.top_k, max_tokens=key.max_tokens)
        completions = generate_batch(
            self.model,
            [r.prompt_ids for r in batch],
            decoding,
            self.eos_ids,
            self.pad_id,
            want_logprobs=any(r.want_logprobs for r in batch),
        )
        return [
            TokenOutput(
                token_ids=c.token_ids,
                log_probs=c.log_probs if r.want_logprobs else None,
                stop_reason="completed",
                extra_fields={"global_steps": self.global_steps},
            )
            for r, c in zip(batch, completions, strict=True)
        ]

    async def load_weights(
        self,
        weights: dict[str, torch.Tensor],
        global_steps: int | None,
        peft_config: Any = None,
        base_sync_done: bool = True,
    ) -> int:
        """Take the actor's tensors (HF names), rounded through the rollout dtype. Full or LoRA-merged weights
        (peft_config None) and a LoRA run's base weights (base_sync_done False: verl names the wrapped layers
        ``….base_layer.weight``) go into the model; a LoRA run's adapter (base_sync_done True) replaces the adapter
        on it, applied unmerged with peft as vLLM applies a LoRA request."""
        weights = {name: tensor.to(self.weight_dtype).to(torch.float32) for name, tensor in weights.items()}
        async with self._lock:
            if peft_config is not None and base_sync_done:
                self._load_adapter(weights, peft_config)
            else:
                if peft_config is not None and self.peft_config is None:  # no LoRA layers here yet: plain names
                    weights = {name.replace(".base_layer.", "."): tensor for name, tensor in weights.items()}
                base = self.model.get_base_model() if self.peft_config is not None else self.model
                state = base.state_dict()
                unknown = sorted(set(weights) - set(state))
                if unknown:
                    raise KeyError(f"the actor sent weights this model does not have: {unknown[:5]}")
                for name, tensor in weights.items():
                    state[name].copy_(tensor.to(state[name].dtype))
            self.global_steps = global_steps
            self.weight_version += 1
        return self.weight_version

    def _load_adapter(self, weights: dict[str, torch.Tensor], peft_config: Any) -> None:
        """Wrap the model with the adapter's LoRA layers once, then set every adapter tensor (all must match)."""
        from peft import PeftConfig, get_peft_model, set_peft_model_state_dict

        if self.peft_config is None:
            # verl sends LoraConfig.to_dict() (transformer_impl.py get_per_tensor_param); a config object works too
            if isinstance(peft_config, dict):
                config = PeftConfig.from_peft_type(**peft_config)
            else:
                config = copy.copy(peft_config)
            config.inference_mode = True
            self.model = get_peft_model(self.model, config)
            self.model.eval()
            self.peft_config = config
        result = set_peft_model_state_dict(self.model, weights)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k]
        if unexpected or missing:
            raise KeyError(
                f"the actor's adapter does not fit this model: unexpected {unexpected[:5]}, missing {missing[:5]}"
            )

    async def checksum(self) -> float:
        """weights_checksum of the model's state: equal to the checksum of the weights last loaded."""
        return weights_checksum(self.model.state_dict())

    # verl's RolloutReplica / CheckpointEngineManager call these on every server; nothing to free on the CPU.
    async def wake_up(self, tags: list[str] | None = None) -> None:
        """Nothing was released."""

    async def sleep(self) -> None:
        """Weights stay in memory (they are small)."""

    async def clear_kv_cache(self) -> None:
        """No KV cache is kept between requests."""

    async def release_kv_cache(self) -> None:
        """No KV cache."""

    async def resume_kv_cache(self) -> None:
        """No KV cache."""

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        """Requests are short: nothing to abort."""
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        """Generation was never paused."""

    async def start_profile(self, **kwargs: Any) -> None:
        """No profiler."""

    async def stop_profile(self) -> None:
        """No profiler."""


class HFRolloutReplica(RolloutReplica):
    """verl's RolloutReplica for the CPU backend: one generation server per replica (hybrid mode only)."""

    def rollout_worker_use_gpu(self) -> bool:
        """The server holds no GPU."""
        return False

    async def launch_servers(self) -> None:
        """One HFGenerationServer on the node of the replica's first worker (as vLLMReplica places its servers)."""
        if not self.workers:
            raise RuntimeError("the CPU rollout runs only colocated with the training workers (hybrid engine)")
        node_id = await self.workers[0].__ray_call__.remote(lambda worker: ray.get_runtime_context().get_node_id())
        config = self.config
        server = (
            ray.remote(HFGenerationServer)
            .options(
                name=server_name(self.replica_rank),
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            )
            .remote(
                model_path=str(self.model_config.get("local_path") or self.model_config.get("path")),
                prompt_length=config.prompt_length,
                response_length=config.response_length,
                max_model_len=config.max_model_len,
                seed=config.seed if getattr(config, "seed", None) is not None else 0,
                replica_rank=self.replica_rank,
                weight_dtype=str(getattr(config, "dtype", None) or "bfloat16"),
            )
        )
        await server.checksum.remote()  # constructed (model loaded) before the trainer goes on
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"{ROLLOUT_NAME}-replica-{self.replica_rank}"


class HFServerAdapter(BaseRollout):
    """The rollout object inside a training worker: forwards the actor's weights to its replica's server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        world = self.config.tensor_model_parallel_size * self.config.data_parallel_size
        world *= self.config.pipeline_model_parallel_size
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self._has_server = rank % world == 0
        self._server: Any = None

    def _server_handle(self) -> Any:
        if self._server is None:
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        """Nothing was released."""

    async def release(self) -> None:
        """Nothing to release."""

    async def update_weights(
        self,
        weights: Iterable[tuple[str, torch.Tensor]] | AsyncIterator,
        global_steps: int | None = None,
        peft_config: Any = None,
        base_sync_done: bool = True,
        **kwargs: Any,
    ) -> None:
        """Collect the full tensors (every rank iterates: FSDP gathers them collectively) and send them once.

        With LoRA unmerged (verl's default, model.lora.merge=false) the worker calls this twice on the first sync,
        the base weights (base_sync_done False) then the adapter, and the adapter alone afterwards: the calls vLLM's
        rollout gets on a GPU node. The weights log records full weights and adapters (what a checkpoint holds)."""
        start = time.monotonic()
        collected: dict[str, torch.Tensor] = {}
        if hasattr(weights, "__aiter__"):
            async for name, tensor in weights:  # type: ignore[union-attr]
                collected[name] = tensor.detach().to("cpu", copy=True)
        else:
            for name, tensor in weights:  # type: ignore[union-attr]
                collected[name] = tensor.detach().to("cpu", copy=True)
        if self._has_server:
            await self._server_handle().load_weights.remote(collected, global_steps, peft_config, base_sync_done)
            what = "full" if peft_config is None else "LoRA adapter" if base_sync_done else "LoRA base"
            logger.info("CPU rollout: %d %s tensors synced in %.2f s", len(collected), what, time.monotonic() - start)
            if peft_config is None or base_sync_done:
                log_weights(collected, global_steps, self.replica_rank)


def weights_checksum(weights: dict[str, torch.Tensor]) -> float:
    """Sum of every element in float64: the same weights give the same number (a resume must reproduce it)."""
    return float(sum(t.detach().double().sum().item() for t in weights.values()))


def log_weights(weights: dict[str, torch.Tensor], global_steps: int | None, replica_rank: int) -> None:
    """Append {"replica", "global_steps", "checksum"} to $LEGAL_CPU_WEIGHTS_LOG (the rehearsal's resume check)."""
    path = os.environ.get(WEIGHTS_LOG_ENV)
    if not path:
        return
    record = {
        "replica": replica_rank,
        "global_steps": global_steps,
        "checksum": weights_checksum(weights),
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")

"""Build verl DataProtos of responses the way verl's reward loop hands them to a reward manager."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from verl import DataProto


def make_reward_dataproto(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    data_sources: Sequence[str],
    ground_truths: Sequence[str],
    extra_infos: Sequence[dict] | None = None,
    prompt_length: int = 64,
    response_length: int = 256,
) -> DataProto:
    """Left-pad prompts, right-pad responses, and attach the non-tensor fields verl's reward loop reads."""
    n = len(responses)
    if not (len(prompts) == len(data_sources) == len(ground_truths) == n):
        raise ValueError("prompts, responses, data_sources and ground_truths must have the same length")
    pad_id = tokenizer.pad_token_id
    prompt_ids = torch.full((n, prompt_length), pad_id, dtype=torch.long)
    response_ids = torch.full((n, response_length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, prompt_length + response_length), dtype=torch.long)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        p = tokenizer.encode(prompt, add_special_tokens=False)[-prompt_length:]
        r = tokenizer.encode(response, add_special_tokens=False)[:response_length]
        if p:
            prompt_ids[i, prompt_length - len(p) :] = torch.tensor(p)
            attention_mask[i, prompt_length - len(p) : prompt_length] = 1
        if r:
            response_ids[i, : len(r)] = torch.tensor(r)
            attention_mask[i, prompt_length : prompt_length + len(r)] = 1
    position_ids = torch.clamp(torch.cumsum(attention_mask, dim=1) - 1, min=0)
    extra = list(extra_infos) if extra_infos is not None else [{"index": i} for i in range(n)]
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": attention_mask,
            "position_ids": position_ids,
        },
        non_tensors={
            "data_source": np.array(list(data_sources), dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": g} for g in ground_truths], dtype=object),
            "extra_info": np.array([dict(e) for e in extra], dtype=object),
        },
    )

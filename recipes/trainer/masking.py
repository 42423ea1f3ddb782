"""Responses the judge could not judge teach nothing: they leave their GRPO group before the advantages.

The rewards mark such a response with ``judge_masked`` = 1 (``on_judge_error: mask``) and give it the placeholder
score 0. Before verl computes the advantages, each masked response gets a group of its own (its ``uid`` in
TransferQueue is made unique), so its group's baseline is computed over the judged responses only, and its own
advantage is exactly 0 (a group of one is centred at 0 by verl's GRPO, and its score is 0). The uids are put back
right after, so everything downstream (metrics, the rollout dump) sees the real groups.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

MASK_KEY = "judge_masked"
UNJUDGED_SUFFIX = "#unjudged-"


def is_masked(extra_fields: Any) -> bool:
    """Whether a sample's extra_fields carry judge_masked > 0 in their reward_extra_info."""
    extras = extra_fields.get("reward_extra_info") if isinstance(extra_fields, Mapping) else None
    try:
        return isinstance(extras, Mapping) and float(extras.get(MASK_KEY, 0.0) or 0.0) > 0.0
    except (TypeError, ValueError):
        return False


def masked_keys(keys: Sequence[str], extra_fields: Sequence[Any]) -> list[str]:
    """The TransferQueue keys of the masked samples."""
    return [key for key, fields in zip(keys, extra_fields, strict=True) if is_masked(fields)]


def own_group_uids(uids: Sequence[str], keys: Sequence[str]) -> list[str]:
    """A uid per masked sample that no other sample shares (its key makes it unique)."""
    return [f"{uid}{UNJUDGED_SUFFIX}{key}" for uid, key in zip(uids, keys, strict=True)]


@contextlib.contextmanager
def masked_out_of_groups(keys: Sequence[str], partition_id: str) -> Iterator[int]:
    """While active, the masked samples `keys` are groups of their own in TransferQueue; yields how many."""
    if not keys:
        yield 0
        return
    import transfer_queue as tq
    from tensordict import NonTensorStack, TensorDict

    keys = list(keys)
    uids = [str(u) for u in tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["uid"])["uid"]]

    def put(values: list[str]) -> None:
        fields = TensorDict({"uid": NonTensorStack(*values)}, batch_size=[len(values)])
        tq.kv_batch_put(keys=keys, partition_id=partition_id, fields=fields)

    put(own_group_uids(uids, keys))
    try:
        yield len(keys)
    finally:
        put(uids)

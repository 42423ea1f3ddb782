#!/usr/bin/env python
"""CPU of our reward code per response: compute_score in one process, on the benchmark's batch, no verl around it.

    python benchmarks/profile_reward.py [--prompts 128] [--n 16] [--mode hybrid] [--repeat 3] [--cprofile OUT.pstats]

Builds the same batch as benchmarks/reward_throughput.py (same functions, same seed), starts the loopback judge
(tests/helpers/judge_server.py) with latency 0 and no concurrency limit, and awaits compute_score for every
response at once on one event loop, as a reward worker does. Each repeat uses a fresh event loop, so a fresh judge
client with an empty cache (like a new training step); module-level caches of answer texts stay warm between
repeats, so the first repeat is the honest one and the later ones show what those caches save. The figure is
the CPU time of this thread only (time.thread_time): the judge server runs in another thread and is not counted.
verl's own per-response work (DataProto slicing, decode, result dicts) is not included: see reward_throughput.py.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reward_throughput as bench  # noqa: E402 - the sys.path entries are set up by reward_throughput itself


async def _score_all(compute_score: Any, calls: list[tuple[str, str, str, dict[str, Any]]], kwargs: dict) -> list:
    tasks = [
        asyncio.ensure_future(
            compute_score(data_source=ds, solution_str=resp, ground_truth=gold, extra_info=extra, **kwargs)
        )
        for ds, resp, gold, extra in calls
    ]
    return await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    """Time (and optionally cProfile) compute_score over the benchmark batch; print ms of CPU per response."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/profile_reward.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--prompts", type=int, default=128, help="prompts in the batch (as reward_throughput.py)")
    p.add_argument("--n", type=int, default=16, help="responses per prompt (GRPO group size)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch (same batch as reward_throughput.py)")
    p.add_argument(
        "--mode", choices=("hybrid", "judge", "rules"), default="hybrid", help="reward mode passed to compute_score"
    )
    p.add_argument("--repeat", type=int, default=3, help="timed repeats, each on a fresh event loop and judge client")
    p.add_argument("--cprofile", type=Path, default=None, help="cProfile the first repeat into this .pstats file")
    args = p.parse_args(argv)

    from helpers.judge_server import ScriptedJudgeServer

    from judge.client import close_judge_clients
    from rewards.legal import compute_score

    with tempfile.TemporaryDirectory(prefix="reward_prof_") as tmp:
        items = bench.load_items(None, args.prompts, args.seed, Path(tmp))
    samples = bench.build_groups(items, args.n, args.seed)
    calls = []
    for s in samples:
        item = items[s.item]
        # What verl's run_single passes: extra_info from the row, plus num_turns and rollout_reward_scores.
        extra = {**item.extra_info, "num_turns": None, "rollout_reward_scores": {}}
        calls.append((item.data_source, s.response, item.gold, extra))
    with ScriptedJudgeServer(reply=bench.judge_reply, latency_s=0.0, max_concurrency=10_000) as server:
        kwargs = bench.reward_kwargs_for(
            args.mode,
            argparse.Namespace(on_judge_error="rules", client_concurrency=None, max_retries=None),
            server.base_url,
            server.model,
        )

        async def warm() -> None:  # imports, prompt YAML, the client's first connections: not per-response cost
            other = bench.load_items(None, 8, args.seed + 1, Path(tempfile.mkdtemp(prefix="reward_prof_")))
            warm_samples = bench.build_groups(other[4:], 4, args.seed + 1)
            await _score_all(
                compute_score,
                [
                    (
                        other[4 + s.item].data_source,
                        s.response,
                        other[4 + s.item].gold,
                        dict(other[4 + s.item].extra_info),
                    )
                    for s in warm_samples
                ],
                kwargs,
            )
            await close_judge_clients()

        asyncio.run(warm())
        for rep in range(args.repeat):
            server.reset()
            profiler = cProfile.Profile() if args.cprofile and rep == 0 else None

            async def one(profiler: cProfile.Profile | None = profiler) -> tuple[float, float, list]:
                cpu0, t0 = time.thread_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                out = await _score_all(compute_score, calls, kwargs)
                if profiler:
                    profiler.disable()
                cpu, wall = time.thread_time() - cpu0, time.perf_counter() - t0
                await close_judge_clients()
                return cpu, wall, out

            cpu, wall, out = asyncio.run(one())
            judged = sum(1 for o in out if o["judge_called"])
            print(
                f"repeat {rep}: {len(out)} responses, {judged} asked the judge, {len(server.requests)} requests; "
                f"CPU {cpu:.3f} s = {1000 * cpu / len(out):.3f} ms/response; wall {wall:.3f} s"
            )
            if profiler:
                profiler.dump_stats(str(args.cprofile))
    return 0


if __name__ == "__main__":
    sys.exit(main())

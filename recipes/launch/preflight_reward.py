"""Preflight check of the reward: loaded by path the way verl loads it, fed the recipe's gold response for one row
per data_source (``Recipe.gold_response``), scored with the judge when it answers, else offline
(``Recipe.offline_reward_kwargs``)."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from recipes.launch.checks import FAIL, PASS, WARN, CheckResult, one_line, reward_kwargs
from recipes.launch.commands import JudgeSpec, is_healthy, judge_urls
from recipes.recipe import Recipe

__all__ = ["JUDGE_PROBE_TIMEOUT_S", "check_reward", "no_judge_kwargs", "probe_judge"]

JUDGE_PROBE_TIMEOUT_S = 2.0
KWARGS_KEY = "reward.custom_reward_function.reward_kwargs"


def probe_judge(cfg: Any, environ: Mapping[str, str], timeout_s: float = JUDGE_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether the configured judge answers GET <base>/models within timeout_s; (answered, url)."""
    urls = judge_urls(cfg, environ)
    if not urls:
        return False, ""
    judge = JudgeSpec.from_config(cfg)
    api_key = environ.get(judge.api_key_env) if judge.api_key_env else None
    url = urls[0].rstrip("/")
    return is_healthy(f"{url}/models", timeout_s, api_key), url


def no_judge_kwargs(recipe: Recipe, kwargs: Mapping[str, Any]) -> str:
    """The reward kwargs that decide the judge is (not) called, as `key=value` (e.g. `mode=rules`)."""
    keys = [k for k, v in (recipe.offline_reward_kwargs or {}).items() if v is not None]
    return ", ".join(f"{k}={kwargs.get(k, '<default>')}" for k in keys) or "its reward_kwargs"


def check_reward(
    cfg: Any, recipe: Recipe, samples: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]
) -> list[CheckResult]:
    """Load the reward function by path like verl; score the recipe's gold response for one row per data_source."""
    from omegaconf import OmegaConf, open_dict
    from verl.trainer.ppo.reward import get_custom_reward_fn

    path = OmegaConf.select(cfg, "reward.custom_reward_function.path", default=None)
    if not path:
        return [
            CheckResult(
                "reward function",
                FAIL,
                "reward.custom_reward_function.path is not set (verl would use its default scorer) — set it to "
                f"{recipe.reward_path}",
            )
        ]
    kwargs = reward_kwargs(cfg)
    judge = JudgeSpec.from_config(cfg)
    out: list[CheckResult] = []
    score_cfg = copy.deepcopy(cfg)
    answered = False
    if recipe.uses_judge(kwargs):
        answered, url = (False, "") if judge.mode == "verl_pool" else probe_judge(cfg, environ)
        if answered:
            out.append(CheckResult("judge endpoint", PASS, f"{url} answered; samples scored with the judge"))
        else:
            offline = recipe.offline_reward_kwargs or {}
            how = ", ".join(f"{k}={v}" for k, v in offline.items() if v is not None) or "as configured"
            where = "served by verl at run time" if judge.mode == "verl_pool" else f"{url or 'no URL'} did not answer"
            start = "; start it with `bash scripts/serve_judge.sh`" if judge.mode != "verl_pool" else ""
            out.append(CheckResult("judge endpoint", WARN, f"judge {where} — samples scored offline ({how}){start}"))
            with open_dict(score_cfg):
                for key, value in offline.items():
                    OmegaConf.update(score_cfg, f"{KWARGS_KEY}.{key}", value, merge=False)
    else:
        out.append(CheckResult("judge endpoint", PASS, f"no judge needed ({no_judge_kwargs(recipe, kwargs)})"))
    scoring_kwargs = reward_kwargs(score_cfg)
    try:
        fn = get_custom_reward_fn(score_cfg)
    except Exception as exc:
        return [
            *out,
            CheckResult(
                "reward function",
                FAIL,
                f"cannot load {path}:{cfg.reward.custom_reward_function.name}: {one_line(exc)} — fix the path/name "
                "(relative paths resolve from the repo root)",
            ),
        ]
    if not samples:
        return [*out, CheckResult("reward function", WARN, f"{path} loads; no data rows to score")]
    key_sets: dict[str, tuple[str, ...]] = {}
    for source, sample in sorted(samples.items()):
        try:
            response = recipe.gold_response(source, sample["ground_truth"], sample["extra_info"], kwargs)
            result = _call(
                fn,
                data_source=source,
                solution_str=response,
                ground_truth=sample["ground_truth"],
                extra_info=sample["extra_info"],
            )
        except Exception as exc:
            out.append(
                CheckResult(
                    "reward function",
                    FAIL,
                    f"{path} raised on a {source} sample: {type(exc).__name__}: {one_line(exc)} — fix the reward "
                    "or its reward_kwargs",
                )
            )
            continue
        if isinstance(result, Mapping):
            if "score" not in result:
                out.append(CheckResult("reward function", FAIL, f"{path} returned a dict without 'score' for {source}"))
                continue
            key_sets[source] = tuple(sorted(result))
            judged = answered and bool(result.get("judge_called") or result.get("reasoning_called"))
            score = float(result["score"])
            message = f"{source}: gold answer scores {score:g}{recipe.best_note(source)}{' (judge)' if judged else ''}"
            try:
                best = recipe.best_score(source, scoring_kwargs)
            except ValueError:  # kwargs the reward took but the recipe cannot read: no best to compare with
                best = None
            out.append(_gold_score_check(recipe, best, score, judged, message))
        else:
            out.append(CheckResult("reward function", PASS, f"{source}: gold answer scores {float(result):g}"))
    if len(set(key_sets.values())) > 1:
        out.append(
            CheckResult(
                "reward function",
                FAIL,
                f"{path} returns different keys per task ({key_sets}) — verl needs the same keys every time",
            )
        )
    return out


def _gold_score_check(recipe: Recipe, best: float | None, score: float, judged: bool, message: str) -> CheckResult:
    """PASS when the gold response reaches the reward's best score; below it a FAIL offline, a WARN when judged."""
    if best is None or score >= best - 1e-9:
        return CheckResult("reward function", PASS, message)
    if judged:  # the judge graded the gold answer itself below full marks: its grades need an audit, not a code fix
        return CheckResult(
            "reward function",
            WARN,
            f"{message}, below the best {best:g}: the judge does not give the gold answer full marks — audit it "
            f'(`python -m recipes.{recipe.name}.audit_judge`, README "Judge audit")',
        )
    return CheckResult(
        "reward function",
        FAIL,
        f"{message}, below the best {best:g}: the reward cannot pay a perfect answer in full — check the reward's "
        "weights/reward_kwargs and the recipe's gold response",
    )


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    """Await one reward call, then close this loop's judge connections before asyncio.run closes the loop."""
    from judge.client import close_judge_clients

    try:
        return await awaitable
    finally:
        await close_judge_clients()

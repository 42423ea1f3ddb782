#!/usr/bin/env python
"""Reward-path throughput: rewards/legal.py driven by verl's reward loop against a loopback judge of limited capacity.

    python benchmarks/reward_throughput.py [--prompts 128] [--n 16] [--latency-ms 100] [--server-concurrency 64]
        [--mode hybrid] [--workers 8] [--fail-rate 0.0] [--naive-subset 64] [--seed 0] [--json OUT.json]

What runs (see benchmarks/README.md for what every number means):
1. A loopback OpenAI-compatible judge (tests/helpers/judge_server.py): every chat request takes --latency-ms, at
   most --server-concurrency are served at once, the rest queue; --fail-rate injects HTTP 503s.
2. A GRPO batch: --prompts items over the four tasks from the shipped sample (data.prepare into a temp dir), --n
   responses each, with rollout-like duplication (a group repeats 2–3 popular answers), malformed outputs and
   paraphrases the rules cannot decide. Deterministic for a --seed.
3. The real path: verl's RewardLoopWorker (NaiveRewardManager + get_custom_reward_fn, reward_kwargs from the
   config) in --workers processes; the batch is padded and chunked exactly like RewardLoopManager.compute_rm_score,
   each worker gathers run_single over its chunk. A warm-up pass on other prompts first warms the processes (as a
   second training step would find them); a rules-mode pass over the same batch after the measured one measures
   the non-judge overhead.
4. The naive baseline, measured in the same run: one synchronous OpenAI request per response, one at a time, no
   cache, no dedup (the original recipe), on --naive-subset responses, extrapolated linearly to the batch.

ideal_s = ceil(J / C) × L for J = unique (task, gold, prediction) pairs that needed the judge, C = server
concurrency, L = latency: the time a server of that capacity needs for the judge calls the batch requires.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import multiprocessing as mp
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = REPO_ROOT / "tests"
# The repo's packages (rewards, judge, recipes, data) and the shared test helpers (helpers.judge_server, ...).
# tests/ is appended, not prepended: it is not a package and only `helpers` is imported from it.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
if str(TESTS_DIR) not in sys.path:
    sys.path.append(str(TESTS_DIR))

logger = logging.getLogger("reward_throughput")

REWARD_FN_PATH = REPO_ROOT / "rewards" / "legal.py"
TASKS = ("charge", "article", "term", "verdict")
CONTRACT_KEYS = (
    "responses",
    "judge_calls",
    "unique_pairs_needing_judge",
    "wall_s",
    "ideal_s",
    "ratio_to_ideal",
    "cpu_bound_s",
    "ratio_to_limit",
    "naive_s",
    "speedup_vs_naive",
    "failures",
    "fallbacks",
)
CLIENT_COUNTERS = ("calls", "requests", "cache_hits", "dedup_hits", "failures", "retries", "structured_fallbacks")
# Modules the forkserver imports once, so forked workers start in well under a second instead of ~8 CPU-seconds
# each (torch + tensordict + ray) on a small box. Nothing here starts a thread or touches a judge client.
PRELOAD_MODULES = [
    "torch",
    "verl.protocol",
    "verl.experimental.reward_loop.reward_loop",
    "verl.trainer.ppo.reward",
    "openai",
]

# --------------------------------------------------------------------------------------------------- batch

# How a GRPO group of one prompt is made up, per task: share of responses per kind (sums to 1).
#   popular: one of the group's 2–3 repeated answers; variant: a one-off answer the rules can read;
#   paraphrase: wording the rules cannot decide (hybrid sends it to the judge); malformed: no complete answer
#   block (e.g. missing </answer>); repeated: two answer blocks (format wrong, the last answer still scored).
GROUP_MIX: dict[str, dict[str, float]] = {
    "charge": {"popular": 0.66, "variant": 0.12, "paraphrase": 0.14, "malformed": 0.06, "repeated": 0.02},
    "article": {"popular": 0.62, "variant": 0.18, "paraphrase": 0.10, "malformed": 0.07, "repeated": 0.03},
    "term": {"popular": 0.66, "variant": 0.18, "paraphrase": 0.04, "malformed": 0.08, "repeated": 0.04},
    "verdict": {"popular": 0.45, "variant": 0.35, "paraphrase": 0.05, "malformed": 0.10, "repeated": 0.05},
}
POPULAR_WEIGHTS = (0.60, 0.28, 0.12)  # the group's favourite answer, the runner-up, the third

# Wordings a model writes instead of a charge label (not in the label list: the rules cannot decide them).
CHARGE_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "盗窃罪": ("偷窃他人财物", "秘密窃取财物的犯罪", "扒窃", "theft"),
    "诈骗罪": ("骗取他人钱财", "以虚构事实的方法骗钱", "fraud"),
    "危险驾驶罪": ("醉酒驾驶机动车", "酒后开车", "drunk driving"),
    "故意伤害罪": ("打伤他人", "致人轻伤的犯罪", "assault"),
    "交通肇事罪": ("开车撞人致死", "交通事故逃逸", "traffic accident crime"),
    "抢劫罪": ("持刀抢钱", "暴力劫取他人财物", "robbery"),
    "故意杀人罪": ("蓄意致人死亡", "murder"),
}
GENERIC_CHARGE_PARAPHRASES = ("侵犯财产的犯罪", "妨害社会管理秩序类犯罪", "刑事犯罪", "违法行为，应予处罚", "a crime")
ARTICLE_PARAPHRASES = (
    "刑法关于{charge}的规定",
    "《中华人民共和国刑法》分则相关条款",
    "依照刑法关于自首的规定",
    "刑法总则",
)
TERM_PARAPHRASES = ("判处实刑", "从轻处罚", "应当判处较重的刑罚", "a few years")
VERDICT_PARAPHRASES = ("被告人构成犯罪，应依法判处刑罚。", "被告人有罪，判处相应刑罚并处罚金。", "判决被告人有罪。")
CONFUSABLE_CHARGES: dict[str, tuple[str, ...]] = {
    "盗窃罪": ("抢夺罪", "诈骗罪"),
    "抢劫罪": ("抢夺罪", "敲诈勒索罪"),
    "抢夺罪": ("抢劫罪", "盗窃罪"),
    "诈骗罪": ("合同诈骗罪", "盗窃罪"),
    "故意伤害罪": ("故意杀人罪", "寻衅滋事罪"),
    "故意杀人罪": ("故意伤害罪",),
    "交通肇事罪": ("危险驾驶罪",),
    "危险驾驶罪": ("交通肇事罪",),
    "寻衅滋事罪": ("聚众斗殴罪", "故意伤害罪"),
}
COMMON_EXTRA_ARTICLES = (67, 72, 52, 64, 25, 68)  # 自首, 缓刑, 罚金, 没收, 共同犯罪, 立功
THINK_TEMPLATES = (
    "根据案件事实，{clause}。",
    "被告人的行为符合相关犯罪的构成要件，{clause}。",
    "本案的关键在于：{clause}。",
    "考虑到{clause}，应当依法从轻或从重处罚。",
    "First, the facts say: {clause}. So the key question is the legal qualification.",
    "Let me think. {clause}. The defendant acted intentionally.",
)
_CLAUSE_SPLIT = re.compile(r"[，。；！？,;]")


@dataclass(frozen=True)
class Item:
    """One prompt of the batch (a parquet row)."""

    task: str
    data_source: str
    prompt: str
    gold: str
    extra_info: dict[str, Any]


@dataclass(frozen=True)
class Sample:
    """One response: the text the policy wrote and the answer it holds (None without a complete answer block)."""

    item: int
    kind: str
    response: str
    answer: str | None


def _term_from_extra(extra: dict[str, Any]) -> Any:
    """The gold Term from the parquet extra_info (data.domains.legal.terms.Term)."""
    from data.domains.legal.terms import Term

    kind = str(extra.get("term_kind") or "fixed")
    months = int(extra.get("term_months") or 0)
    if kind == "fixed":
        return Term("fixed", max(months, 1), "有期徒刑")
    return Term(kind)


def _defendant(verdict: str) -> str:
    """The defendant named by a canonical verdict ("被告人张某犯…" → "张某"), else "某"."""
    m = re.match(r"被告人(.+?)犯", verdict)
    return m.group(1) if m else "某"


class AnswerBook:
    """Answer candidates for one item: the group's popular answers, one-off variants, paraphrases."""

    def __init__(self, item: Item, charge_pool: list[str], rng: random.Random) -> None:
        """Build the popular answers for the item's task (the first one is the gold, as a well-trained policy)."""
        self.item, self.pool, self.rng = item, charge_pool, rng
        extra = item.extra_info
        self.charges = [str(c) for c in (extra.get("charges") or [])] or ["盗窃罪"]
        self.articles = [int(a) for a in (extra.get("articles") or [])] or [264]
        self.term = _term_from_extra(extra)
        self.fine = int(extra.get("fine") or 0)
        self.verdict = str(extra.get("verdict") or item.gold)
        self.popular = getattr(self, f"_popular_{item.task}")()

    # --- helpers
    def _other_charge(self) -> str:
        first = self.charges[0]
        near = CONFUSABLE_CHARGES.get(first)
        if near and self.rng.random() < 0.7:
            return self.rng.choice(near)
        others = [c for c in self.pool if c not in self.charges] or ["抢夺罪"]
        return self.rng.choice(others)

    def _term_shift(self, months: int) -> Any:
        from data.domains.legal.terms import Term

        if self.term.kind != "fixed":
            return Term("fixed", 180, "有期徒刑") if self.term.kind != "none" else Term("fixed", 6, "拘役")
        return Term("fixed", max(1, self.term.months + months), self.term.penalty or "有期徒刑")

    def _verdict_with(self, charges: list[str] | None = None, term: Any = None, fine: int | None = -1) -> str:
        from data.domains.legal.verdict import build_verdict

        fine_value = self.fine if fine == -1 else fine
        return build_verdict(_defendant(self.verdict), charges or self.charges, term or self.term, fine_value)

    # --- popular answers (2–3 per group)
    def _popular_charge(self) -> list[str]:
        gold = self.item.gold
        return [gold, self._other_charge(), f"{gold}、{self._other_charge()}"]

    def _popular_article(self) -> list[str]:
        import cn2an

        gold = self.item.gold
        wrong = f"第{self.articles[0] + self.rng.choice((-2, -1, 1, 2))}条"
        chinese = "、".join(f"第{cn2an.an2cn(a)}条" for a in self.articles)
        return [gold, wrong, chinese]

    def _popular_term(self) -> list[str]:
        from data.domains.legal.terms import format_term

        step = 2 if self.term.kind == "fixed" and self.term.months < 12 else 6
        return [self.item.gold, format_term(self._term_shift(step)), format_term(self._term_shift(-step))]

    def _popular_verdict(self) -> list[str]:
        step = 2 if self.term.kind == "fixed" and self.term.months < 12 else 6
        return [self.item.gold, self._verdict_with(term=self._term_shift(step)), self._verdict_with(fine=1000)]

    # --- one-off answers the rules can read
    def variant(self) -> str:
        """A rarely repeated answer for the item's task."""
        r, task = self.rng, self.item.task
        if task == "charge":
            choices = [self._other_charge(), f"被告人犯{self.charges[0]}", "、".join(reversed(self.charges))]
            return r.choice(choices)
        if task == "article":
            extra = r.choice(COMMON_EXTRA_ARTICLES)
            return r.choice(
                [
                    "、".join(f"第{a}条" for a in [*self.articles, extra]),
                    f"第{r.randint(100, 400)}条",
                    f"《刑法》第{self.articles[0]}条",
                ]
            )
        if task == "term":
            from data.domains.legal.terms import format_term

            shifted = self._term_shift(r.choice((-12, -4, -3, -1, 1, 3, 4, 12)))
            text = format_term(shifted)
            return text + r.choice(("", "，缓刑一年", "，缓刑二年")) if r.random() < 0.5 else text
        shift = r.choice((-6, -3, -1, 1, 3, 6))
        return r.choice(
            [
                self._verdict_with(term=self._term_shift(shift)),
                self._verdict_with(charges=[self._other_charge()]),
                self._verdict_with(fine=r.choice((0, 2000, 5000, 10000))),
                self._verdict_with(term=self._term_shift(shift), fine=r.choice((0, 3000))),
            ]
        )

    def paraphrase(self) -> str:
        """Wording the rules cannot decide."""
        r, task = self.rng, self.item.task
        if task == "charge":
            return r.choice(CHARGE_PARAPHRASES.get(self.charges[0], GENERIC_CHARGE_PARAPHRASES))
        if task == "article":
            return r.choice(ARTICLE_PARAPHRASES).format(charge=self.charges[0])
        if task == "term":
            return r.choice(TERM_PARAPHRASES)
        return r.choice(VERDICT_PARAPHRASES)


def _facts_of(prompt: str) -> list[str]:
    """Clauses of the case facts inside a prompt (for varied thinking text)."""
    facts = prompt.split("案件事实：", 1)[-1]
    clauses = [c.strip() for c in _CLAUSE_SPLIT.split(facts) if 4 <= len(c.strip()) <= 60]
    return [c for c in clauses if "<" not in c and ">" not in c] or ["被告人实施了犯罪行为"]


def _thinking(rng: random.Random, clauses: list[str]) -> str:
    """Thinking text that differs between responses even when their answers are identical (as in rollouts)."""
    k = rng.randint(1, 5)
    return "".join(rng.choice(THINK_TEMPLATES).format(clause=rng.choice(clauses)) for _ in range(k))


def build_groups(items: list[Item], n: int, seed: int) -> list[Sample]:
    """n responses per item, deterministic for a seed (each item draws from its own generator)."""
    pool = sorted({c for it in items for c in (it.extra_info.get("charges") or [])})
    samples: list[Sample] = []
    for idx, item in enumerate(items):
        rng = random.Random(seed * 1_000_003 + idx)
        book = AnswerBook(item, pool, rng)
        clauses = _facts_of(item.prompt)
        mix = GROUP_MIX[item.task]
        kinds = rng.choices(list(mix), weights=list(mix.values()), k=n)
        for kind in kinds:
            thinking = _thinking(rng, clauses)
            if kind == "popular":
                answer = rng.choices(book.popular, weights=POPULAR_WEIGHTS[: len(book.popular)])[0]
            elif kind == "paraphrase":
                answer = book.paraphrase()
            else:
                answer = book.variant() if kind in ("variant", "malformed") else rng.choice(book.popular)
            if kind == "malformed":
                # Missing </answer> (the most common early format failure), or no answer block at all.
                cut = rng.random() < 0.7
                response = f"{thinking}</think>\n<answer>{answer}" if cut else f"{thinking} 所以答案是{answer}"
                samples.append(Sample(idx, kind, response, None))
            elif kind == "repeated":
                response = f"{thinking}</think>\n<answer>{answer}</answer>\n<answer>{answer}</answer>"
                samples.append(Sample(idx, kind, response, answer))
            else:
                samples.append(Sample(idx, kind, f"{thinking}</think>\n<answer>{answer}</answer>", answer))
    return samples


def load_items(data_path: Path | None, prompts: int, seed: int, workdir: Path) -> list[Item]:
    """`prompts` parquet rows spread evenly over the tasks (round-robin), shuffled by seed, reused when exhausted."""
    import pyarrow.parquet as pq

    if data_path is None:
        from data.prepare import PrepareConfig, prepare

        out = workdir / "data"
        sample = REPO_ROOT / "data" / "samples" / "cail2018_sample.jsonl"
        prepare(PrepareConfig(source="cail2018", inputs=(str(sample),), output=str(out), seed=seed))
        files = [out / "train.parquet", out / "test.parquet"]
    else:
        files = [data_path]
    rows: list[dict[str, Any]] = []
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"{f}: parquet file not found (give --data a file written by data.prepare)")
        rows.extend(pq.read_table(f).to_pylist())
    by_task: dict[str, list[dict[str, Any]]] = {t: [] for t in TASKS}
    for i, row in enumerate(rows):
        source = str(row.get("data_source", ""))
        task = source.partition("/")[2]
        if task not in by_task:
            raise ValueError(f"row {i}: data_source {source!r} is not legal/<{'|'.join(TASKS)}>")
        by_task[task].append(row)
    rng = random.Random(seed)
    for task_rows in by_task.values():
        rng.shuffle(task_rows)
    tasks = [t for t in TASKS if by_task[t]]
    if not tasks:
        raise ValueError(f"no rows in {[str(f) for f in files]}")
    items = []
    for k in range(prompts):
        task = tasks[k % len(tasks)]
        row = by_task[task][(k // len(tasks)) % len(by_task[task])]
        prompt = row["prompt"]
        text = "\n".join(str(m.get("content", "")) for m in prompt) if isinstance(prompt, list) else str(prompt)
        items.append(
            Item(task, row["data_source"], text, str(row["reward_model"]["ground_truth"]), dict(row["extra_info"]))
        )
    return items


# --------------------------------------------------------------------------------------------------- tokenizer

FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def build_tokenizer(out_dir: Path) -> Any:
    """The tiny local tokenizer (tests/helpers/tokenizer.py), with the format tags kept when decoding.

    verl decodes responses with skip_special_tokens=True. Real policy tokenizers (Qwen2.5) have no special
    <think>/<answer> tokens, so the tags reach compute_score; a tokenizer that marks them special would strip them
    and every response would fail the format check. Mark them as normal added tokens when needed.
    """
    from helpers.tokenizer import build_tiny_tokenizer
    from verl.utils import hf_tokenizer

    build_tiny_tokenizer(out_dir)
    probe = "x</think>\n<answer>y</answer>"
    tok = hf_tokenizer(str(out_dir))
    if tok.decode(tok.encode(probe, add_special_tokens=False), skip_special_tokens=True) != probe:
        path = out_dir / "tokenizer.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        for token in data.get("added_tokens", []):
            if token.get("content") in FORMAT_TAGS:
                token["special"] = False
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tok = hf_tokenizer(str(out_dir))
        got = tok.decode(tok.encode(probe, add_special_tokens=False), skip_special_tokens=True)
        if got != probe:
            raise RuntimeError(f"tokenizer in {out_dir} still strips the format tags when decoding: {got!r}")
    return tok


# --------------------------------------------------------------------------------------------------- judge server


def judge_reply(body: dict[str, Any]) -> str:
    """What the scripted judge answers: a grade from the overlap of gold and prediction, or a term error line."""
    user = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
    gold_m = re.search(r"【标准答案】\s*(.*?)\s*【", user, re.S)
    pred_m = re.search(r"<<<预测开始>>>\s*(.*?)\s*<<<预测结束>>>", user, re.S)
    gold = gold_m.group(1) if gold_m else ""
    pred = pred_m.group(1) if pred_m else ""
    if "误差" in user:
        return "误差：0个月" if pred == gold else f"误差：{(len(pred) * 7 + len(gold)) % 24 + 1}个月"
    if pred == gold:
        return "2"
    overlap = len(set(pred) & set(gold)) / max(1, len(set(gold)))
    return "1" if overlap >= 0.5 else "0"


def request_key(body: dict[str, Any] | None) -> str:
    """Identity of a judge question as sent (model + messages)."""
    body = body or {}
    return json.dumps([body.get("model"), body.get("messages")], ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------------------------------- verl config


def build_config(tokenizer_dir: Path, reward_fn_path: str, reward_kwargs: dict[str, Any], num_workers: int) -> Any:
    """verl's ppo_trainer config with our reward function, composed by Hydra the way main_ppo composes it."""
    import verl
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    overrides = [
        f"actor_rollout_ref.model.path={tokenizer_dir}",
        f"reward.custom_reward_function.path={reward_fn_path}",
        "reward.custom_reward_function.name=compute_score",
        "reward.reward_manager.name=naive",
        f"reward.num_workers={num_workers}",
    ]
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)
    with open_dict(cfg):
        cfg.reward.custom_reward_function.reward_kwargs = dict(reward_kwargs)
    return cfg


# --------------------------------------------------------------------------------------------------- workers


def describe_error(exc: BaseException) -> str:
    """The exception and its causes on one line, innermost last, with where the innermost one was raised."""
    parts, seen, cur = [], set(), exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {cur}")
        last = cur
        cur = cur.__cause__ or cur.__context__
    tb = last.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" (at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})" if tb is not None else ""
    return " <- ".join(parts) + where


def check_reward_fn(path: str) -> None:
    """Load the reward function the way verl does (load_extern_object); fail early with the root cause."""
    from verl.utils.import_utils import load_extern_object

    try:
        load_extern_object(module_path=path, object_name="compute_score")
    except Exception as exc:
        raise RuntimeError(
            f"verl cannot load compute_score from {path}: {describe_error(exc)}. This is how training loads "
            f"reward.custom_reward_function.path; --reward-fn-path pkg://rewards.legal imports it as a package "
            f"module instead"
        ) from exc


def _worker_main(conn: Any, worker_id: int, configs: dict[str, Any], log_level: int) -> None:
    """One reward-loop worker process: a RewardLoopWorker per mode, then score the batches it is sent."""
    logging.basicConfig(level=log_level, format=f"[worker {worker_id}] %(levelname)s %(name)s: %(message)s")
    t0 = time.monotonic()
    try:
        from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

        workers = {mode: RewardLoopWorker(cfg) for mode, cfg in configs.items()}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        conn.send(("error", worker_id, f"worker init failed: {describe_error(exc)}"))
        return
    conn.send(("ready", worker_id, os.getpid(), time.monotonic() - t0))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            break
        _, mode, part, profile_path = msg
        worker = workers[mode]
        conn.send(("loaded", worker_id))
        if conn.recv()[0] != "go":  # start together: the transfer of the batch is not part of the measured pass
            break
        profiler = None
        if profile_path:
            import cProfile

            profiler = cProfile.Profile()
        start, cpu0 = time.monotonic(), time.process_time()
        try:
            # Both verl paths end here: RewardLoopManager sends a chunk to compute_score_batch, the agent loop sends
            # single responses to compute_score; either way every response is its own run_single task on the loop.
            coro = worker.compute_score_batch(part)
            if profiler is not None:
                profiler.enable()
            outputs = worker.loop.run_until_complete(coro)
            error = ""
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            outputs, error = None, describe_error(exc)
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile_path)
        end, cpu = time.monotonic(), time.process_time() - cpu0
        stats = _client_stats(worker, configs[mode]) if mode != "rules" else {}
        conn.send(("done", worker_id, mode, outputs, start, end, cpu, error, stats))
    conn.close()


def _client_stats(worker: Any, cfg: Any) -> dict[str, Any]:
    """Counters of this process's judge client for the config (public judge.client API), {} if unavailable."""
    try:
        from judge.client import get_judge_client
        from rewards.legal import get_options

        options = get_options(dict(cfg.reward.custom_reward_function.reward_kwargs))
        if options.judge is None:
            return {}

        async def read() -> dict[str, Any]:
            return get_judge_client(options.judge).stats()

        return worker.loop.run_until_complete(read())
    except Exception as exc:  # noqa: BLE001 - the counters are a diagnostic, never fatal
        return {"error": f"{type(exc).__name__}: {exc}"}


class WorkerPool:
    """--workers reward-loop processes, fed like RewardLoopManager feeds its Ray actors."""

    def __init__(self, count: int, configs: dict[str, Any], start_method: str, progress: bool) -> None:
        """Start the processes and wait until every worker built its reward managers."""
        from data.progress import tqdm

        ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            ctx.set_forkserver_preload(PRELOAD_MODULES)
        self.conns, self.procs = [], []
        level = logging.getLogger().level
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, i, configs, level), name=f"reward-worker-{i}")
            proc.daemon = True
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self.pids: list[int] = [0] * count
        self.init_s: list[float] = [0.0] * count
        with tqdm(total=count, desc="starting reward workers", disable=not progress, leave=False) as bar:
            for conn in self.conns:
                msg = self._recv(conn, timeout=600)
                if msg[0] == "error":
                    raise RuntimeError(msg[2])
                _, wid, pid, init_s = msg
                self.pids[wid], self.init_s[wid] = pid, init_s
                bar.update(1)

    def _recv(self, conn: Any, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError(f"a reward worker sent nothing within {timeout:.0f} s")
        return conn.recv()

    def score(
        self,
        mode: str,
        parts: list[Any],
        rows: list[list[int]],
        progress: bool,
        timeout: float,
        profile_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Send parts[w] to worker w, wait for all; outputs come back keyed by the batch rows in rows[w]."""
        from multiprocessing.connection import wait

        from data.progress import tqdm

        t_send = time.monotonic()
        for wid, (conn, part) in enumerate(zip(self.conns, parts, strict=True)):
            profile = str(profile_dir / f"{mode}_worker{wid}.pstats") if profile_dir else ""
            conn.send(("score", mode, part, profile))
        for conn in self.conns:
            msg = self._recv(conn, timeout)
            if msg[0] != "loaded":
                raise RuntimeError(f"reward worker sent {msg[0]!r} instead of 'loaded'")
        # Serializing and shipping the batch (verl: Ray object transfer) is reported apart from the scoring.
        dispatch_s = time.monotonic() - t_send
        box0, cpu0 = box_busy_s(), time.process_time()
        t0 = time.monotonic()
        for conn in self.conns:
            conn.send(("go",))
        results: dict[int, tuple] = {}
        pending = list(self.conns)
        with tqdm(total=sum(map(len, rows)), desc=f"scoring ({mode})", disable=not progress, leave=False) as bar:
            while pending:
                left = timeout - (time.monotonic() - t0)
                ready = wait(pending, timeout=max(left, 0))
                if not ready:
                    raise TimeoutError(f"{mode} pass: {len(pending)} worker(s) did not answer within {timeout:.0f} s")
                for conn in ready:
                    msg = conn.recv()
                    pending.remove(conn)
                    _, wid, _mode, outputs, start, end, cpu, error, stats = msg
                    if error:
                        raise RuntimeError(f"reward worker {wid} failed in the {mode} pass: {error}")
                    results[wid] = (outputs, start, end, cpu, stats)
                    bar.update(len(rows[wid]))
        t1 = time.monotonic()
        box1, cpu1 = box_busy_s(), time.process_time()
        by_row: dict[int, Any] = {}
        for wid, idx in enumerate(rows):
            by_row.update(zip(idx, results[wid][0], strict=True))
        workers = range(len(parts))
        return {
            "t0": t0,
            "t1": t1,
            "wall_s": t1 - t0,
            "dispatch_s": dispatch_s,
            "by_row": by_row,
            "worker_s": [results[w][2] - results[w][1] for w in workers],
            "worker_start_lag_s": [results[w][1] - t0 for w in workers],
            "worker_cpu_s": [results[w][3] for w in workers],
            "client_stats": [results[w][4] for w in workers],
            # from "go" to the last result: CPU of everything on these cores, and of this process
            "box_busy_s": None if box0 is None or box1 is None else box1 - box0,
            "parent_cpu_s": cpu1 - cpu0,
        }

    def close(self) -> None:
        """Ask every worker to stop, then join (terminate stragglers)."""
        for conn in self.conns:
            try:
                conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


# --------------------------------------------------------------------------------------------------- naive baseline


def run_naive(
    base_url: str, model: str, items: list[Item], samples: list[Sample], subset: list[int], progress: bool
) -> float:
    """The original recipe: one synchronous request per response, one at a time, no cache, no dedup; seconds."""
    import openai

    from data.domains.legal.tasks import TASK_LABELS
    from data.progress import tqdm
    from judge.prompts import build_grade_messages, build_term_error_messages

    client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=3, timeout=60.0)
    t0 = time.monotonic()
    for i in tqdm(subset, desc="naive baseline", disable=not progress, leave=False):
        sample = samples[i]
        item = items[sample.item]
        pred = sample.answer if sample.answer is not None else sample.response
        if item.task == "term":
            messages = build_term_error_messages(item.gold, pred)
        else:
            messages = build_grade_messages(TASK_LABELS[item.task], item.gold, pred)
        client.chat.completions.create(model=model, messages=messages, temperature=0.0, max_tokens=32)
    elapsed = time.monotonic() - t0
    client.close()
    return elapsed


# --------------------------------------------------------------------------------------------------- report


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def box_busy_s() -> float | None:
    """CPU seconds all processes on this machine have spent on the CPUs this process may use (/proc/stat), or None.

    Busy is user + nice + system + irq + softirq + steal (idle and iowait excluded), summed over those CPUs.
    """
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not re.fullmatch(r"cpu\d+", name) or (allowed is not None and int(name[3:]) not in allowed):
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        busy += user + nice + system + irq + softirq + steal
    return busy / ticks


def summarize_server(records: list[Any], t0: float, t1: float) -> dict[str, Any]:
    """Requests the judge received during a pass: retries, distinct questions, duplicates, timing envelope."""
    by_key: dict[str, list[Any]] = {}
    for rec in sorted(records, key=lambda r: r.t_start):
        by_key.setdefault(request_key(rec.json), []).append(rec)
    retries = 0
    for recs in by_key.values():
        for prev, cur in zip(recs, recs[1:], strict=False):
            if prev.status != 200 and cur.t_start >= prev.t_end:
                retries += 1  # the same question again after a failed attempt: a retry, not a new call
    statuses = Counter(r.status for r in records)
    service = [(r.t_end - r.t_start) for r in records if r.t_end]
    return {
        "requests": len(records),
        "retries": retries,
        "calls": len(records) - retries,
        "distinct_questions": len(by_key),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "first_request_after_s": (min(r.t_start for r in records) - t0) if records else None,
        "last_answer_before_end_s": (t1 - max(r.t_end for r in records)) if records else None,
        "request_time_p50_ms": 1000 * _pct(service, 0.5),
        "request_time_max_ms": 1000 * max(service) if service else 0.0,
    }


def summarize_outputs(outputs: list[dict[str, Any]], items: list[Item], samples: list[Sample]) -> dict[str, Any]:
    """Per-response reward_extra_info → counts: judged responses, unique pairs, cache hits, failures, scores."""
    from rewards.format import extract_answer

    info = [o.get("reward_extra_info", {}) for o in outputs]
    scores = [o.get("reward_score") for o in outputs]
    scored = sum(1 for s in scores if isinstance(s, (int, float)) and math.isfinite(float(s)))
    judged = [i for i, e in enumerate(info) if e.get("judge_called", 0) >= 0.5]
    pairs = set()
    for i in judged:
        item = items[samples[i].item]
        pairs.add((item.task, item.gold.strip(), extract_answer(samples[i].response)))
    latencies = [float(info[i].get("judge_latency_ms", 0.0)) for i in judged]
    return {
        "scored": scored,
        "judge_called_responses": len(judged),
        "unique_pairs_needing_judge": len(pairs),
        "cache_hits": int(sum(e.get("cache_hit", 0) for e in info)),
        "judge_failed": int(sum(e.get("judge_failed", 0) for e in info)),
        "rules_used": int(sum(e.get("rules_used", 0) for e in info)),
        "format_ok": int(sum(e.get("format_ok", 0) for e in info)),
        "mean_score": statistics.fmean(float(s) for s in scores) if scores else 0.0,
        "judge_latency_p50_ms": _pct(latencies, 0.5),
        "judge_latency_p95_ms": _pct(latencies, 0.95),
    }


def batch_stats(items: list[Item], samples: list[Sample]) -> dict[str, Any]:
    """How duplicated the batch is: share of responses repeating an answer already given in their group."""
    groups: dict[int, list[str]] = {}
    for s in samples:
        if s.answer is not None:
            groups.setdefault(s.item, []).append(s.answer)
    with_answer = sum(len(g) for g in groups.values())
    distinct = sum(len(set(g)) for g in groups.values())
    top = [Counter(g).most_common(1)[0][1] / len(g) for g in groups.values() if g]
    kinds = Counter(s.kind for s in samples)
    return {
        "items_per_task": dict(Counter(it.task for it in items)),
        "responses_by_kind": dict(sorted(kinds.items())),
        "in_group_repeat_rate": 1 - distinct / with_answer if with_answer else 0.0,
        "top_answer_share_mean": statistics.fmean(top) if top else 0.0,
        "distinct_answers_per_group": distinct / len(groups) if groups else 0.0,
    }


def _verdict(value: float | None, met: bool) -> str:
    """'met' / 'MISSED', or 'n/a' when the figure does not exist (no judge calls, baseline skipped)."""
    return "n/a" if value is None else ("met" if met else "MISSED")


def print_table(report: dict[str, Any]) -> None:
    """The headline numbers as a table (rich when installed, else aligned text)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return "-" if v is None else str(v)

    t = report["targets"]
    rows = [
        ("responses", report["responses"], f"{report['config']['prompts']} prompts × {report['config']['n']}"),
        (
            "unique pairs needing judge (J)",
            report["unique_pairs_needing_judge"],
            f"{report['judge_called_responses']} responses asked the judge",
        ),
        ("judge calls", report["judge_calls"], "≤ J: " + ("yes" if t["judge_calls_le_unique_pairs"] else "NO")),
        (
            "cache + dedup savings",
            report["saved_by_cache_and_dedup"],
            f"cache hits {report['cache_hits']}, dedup hits {report['dedup_hits']}",
        ),
        ("HTTP requests (incl. retries)", report["judge_requests"], f"retries {report['retries']}"),
        ("wall (s)", report["wall_s"], f"{report['config']['workers']} worker processes"),
        (
            "ideal = ceil(J/C)×L (s)",
            report["ideal_s"],
            f"C={report['config']['server_concurrency']}, L={report['config']['latency_ms']} ms",
        ),
        (
            "ratio to ideal",
            report["ratio_to_ideal"],
            "target ≤ 1.25: " + _verdict(report["ratio_to_ideal"], t["ratio_le_1_25"]),
        ),
        (
            "CPU bound (s)",
            report["cpu_bound_s"],
            f"(worker + loopback judge CPU) / {report['cores']} cores",
        ),
        (
            "ratio to limit",
            report["ratio_to_limit"],
            f"wall / max(ideal, CPU bound); binds: {report['binding_limit']}; target ≤ 1.25: "
            + _verdict(report["ratio_to_limit"], t["ratio_to_limit_le_1_25"]),
        ),
        *(
            [
                (
                    "… with the CPU others left (s)",
                    report["shared_box"]["cpu_bound_s"],
                    f"{report['shared_box']['cores_left']:.2f} cores left; others used "
                    f"{report['shared_box']['other_cpu_s']:.2f} CPU-s",
                ),
                (
                    "ratio to that limit",
                    report["shared_box"]["ratio_to_limit"],
                    f"binds: {report['shared_box']['binding_limit']}",
                ),
            ]
            if report.get("shared_box")
            else []
        ),
        ("server time for calls sent (s)", report["server_bound_s"], "ceil(judge calls / C) × L"),
        ("non-judge overhead (s)", report["overhead_s"], "same batch, mode=rules"),
        (
            "reward worker CPU (s)",
            report["worker_cpu_s"],
            f"{1000 * report['worker_cpu_s'] / report['responses']:.2f} ms per response, {os.cpu_count()} cores",
        ),
        (
            "rules-mode worker CPU (s)",
            report["overhead_cpu_s"],
            f"{1000 * (report['overhead_cpu_s'] or 0) / report['responses']:.2f} ms per response (mostly verl's)",
        ),
        ("loopback judge CPU (s)", report["judge_server_cpu_s"], "benchmark process, same cores"),
        ("naive, measured (s)", report["naive_measured_s"], f"{report['naive_subset']} responses, 1 at a time"),
        ("naive, extrapolated (s)", report["naive_s"], f"× {report['responses']}/{report['naive_subset']}"),
        (
            "speedup vs naive",
            report["speedup_vs_naive"],
            "target ≥ 10×: " + _verdict(report["speedup_vs_naive"], t["speedup_ge_10"]),
        ),
        ("failures", report["failures"], "responses without a judge result"),
        ("fallbacks", report["fallbacks"], f"scored by on_judge_error={report['config']['on_judge_error']}"),
        ("scored", report["scored"], "every response has a score: " + ("yes" if t["all_scored"] else "NO")),
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(r[0]) for r in rows)
        print(f"reward throughput (mode={report['config']['mode']})")
        for name, value, note in rows:
            print(f"  {name:<{width}}  {fmt(value):>10}  {note}")
        return
    table = Table(title=f"reward throughput (mode={report['config']['mode']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("note")
    for name, value, note in rows:
        table.add_row(name, fmt(value), note)
    Console().print(table)


# --------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """CLI (contract: --prompts --n --latency-ms --server-concurrency --mode --json)."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--prompts", type=int, default=128, help="prompts in the batch (default: %(default)s)")
    p.add_argument("--n", type=int, default=16, help="responses per prompt, rollout.n (default: %(default)s)")
    p.add_argument("--latency-ms", type=float, default=100.0, help="judge latency per request (default: %(default)s)")
    p.add_argument(
        "--server-concurrency",
        type=int,
        default=64,
        help="requests the judge serves at once; the rest queue (default: %(default)s)",
    )
    p.add_argument("--mode", choices=("hybrid", "judge", "rules"), default="hybrid", help="reward mode")
    p.add_argument("--json", metavar="OUT.json", help="write the report as JSON")
    p.add_argument("--workers", type=int, default=8, help="reward loop worker processes, reward.num_workers")
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of judge requests answered with HTTP 503")
    p.add_argument("--naive-subset", type=int, default=64, help="responses timed for the naive baseline (0: skip)")
    p.add_argument("--seed", type=int, default=0, help="batch, data split and failure-injection seed")
    p.add_argument(
        "--client-concurrency",
        type=int,
        default=None,
        help="reward kwarg max_concurrency per process (default: the client's own default)",
    )
    p.add_argument("--max-retries", type=int, default=None, help="reward kwarg max_retries (default: client default)")
    p.add_argument("--on-judge-error", choices=("rules", "neutral", "raise"), default="rules")
    p.add_argument(
        "--reward-fn-path",
        default=str(REWARD_FN_PATH),
        help="reward.custom_reward_function.path (default: %(default)s, loaded by path as in training)",
    )
    p.add_argument("--data", type=Path, default=None, help="a parquet from data.prepare (default: prepare the sample)")
    p.add_argument(
        "--start-method",
        choices=("forkserver", "spawn"),
        default="forkserver",
        help="how worker processes start (forkserver: verl/torch imported once, then forked)",
    )
    p.add_argument(
        "--dispatch",
        choices=("affinity", "stream", "chunked"),
        default="affinity",
        help="affinity: each response to the worker its (task, gold) picks, as our GroupAffinityAgentLoopManager "
        "does in training (default); stream: to a random worker, verl's own agent loop; "
        "chunked: contiguous chunks, as RewardLoopManager.compute_rm_score",
    )
    p.add_argument(
        "--profile-dir", type=Path, default=None, help="cProfile each worker's measured pass into DIR/*.pstats"
    )
    p.add_argument(
        "--no-warmup", action="store_true", help="measure cold processes (first training step) instead of warm ones"
    )
    p.add_argument("--no-overhead-pass", action="store_true", help="skip the rules-mode pass (overhead_s = null)")
    p.add_argument("--timeout-s", type=float, default=900.0, help="bound on one scoring pass")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    for name in ("prompts", "n", "server_concurrency", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.latency_ms < 0 or not 0 <= args.fail_rate < 1 or args.naive_subset < 0:
        p.error("--latency-ms >= 0, 0 <= --fail-rate < 1 and --naive-subset >= 0 are required")
    return args


def reward_kwargs_for(mode: str, args: argparse.Namespace, base_url: str, model: str) -> dict[str, Any]:
    """The reward_kwargs a training YAML would carry for this run."""
    kwargs: dict[str, Any] = {"mode": mode, "on_judge_error": args.on_judge_error}
    if mode != "rules":
        kwargs.update(judge_base_url=base_url, judge_model=model)
        if args.client_concurrency is not None:
            kwargs["max_concurrency"] = args.client_concurrency
        if args.max_retries is not None:
            kwargs["max_retries"] = args.max_retries
    return kwargs


def to_dataproto(tokenizer: Any, items: list[Item], samples: list[Sample]) -> Any:
    """The batch as verl hands it to the reward loop (left-padded prompts, right-padded responses, no truncation)."""
    from helpers.dataproto import make_reward_dataproto

    longest = max(len(tokenizer.encode(s.response, add_special_tokens=False)) for s in samples)
    return make_reward_dataproto(
        tokenizer,
        prompts=[items[s.item].prompt for s in samples],
        responses=[s.response for s in samples],
        data_sources=[items[s.item].data_source for s in samples],
        ground_truths=[items[s.item].gold for s in samples],
        extra_infos=[items[s.item].extra_info for s in samples],
        prompt_length=256,
        response_length=64 * math.ceil(longest / 64),
    )


def split_batch(data: Any, workers: int, dispatch: str, seed: int) -> tuple[list[Any], list[list[int]], int]:
    """Per-worker parts of the batch and the batch rows each holds, as verl hands responses to reward workers.

    chunked: RewardLoopManager.compute_rm_score — pad to a multiple of num_workers, contiguous chunks (a GRPO
    group stays on one worker). stream: verl's agent loop (training with a custom reward and no colocated reward
    model) sends every finished response to random.choice(reward_loop_worker_handles).compute_score.
    affinity: our GroupAffinityAgentLoopManager (the recipe's default) picks the worker by (task, gold answer).
    """
    from verl.protocol import pad_dataproto_to_divisor

    if dispatch == "chunked":
        padded, pad_size = pad_dataproto_to_divisor(data, workers)
        parts = padded.chunk(workers)
        size = len(padded) // workers
        return parts, [list(range(w * size, (w + 1) * size)) for w in range(workers)], pad_size
    rows: list[list[int]] = [[] for _ in range(workers)]
    if dispatch == "affinity":
        from recipes.trainer.agent_loop import affinity_key, pick_worker

        workers_idx = list(range(workers))
        for i in range(len(data)):
            sample = {k: data.non_tensor_batch[k][i] for k in ("data_source", "reward_model")}
            rows[pick_worker(workers_idx, affinity_key(sample))].append(i)
    else:
        rng = random.Random(seed)
        for i in range(len(data)):
            rows[rng.randrange(workers)].append(i)
    return [data.select_idxs(r) if r else data[0:0] for r in rows], rows, 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the report dict."""
    from helpers.judge_server import ScriptedJudgeServer

    progress = not args.no_progress
    check_reward_fn(args.reward_fn_path)
    latency_s = args.latency_ms / 1000.0
    with (
        tempfile.TemporaryDirectory(prefix="reward_bench_") as tmp,
        ScriptedJudgeServer(
            reply=judge_reply,
            latency_s=latency_s,
            max_concurrency=args.server_concurrency,
            fail=args.fail_rate or None,
            seed=args.seed,
        ) as server,
    ):
        workdir = Path(tmp)
        t_setup = time.monotonic()
        tokenizer = build_tokenizer(workdir / "tokenizer")
        # The warm-up uses other prompts (one group per worker), so its answers never pre-fill the cache.
        # Verdict groups always reach the judge (hybrid and judge modes), so each worker's client is exercised.
        warm_count = 0 if args.no_warmup or args.mode == "rules" else args.workers
        all_items = load_items(args.data, args.prompts + len(TASKS) * warm_count, args.seed, workdir)
        items = all_items[: args.prompts]
        warm_items = [it for it in all_items[args.prompts :] if it.task == "verdict"][:warm_count]
        samples = build_groups(items, args.n, args.seed)
        data = to_dataproto(tokenizer, items, samples)
        modes = [args.mode] + ([] if args.no_overhead_pass or args.mode == "rules" else ["rules"])
        configs = {
            m: build_config(
                workdir / "tokenizer",
                args.reward_fn_path,
                reward_kwargs_for(m, args, server.base_url, server.model),
                args.workers,
            )
            for m in modes
        }
        parts, rows, pad_size = split_batch(data, args.workers, args.dispatch, args.seed)
        logger.info("batch ready in %.1fs: %d responses", time.monotonic() - t_setup, len(samples))

        t_pool = time.monotonic()
        pool = WorkerPool(args.workers, configs, args.start_method, progress)
        pool_start_s = time.monotonic() - t_pool
        try:
            warmup, warm_pass = None, None
            if warm_items:
                # Training's first step pays per-process start-up (client, connections, lazy imports) once; the
                # measured pass is a later step: warm processes, cache holding only other prompts' answers.
                warm_samples = build_groups(warm_items, args.n, args.seed + 7919)
                warm_parts, warm_rows, _ = split_batch(
                    to_dataproto(tokenizer, warm_items, warm_samples), args.workers, args.dispatch, args.seed + 1
                )
                server.reset()
                warm_pass = pool.score(args.mode, warm_parts, warm_rows, progress, args.timeout_s)
                warmup = {
                    "responses": len(warm_samples),
                    "wall_s": warm_pass["wall_s"],
                    "server": summarize_server(server.requests, warm_pass["t0"], warm_pass["t1"]),
                }
            server.reset()
            # The loopback judge runs in this process, next to the benchmark's own heap (torch, verl, tokenizer,
            # batch: about 600k objects). A full collection of that heap in the measured pass stopped the judge
            # for about 0.6 s and was counted as judge CPU; a judge on its own machine pauses for no such thing.
            gc.collect()
            gc.freeze()
            cpu0 = time.process_time()
            main_pass = pool.score(args.mode, parts, rows, progress, args.timeout_s, args.profile_dir)
            parent_cpu_s = time.process_time() - cpu0
            records = server.requests
            max_active = server.max_active_seen
            # The rules pass comes after the measured pass: run before it, it would fill the workers' parse caches
            # (rewards/rules.py, recipes/legal) with this batch's answers, which a training step never finds.
            overhead = None
            if "rules" in modes and args.mode != "rules":
                overhead = pool.score("rules", parts, rows, progress, args.timeout_s)
        finally:
            gc.unfreeze()
            pool.close()

        naive_measured = None
        subset: list[int] = []
        if args.naive_subset and args.mode != "rules":
            subset = sorted(
                random.Random(args.seed + 1).sample(range(len(samples)), min(args.naive_subset, len(samples)))
            )
            server.fail = None  # the baseline's time is what is compared; failure handling is not measured here
            server.reset()
            naive_measured = run_naive(server.base_url, server.model, items, samples, subset, progress)

    outputs = [main_pass["by_row"][i] for i in range(len(samples))]
    out_sum = summarize_outputs(outputs, items, samples)
    srv = summarize_server(records, main_pass["t0"], main_pass["t1"])
    # Client counters are per process and cumulative: subtract what the warm-up pass left behind.
    before = warm_pass["client_stats"] if warmup else [{} for _ in main_pass["client_stats"]]
    client = [
        {k: after[k] - prev.get(k, 0) for k in CLIENT_COUNTERS if k in after}
        for after, prev in zip(main_pass["client_stats"], before, strict=True)
        if after and "error" not in after
    ]
    client_calls = sum(s.get("calls", 0) for s in client) if client else None
    judge_calls = client_calls if client_calls is not None else srv["calls"]
    unique = out_sum["unique_pairs_needing_judge"]
    ideal_s = math.ceil(unique / args.server_concurrency) * latency_s
    wall_s = main_pass["wall_s"]
    naive_s = naive_measured * len(samples) / len(subset) if naive_measured is not None else None
    failures = out_sum["judge_failed"]
    fallbacks = failures if args.on_judge_error in ("rules", "neutral") else 0
    report: dict[str, Any] = {
        # contract keys
        "responses": len(samples),
        "judge_calls": judge_calls,
        "unique_pairs_needing_judge": unique,
        "wall_s": wall_s,
        "ideal_s": ideal_s,
        "ratio_to_ideal": wall_s / ideal_s if ideal_s > 0 else None,
        "naive_s": naive_s,
        "speedup_vs_naive": naive_s / wall_s if naive_s is not None and wall_s > 0 else None,
        "failures": failures,
        "fallbacks": fallbacks,
        # more detail
        "scored": out_sum["scored"],
        # ceil(judge_calls / C) x L: the server time for the calls actually sent (duplicates included);
        # wall / server_bound_s is the client-side and CPU share of the gap, server_bound_s / ideal_s the duplicates'.
        "server_bound_s": math.ceil(judge_calls / args.server_concurrency) * latency_s,
        "judge_called_responses": out_sum["judge_called_responses"],
        "cache_hits": out_sum["cache_hits"],
        "dedup_hits": sum(s.get("dedup_hits", 0) for s in client) if client else None,
        "saved_by_cache_and_dedup": out_sum["judge_called_responses"] - judge_calls,
        "judge_requests": srv["requests"],
        "retries": sum(s.get("retries", 0) for s in client) if client else srv["retries"],
        # Calls beyond the distinct questions the judge saw (the same question from several processes, or asked
        # again after a failed call). judge_calls - duplicate_calls = distinct questions <= J.
        "duplicate_calls": max(0, judge_calls - srv["distinct_questions"]),
        "overhead_s": overhead["wall_s"] if overhead else None,
        "warmup": warmup,
        "worker_cpu_s": sum(main_pass["worker_cpu_s"]),
        # CPU of this process during the measured pass: the loopback judge (a thread here) shares the cores with
        # the workers; a real judge runs elsewhere (GPU server), so this is benchmark overhead on a small box.
        "judge_server_cpu_s": parent_cpu_s,
        "overhead_cpu_s": sum(overhead["worker_cpu_s"]) if overhead else None,
        "wall_minus_overhead_s": wall_s - overhead["wall_s"] if overhead else None,
        "naive_measured_s": naive_measured,
        "naive_subset": len(subset),
        "server": {**srv, "max_active_seen": max_active},
        "client_stats": client,
        "workers": {
            "start_s": pool_start_s,
            "init_s": pool.init_s,
            "score_s": main_pass["worker_s"],
            "start_lag_s": main_pass["worker_start_lag_s"],
            "rows_per_worker": [len(r) for r in rows],
            "cpu_s": main_pass["worker_cpu_s"],
            "dispatch_s": main_pass["dispatch_s"],
            "pad_size": pad_size,
        },
        "rewards": {
            k: out_sum[k]
            for k in ("rules_used", "format_ok", "mean_score", "judge_latency_p50_ms", "judge_latency_p95_ms")
        },
        "batch": batch_stats(items, samples),
        "config": {
            "prompts": args.prompts,
            "n": args.n,
            "latency_ms": args.latency_ms,
            "server_concurrency": args.server_concurrency,
            "mode": args.mode,
            "workers": args.workers,
            "fail_rate": args.fail_rate,
            "seed": args.seed,
            "on_judge_error": args.on_judge_error,
            "client_concurrency": args.client_concurrency,
            "max_retries": args.max_retries,
            "start_method": args.start_method,
            "dispatch": args.dispatch,
            "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
    }
    # The CPU limit, measured in this run: the scoring processes and the loopback judge share these cores, so the
    # batch cannot finish faster than their CPU seconds spread over all of them. The binding limit is the larger.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cpu_bound_s = (report["worker_cpu_s"] + parent_cpu_s) / cores
    limit_s = max(ideal_s, cpu_bound_s)
    report["cores"] = cores
    report["cpu_bound_s"] = cpu_bound_s
    report["limit_s"] = limit_s
    report["binding_limit"] = "judge" if ideal_s >= cpu_bound_s else "cpu"
    report["ratio_to_limit"] = wall_s / limit_s if limit_s > 0 else None
    # The same limit with the CPU other processes on this (shared) machine took from "go" to the end: other_cpu_s
    # is what everything but the workers and this process used of these cores, cores_left the average left to us.
    if main_pass["box_busy_s"] is not None and wall_s > 0:
        other = max(0.0, main_pass["box_busy_s"] - report["worker_cpu_s"] - main_pass["parent_cpu_s"])
        left = max(cores - other / wall_s, 0.1)
        shared_s = (report["worker_cpu_s"] + parent_cpu_s) / left
        shared_limit = max(ideal_s, shared_s)
        report["shared_box"] = {
            "other_cpu_s": other,
            "cores_left": left,
            "cpu_bound_s": shared_s,
            "binding_limit": "judge" if ideal_s >= shared_s else "cpu",
            "ratio_to_limit": wall_s / shared_limit if shared_limit > 0 else None,
        }
    report["targets"] = {
        "ratio_le_1_25": report["ratio_to_ideal"] is not None and report["ratio_to_ideal"] <= 1.25,
        "ratio_to_limit_le_1_25": report["ratio_to_limit"] is not None and report["ratio_to_limit"] <= 1.25,
        "speedup_ge_10": report["speedup_vs_naive"] is not None and report["speedup_vs_naive"] >= 10,
        "judge_calls_le_unique_pairs": judge_calls <= unique,
        "zero_failures": failures == 0,
        "all_scored": out_sum["scored"] == len(samples),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write --json; exit 0 (targets are reported, not asserted)."""
    args = parse_args(argv)
    # Ray starts every actor without a CPU request (verl's reward-loop workers) with OMP_NUM_THREADS=1 unless the
    # variable is set (ray/_private/utils.py, set_omp_num_threads_if_unset). Do the same before torch is imported
    # here or in the forkserver: otherwise torch's OpenMP threads in every process spin-wait after each small op
    # and take CPU from the scoring on a small box, which training does not see.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    report = run(args)
    print_table(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

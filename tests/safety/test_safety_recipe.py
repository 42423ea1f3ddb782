"""The recipe description (recipes/safety/recipe.py) and the embedding client it relies on, against loopback servers."""

from __future__ import annotations

import asyncio
import pathlib

import pyarrow.parquet as pq
import pytest
from helpers.embedding_server import EmbeddingServer
from omegaconf import OmegaConf
from verl.trainer.ppo.reward import get_custom_reward_fn

from data.prepare import PrepareConfig, prepare
from judge.embeddings import (
    EmbeddingCallError,
    EmbeddingConfig,
    EmbeddingUnavailableError,
    close_embedding_clients,
    cosine,
    get_embedding_client,
)
from recipes.recipe import load_recipe, recipe_of_data_source
from recipes.safety.recipe import RECIPE, evaluate_predictions
from rewards.safety import RESULT_KEYS

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "samples" / "safety_sample.jsonl"


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("recipe_rows")
    prepare(PrepareConfig(source="safety", inputs=(str(SAMPLE),), output=str(out)))
    return [r for s in ("train", "test") for r in pq.read_table(out / f"{s}.parquet").to_pylist()]


def test_description_matches_rows_configs_and_reward(rows):
    """Data sources and tasks are those of the rows; configs exist and point at the reward; metric keys exist."""
    assert load_recipe("safety") is RECIPE
    assert all(recipe_of_data_source(r["data_source"]) is RECIPE and RECIPE.owns(r["data_source"]) for r in rows)
    assert {r["extra_info"]["task"] for r in rows} == set(RECIPE.tasks)
    for name in ("safety_grpo", "safety_grpo_ngram"):
        assert (REPO / "configs" / f"{name}.yaml").is_file()
    assert (REPO / RECIPE.reward_path).is_file()
    assert {key for _name, key in RECIPE.step_metrics} <= set(RESULT_KEYS)
    assert {key for _name, *keys, _empty in RECIPE.step_ratios for key in keys} <= set(RESULT_KEYS)


async def test_gold_response_of_every_row_scores_the_maximum(rows):
    """What the preflight/rehearsal would do: load the reward as verl does, score each row's gold response."""
    config = OmegaConf.create(
        {"reward": {"custom_reward_function": {"path": str(REPO / RECIPE.reward_path), "name": "compute_score"}}}
    )
    fn = get_custom_reward_fn(config)
    for row in rows:
        gt = row["reward_model"]["ground_truth"]
        RECIPE.check_gold(row["data_source"], gt, row["extra_info"])
        response = RECIPE.gold_response(row["data_source"], gt, row["extra_info"], {})
        out = await fn(row["data_source"], response, gt, row["extra_info"])
        assert out["score"] == 5.0


def test_check_gold_rejects_bad_rows():
    """A bad ground truth raises a ValueError naming the problem."""
    with pytest.raises(ValueError, match="scores"):
        RECIPE.check_gold("safety", '{"scores": [], "reasoning": "x"}', None)
    with pytest.raises(ValueError, match="data_source"):
        RECIPE.check_gold("legal/charge", '{"scores": {}, "reasoning": "x"}', None)


def test_evaluate_on_gold_and_on_empty_answers(rows):
    """Gold responses: MAE 0, all within 5, detection F1 1 wherever a violation exists; empty answers: the opposite."""
    gts = [r["reward_model"]["ground_truth"] for r in rows]
    best = evaluate_predictions([RECIPE.gold_response("safety", g, None, {}) for g in gts], gts)
    assert best["mae"]["overall"] == 0.0 and best["all_within_5"] == 1.0 and best["format_rate"] == 1.0
    assert best["detection"]["micro"]["f1"] == 1.0
    assert all(d["f1"] in (1.0, None) for d in best["detection"].values())
    worst = evaluate_predictions([""] * len(gts), gts)
    assert worst["parse_failures"] == len(gts) and worst["key_coverage"]["overall"] == 0.0
    assert worst["detection"]["micro"]["recall"] == 0.0
    with pytest.raises(ValueError):
        evaluate_predictions(["x"], [])


# ------------------------------------------------------------------------------------------ embedding client


def _config(server: EmbeddingServer, **extra) -> EmbeddingConfig:
    return EmbeddingConfig(base_url=server.base_url, model="embed-model", max_retries=0, timeout_s=5.0, **extra)


async def test_identical_texts_in_flight_share_one_request():
    """16 concurrent requests for one text (a GRPO group's gold) make one HTTP call; later ones hit the cache."""
    with EmbeddingServer() as server:
        server.latency_s = 0.2
        client = get_embedding_client(_config(server))
        results = await asyncio.gather(*(client.embed("同一段理由") for _ in range(16)))
        assert len(server.requests) == 1
        assert all(vec == results[0][0] for vec, _hit in results)
        _vec, hit = await client.embed("同一段理由")
        assert hit and len(server.requests) == 1
        await close_embedding_clients()


async def test_failures_are_counted_and_stop_after_the_limit():
    """Each failed call raises EmbeddingCallError; after max_consecutive_failures every call says unavailable."""
    with EmbeddingServer() as server:
        server.fail = 10**6
        client = get_embedding_client(_config(server, max_consecutive_failures=2))
        for text in ("甲", "乙"):
            with pytest.raises(EmbeddingCallError, match="503|failed"):
                await client.embed(text)
        with pytest.raises(EmbeddingUnavailableError):
            await client.embed("丙")
        assert client.failures == 2 and len(server.requests) == 2
        await close_embedding_clients()


async def test_a_success_resets_the_failure_count():
    """Failures must be consecutive to stop the run: fail, succeed, fail, then the next call is still made."""
    with EmbeddingServer() as server:
        server.fail = 1  # request 0 fails
        client = get_embedding_client(_config(server, max_consecutive_failures=2))
        with pytest.raises(EmbeddingCallError):
            await client.embed("甲")
        await client.embed("乙")  # request 1 succeeds
        server.fail = 3  # request 2 fails, request 3 succeeds
        with pytest.raises(EmbeddingCallError):
            await client.embed("丙")
        _vec, hit = await client.embed("丁")  # 1 failure in a row, not 2: asked, answered
        assert not hit and len(server.requests) == 4
        await close_embedding_clients()


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1.0, 0.0], [1.0, 0.0], 1.0),
        ([1.0, 0.0], [0.0, 2.0], 0.0),
        ([1.0, 1.0], [-1.0, -1.0], -1.0),
        ([0.0, 0.0], [1.0, 0.0], 0.0),
        ([1.0], [1.0, 0.0], 0.0),
        ([float("nan"), 1.0], [1.0, 1.0], 0.0),
    ],
)
def test_cosine(a, b, expected):
    """Cosine with the degenerate cases at 0."""
    assert cosine(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "env", "url"),
    [
        ({"embedding_base_url": "http://h:1/v1/", "embedding_model": "m"}, {}, "http://h:1/v1"),
        ({"embedding_model": "m"}, {"EMBEDDING_BASE_URL": "http://e:2/v1"}, "http://e:2/v1"),
        ({}, {}, None),
    ],
)
def test_config_from_kwargs_and_env(kwargs, env, url):
    """Reward kwargs first, then EMBEDDING_* variables; no URL → None."""
    config = EmbeddingConfig.from_kwargs(kwargs, env)
    assert (config.base_url if config else None) == url

"""The embedded endpoint's generator starts the server only for a key the cache lacks, and stops it after."""

import pytest

from schemas.settings import AffordSettings
from tasks.instruct.cache import InstructionCache
from tasks.instruct.choice import EMBEDDED_CONCURRENCY, chosen_generator
from tasks.instruct.endpoint import ensure_model_dir, model_dir_path
from tasks.instruct.generators import InstructionKey, TemplateGenerator
from tasks.instruct.stage import instruct_samples
from tasks.instruct.warm_endpoint import adopt, warm_endpoint

pytestmark = [pytest.mark.llm, pytest.mark.slow]
ROWS = [("oakink-00000000000000a1", "oakink", "mug", "wrap-grasp", None)]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> AffordSettings:
    data_root = tmp_path_factory.mktemp("embedded")
    ensure_model_dir(data_root)  # converted once (~30 s)
    return AffordSettings(data_root=data_root, llm_base_url=None)


def test_all_keys_cached_starts_no_server(settings, tmp_path):
    cache = InstructionCache(tmp_path / "cache.sqlite")
    with chosen_generator("auto", settings) as generator:
        cache.put(generator.model, generator.prompt_version, InstructionKey("mug", "wrap-grasp"), 3,
                  TemplateGenerator().generate(InstructionKey("mug", "wrap-grasp"), 3))
        rows, counts = instruct_samples(ROWS, generator, cache, k=3)
        assert generator._endpoint is None  # nothing asked: no server was started
    assert counts.cache_hits == 1 and counts.endpoint_calls == 0 and len(rows) == 1


def test_an_uncached_key_starts_the_server_once_and_stops_it(settings, tmp_path):
    with chosen_generator("auto", settings) as generator:
        rows, counts = instruct_samples(ROWS, generator, InstructionCache(tmp_path / "cache.sqlite"), k=3)
        process = generator._endpoint.process
        assert process.poll() is None
    assert process.poll() is not None and generator._endpoint is None
    assert counts.generated == 1 and counts.endpoint_calls >= 1
    # the 135M model's answer may fail validation: then the row says it is a template fallback
    assert rows[0].instruction and (rows[0].model == generator.model or rows[0].fallback)


def test_rows_name_the_embedded_model_without_the_data_root(settings):
    """Two data roots served by the same weights must write the same rows: the served path is not recorded."""
    with chosen_generator("auto", settings) as generator:
        assert generator.model == "embedded:smollm2-135m-instruct"
        assert str(settings.data_root) not in generator.model


def test_the_demo_concurrency_answers_as_one_at_a_time(settings):
    """Continuous batching decodes requests in flight together; each carries its own seed, so a key's texts must
    not depend on which other keys shared its batch (the demo's tables stay reproducible)."""
    pairs = [("mug", "handle-grasp"), ("knife", "handle-grasp"), ("bottle", "twist"), ("kettle", "lift"),
             ("scissors", "handle-grasp"), ("mug", "wrap-grasp"), ("bottle", "lift"), ("knife", "press")]
    keys = [(f"oakink-00000000000000c{i}", "oakink", c, a, None) for i, (c, a) in enumerate(pairs)]
    texts = {}
    with chosen_generator("auto", settings) as generator:
        for concurrency in (EMBEDDED_CONCURRENCY, 1):
            rows, counts = instruct_samples(keys, generator, None, k=3, concurrency=concurrency)
            assert counts.generated == len(keys)
            texts[concurrency] = [(row.sample_id, row.instruction, row.fallback) for row in rows]
        assert "--continuous-batching" in generator._endpoint.process.args
    assert texts[EMBEDDED_CONCURRENCY] == texts[1]


def test_a_warmed_endpoint_is_adopted_by_the_stage_which_stops_it_when_done(settings, tmp_path):
    with warm_endpoint(settings.data_root, settings, "auto"):
        with chosen_generator("auto", settings) as generator:
            rows, counts = instruct_samples(ROWS, generator, InstructionCache(tmp_path / "cache.sqlite"), k=3)
            endpoint = generator._endpoint
            assert endpoint is adopt(generator.model_dir)  # the warm one, not a second server
            assert endpoint.process.poll() is None
        assert endpoint.process.poll() is not None  # later stages get the cores back
    assert counts.generated == 1 and rows[0].instruction


def test_a_run_that_ends_before_using_the_warm_endpoint_stops_it(settings):
    with warm_endpoint(settings.data_root, settings, "auto"):
        endpoint = adopt(model_dir_path(settings.data_root))  # waits until it answers
        assert endpoint.process.poll() is None
    assert endpoint.process.poll() is not None

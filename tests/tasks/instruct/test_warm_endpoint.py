"""When a run starts the embedded endpoint ahead of the instruct stage (tasks/instruct/warm_endpoint.py)."""

from schemas.data_root import DataRoot
from schemas.settings import AffordSettings
from tasks.instruct.cache import InstructionCache
from tasks.instruct.generators import InstructionKey, OpenAIGenerator, TemplateGenerator
from tasks.instruct.warm_endpoint import adopt, wanted, warm_endpoint


def test_only_a_run_that_will_ask_the_embedded_model_warms_it(tmp_path):
    settings = AffordSettings(data_root=tmp_path, llm_base_url=None)
    assert wanted("auto", settings)  # a fresh data root: the model will be asked
    assert not wanted("template", settings)
    assert not wanted("openai", settings)
    assert not wanted("auto", AffordSettings(data_root=tmp_path, llm_base_url="http://127.0.0.1:9/v1"))
    key = InstructionKey("mug", "wrap-grasp")
    cache = InstructionCache(DataRoot(tmp_path).instruction_cache)
    cache.put("embedded:other-model", OpenAIGenerator.prompt_version, key, 3, TemplateGenerator().generate(key, 3))
    assert wanted("auto", settings)  # another model's answers do not count
    cache.put("embedded:smollm2-135m-instruct", OpenAIGenerator.prompt_version, key, 3,
              TemplateGenerator().generate(key, 3))
    assert not wanted("auto", settings)  # a re-run: its keys are most likely cached, no server for nothing


def test_nothing_is_started_or_adopted_when_not_wanted(tmp_path):
    settings = AffordSettings(data_root=tmp_path, llm_base_url=None)
    with warm_endpoint(tmp_path, settings, "template"):
        assert adopt(DataRoot(tmp_path).models / "smollm2-135m-instruct") is None
    assert not (DataRoot(tmp_path).models / "smollm2-135m-instruct").exists()  # no conversion either

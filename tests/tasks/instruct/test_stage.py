"""The instruct stage offline: answer validation and parsing, templates, key dedup, variants and the cache."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from schemas.affordance import AFFORDANCES
from schemas.instruction import InstructionRow
from schemas.rows import Reject
from tasks.instruct.cache import InstructionCache
from tasks.instruct.generators import (
    Instruction,
    InstructionGenerator,
    InstructionKey,
    OpenAIGenerator,
    TemplateGenerator,
)
from tasks.instruct.prompts import (
    PROMPT_VERSION,
    build_messages,
    build_repair_messages,
    parse_answer,
    readable,
    task_sentence,
    validate_instruction,
)
from tasks.instruct.stage import InstructInput, instruct_samples, make_generator, stable_variant
from tasks.store.read import open_table
from tasks.store.write import TableWriter, write_table

KEYS = [("mug", "handle-grasp", "handle"), ("mug", "wrap-grasp", None), ("bottle", "twist", "cap"),
        ("knife", "handle-grasp", "handle"), ("scissors", "press", None), ("wine_glass", "lift", "stem")]


class CountingGenerator(TemplateGenerator):
    """Template answers, counting generate() calls per key (from several threads)."""

    model = "counting"
    prompt_version = "count-v1"

    def __init__(self) -> None:
        self.calls: list[InstructionKey] = []
        self._lock = threading.Lock()

    def generate(self, key: InstructionKey, k: int) -> list[Instruction]:
        with self._lock:
            self.calls.append(key)
        return super().generate(key, k)


def samples(n: int, keys=KEYS, dataset: str = "grab") -> list[InstructInput]:
    return [InstructInput(f"{dataset}-{i:016x}", dataset, *keys[i % len(keys)]) for i in range(n)]


@pytest.mark.parametrize("text", [
    "Grip the handle of the mug securely",
    "Carefully lift the mugs off the table",
    "Please hold the Mug by its handle",
    "Apply gentle pressure to the mug",            # a verb ending in -ly is not skipped as an adverb
    "Twist the cap to open it",                   # names the part only
    "Hold the glass by its stem",                 # last word of a multi-word class
    "Pick up the wine-glass gently",              # hyphen for the class's underscore
])
def test_valid_instructions(text: str) -> None:
    part = "cap" if "cap" in text else None
    object_class = "wine_glass" if "glass" in text else ("bottle" if part else "mug")
    assert validate_instruction(text, object_class, part) is None


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("Grip mug", "2 words"),
    (" ".join(["Grip the mug"] + ["now"] * 30), "words"),
    ("Can you grip the mug by its handle?", "question"),
    ("I would grip the mug by its handle", "not imperative"),
    ("Sure, grip the mug by its handle", "not imperative"),
    ("As an AI, I hold the mug", "refusal"),
    ("I'm sorry, I cannot describe the mug", "refusal"),
    ("The mug should be gripped by its handle", "not a known verb"),
    ("Grip the bottle by its neck firmly", "does not name the mug"),
    ("PUSH: Push the mug to the right", "colon"),
    ('Say "hold the mug by its handle', "unpaired quote"),
])
def test_invalid_instructions(text: str, reason: str) -> None:
    why = validate_instruction(text, "mug", None)
    assert why is not None and reason in why


def test_parse_plain_and_fenced_json() -> None:
    assert parse_answer('["Grip the mug", "Hold the mug"]', 3) == ["Grip the mug", "Hold the mug"]
    fenced = 'Here you go:\n```json\n["1. Grip the mug", " \\"Lift the mug\\" ", "Hold the mug", "x"]\n```\nEnjoy'
    assert parse_answer(fenced, 3) == ["Grip the mug", "Lift the mug", "Hold the mug"]
    assert parse_answer("```\n[\"Grip the mug\"]\n```", 2) == ["Grip the mug"]


@pytest.mark.parametrize(("content", "reason"), [
    (None, "empty"), ("   ", "empty"), ("Grip the mug.\nThen you lift it.", "not a JSON list"),
    ('["Grip the mug", "Hold', "not a JSON list"),
    ('{"a": ["Grip the mug"], "b": ["Hold the mug"]}', "got a JSON dict"),
    ('["Grip the mug", 3]', "non-string"), ('["", "  "]', "no non-empty"),
    ("I'm sorry, but I can't help with that.", "refusal"),
])
def test_parse_rejects_garbage(content: str | None, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_answer(content, 3)


def test_one_plain_line_is_one_instruction() -> None:
    assert parse_answer("Grip the mug by its handle.", 3) == ["Grip the mug by its handle."]


def test_prompt_names_the_key() -> None:
    system, user = build_messages("wine_glass", "handle-grasp", "stem", 4)
    assert system["role"] == "system" and user["role"] == "user"
    assert "Task: hold the wine glass by its handle." in user["content"]
    assert "Write 4 different short commands" in user["content"] and "the stem of the wine glass" in user["content"]
    assert PROMPT_VERSION == "instruct-v3"


@pytest.mark.parametrize("affordance", AFFORDANCES)
@pytest.mark.parametrize("repair", [False, True])
def test_current_task_words_name_the_object(affordance: str, repair: bool) -> None:
    # A small model copies the task sentence: a copy that drops the object is refused ("does not name").
    for name in ("wine_glass", "headphones", "mug"):
        sentence = task_sentence(name, affordance, repair=repair)
        assert readable(name) in sentence and "object" not in sentence, sentence


def test_possessive_of_a_name_ending_in_s() -> None:
    assert task_sentence("headphones", "press") == "press the headphones' button or surface with the fingers"
    assert task_sentence("glass", "twist") == "twist the glass's cap or knob"
    assert validate_instruction("Press the headphones' button with one finger", "headphones", None) is None


def test_first_repair_asks_afresh_in_other_words_and_a_second_shows_the_answer() -> None:
    first = build_messages("mug", "lift", None, 3)
    fresh = build_repair_messages(first, "1. Lift it", "too short", "mug", "lift", None, 3, attempt=0)
    assert [m["role"] for m in fresh] == ["system", "user"]
    assert "Task: raise the mug off the table." in fresh[-1]["content"] and "mentions the mug." in fresh[-1]["content"]
    second = build_repair_messages(fresh, "1. Raise it", "does not name the mug", "mug", "lift", None, 3, attempt=1)
    assert second[:2] == fresh and second[2] == {"role": "assistant", "content": "1. Raise it"}
    assert "That answer could not be used: does not name the mug." in second[3]["content"]


def test_an_older_version_keeps_its_words_and_unknown_versions_are_refused() -> None:
    old = build_messages("mug", "press", None, 3, version="instruct-v2")
    assert "Task: press a button or surface of the mug with the fingers." in old[-1]["content"]
    repair = build_repair_messages(old, "1. Press a button", "does not name the mug", "mug", "press", None, 3,
                                   version="instruct-v2")
    assert repair[2]["content"] == "1. Press a button"  # v2 has no repair words: its repair shows the answer
    with pytest.raises(ValueError, match="prompt version 'instruct-v9' is not registered; registered: "
                                         "instruct-v2, instruct-v3"):
        build_messages("mug", "lift", None, 3, version="instruct-v9")
    with pytest.raises(ValueError, match="prompt version 'instruct-v9' is not registered"):
        OpenAIGenerator("http://127.0.0.1:1/v1", "any-model", prompt_version="instruct-v9")


@pytest.mark.parametrize("affordance", AFFORDANCES)
def test_templates_are_valid_distinct_and_deterministic(affordance: str) -> None:
    for part in (None, "handle"):
        key = InstructionKey("Coffee_Mug", affordance, part)
        first, again = TemplateGenerator().generate(key, 6), TemplateGenerator().generate(key, 6)
        assert first == again
        texts = [i.text for i in first]
        assert len(set(texts)) == 6 and [i.variant for i in first] == list(range(6))
        assert all(validate_instruction(t, key.object_class, part) is None for t in texts), texts
        assert all(i.generator == "template" and not i.fallback for i in first)


def test_generators_satisfy_the_protocol() -> None:
    generator = OpenAIGenerator("http://127.0.0.1:9/v1", "qwen", "sk-secret-123")
    assert isinstance(generator, InstructionGenerator) and isinstance(TemplateGenerator(), InstructionGenerator)
    assert "sk-secret" not in repr(generator) and "sk-secret" not in str(vars(generator))


def test_make_generator_needs_url_and_model() -> None:
    from schemas.settings import AffordSettings

    with pytest.raises(ValueError, match="AFFORD_LLM_BASE_URL"):
        make_generator(AffordSettings(llm_base_url=None, llm_model=None))
    generator = make_generator(AffordSettings(llm_base_url="http://127.0.0.1:9/v1", llm_model="qwen",
                                              llm_api_key="k", llm_timeout_s=5))
    assert isinstance(generator, OpenAIGenerator) and generator.timeout_s == 5
    assert isinstance(make_generator(AffordSettings(), "template"), TemplateGenerator)


def test_keys_are_generated_once(tmp_path: Path) -> None:
    generator = CountingGenerator()
    rows, counts = instruct_samples(samples(100), generator, InstructionCache(tmp_path / "c.sqlite"), k=3)
    assert len(generator.calls) == 6 and len(set(generator.calls)) == 6
    assert (counts.samples, counts.rows, counts.keys, counts.generated, counts.cache_hits) == (100, 100, 6, 6, 0)
    assert counts.endpoint_calls == 0 and counts.fallback_samples == 0
    for row in rows:
        assert row.variant == stable_variant(row.sample_id, 3)
        assert row.instruction == TemplateGenerator().text(InstructionKey(row.object_class, row.affordance,
                                                                          row.part), row.variant)
    assert {row.variant for row in rows} == {0, 1, 2}


def test_second_run_reads_the_cache(tmp_path: Path) -> None:
    cache = InstructionCache(tmp_path / "c.sqlite")
    first, _ = instruct_samples(samples(100), CountingGenerator(), cache, k=3)
    again_generator = CountingGenerator()
    again, counts = instruct_samples(samples(100), again_generator, InstructionCache(tmp_path / "c.sqlite"), k=3)
    assert again_generator.calls == [] and counts.cache_hits == 6 and counts.generated == 0
    assert [r.model_dump() for r in again] == [r.model_dump() for r in first]
    # A different k (or model, or prompt version) is another cache key.
    _, other = instruct_samples(samples(12), CountingGenerator(), cache, k=2)
    assert other.generated == 6 and len(cache) == 12


def test_bad_inputs_go_to_rejects(tmp_path: Path) -> None:
    rows_in = [*samples(4), ("not an id", "grab", "mug", "lift", None),
               ("grab-" + "f" * 16, "grab", "mug", "fly", None),
               ("grab-" + "e" * 16, "grab", "  ", "lift", None), ("grab-" + "0" * 16, "grab", "cup", "lift", None),
               ("grab-" + "d" * 16, "GRAB!", "cup", "lift", None)]
    rejects: list[Reject] = []
    _, counts = instruct_samples(rows_in, TemplateGenerator(), None, rejects=rejects)
    assert (counts.samples, counts.rows, counts.rejected) == (9, 4, 5) and len(rejects) == 5
    fields = [r.field for r in rejects]
    assert fields == ["sample_id", "affordance", "object_class", "sample_id", "dataset"]
    assert "duplicate" in rejects[3].reason and all(r.stage == "instruct" for r in rejects)


def test_rows_write_to_a_table(tmp_path: Path) -> None:
    rows, _ = instruct_samples(samples(20), TemplateGenerator(), None, k=3)
    write_table(tmp_path / "instructions", rows, InstructionRow)
    write_table(tmp_path / "instructions", rows, InstructionRow)  # a re-run replaces, never duplicates
    frame = open_table(tmp_path / "instructions", InstructionRow).to_pandas()
    assert len(frame) == 20 and set(frame["prompt_version"]) == {"template-v1"}
    assert frame["fallback_reason"].isna().all() and frame["part"].isna().sum() == sum(r.part is None for r in rows)


def test_row_requires_reason_with_fallback() -> None:
    base = dict(sample_id="grab-" + "0" * 16, stage_version="1", dataset="grab", object_class="mug",
                affordance="Handle-grasp", instruction="Grip the mug", variant=0, generator="template",
                model="template", prompt_version="template-v1")
    assert InstructionRow(**base, fallback=False).affordance == "handle-grasp"
    with pytest.raises(ValueError, match="fallback_reason is empty"):
        InstructionRow(**base, fallback=True)
    with pytest.raises(ValueError, match="fallback is False"):
        InstructionRow(**base, fallback=False, fallback_reason="x")


def test_parse_answer_takes_numbered_lists_and_a_dict_holding_one_list():
    from tasks.instruct.prompts import parse_answer

    numbered = '1. "Twist the cap of the bottle to open it."\n2. Turn the bottle\'s cap firmly.\n- Grip the bottle'
    assert parse_answer(numbered, 3) == ["Twist the cap of the bottle to open it.", "Turn the bottle's cap firmly.",
                                         "Grip the bottle"]
    assert parse_answer('{"instructions": ["Pull the bag towards you"]}', 3) == ["Pull the bag towards you"]
    with pytest.raises(ValueError, match="expected a JSON list of strings, got a JSON dict"):
        parse_answer('{"a": ["Pull the bag"], "b": ["Lift the bag"]}', 3)  # two lists: which one is unclear


def test_emitted_rows_stream_in_batches_and_equal_the_returned_rows(tmp_path: Path) -> None:
    """With `emit`, rows go out a batch at a time (the flow writes them straight into the table's shards) and
    nothing is held: same rows, same counts as the list the stage returns without it."""
    listed, counts = instruct_samples(samples(2500), TemplateGenerator(), None, k=3)
    batches: list[list[InstructionRow]] = []
    returned, streamed = instruct_samples(samples(2500), TemplateGenerator(), None, k=3, emit=batches.append)
    assert returned == [] and len(batches) == 3 and max(len(b) for b in batches) < 2500
    assert [r.model_dump() for b in batches for r in b] == [r.model_dump() for r in listed]
    assert streamed == counts and counts.rows == 2500
    with TableWriter(tmp_path / "instructions", InstructionRow) as writer:
        instruct_samples(samples(2500), TemplateGenerator(), None, k=3, emit=writer.write)
    assert open_table(tmp_path / "instructions", InstructionRow).read(["sample_id"]).column(0).to_pylist() == [
        r.sample_id for r in listed]

"""Which instruction generator a run uses, chosen in one place: the configured OpenAI-compatible endpoint, the
embedded one (started for the run and stopped after), or templates; and the run's inputs, one per sample."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from schemas.rows import Sample
from schemas.settings import AffordSettings
from tasks.instruct.generators import (
    GenerationStats,
    Instruction,
    InstructionGenerator,
    InstructionKey,
    OpenAIGenerator,
    TemplateGenerator,
)
from tasks.store.read import open_table


def instruct_inputs(tables: list[Path], labels: dict[str, str]) -> list[tuple[str, str, str, str, str | None]]:
    """(sample_id, dataset, object_class, affordance, part) per sample that has an affordance: its own
    (AffordPose) or its self-training label. Samples with neither are not inputs (nothing to instruct)."""
    rows = []
    columns = ["sample_id", "dataset", "object_category", "affordance"]
    for table in tables:
        # Four columns a batch: the points and hand of each sample are never read for an instruction
        for batch in open_table(table, Sample).iter_batches(columns, batch_rows=4096):
            for sample_id, dataset, category, own in zip(*(batch.column(c).to_pylist() for c in columns),
                                                         strict=True):
                affordance = own or labels.get(sample_id)
                if affordance is not None:
                    rows.append((sample_id, dataset, category, affordance, None))
    return rows


def check_endpoint(kind: str, settings: AffordSettings) -> None:
    """Before a run: when `kind` uses the configured endpoint (openai, or auto with AFFORD_LLM_BASE_URL set), it
    must be configured (ValueError naming the variables), answer and accept the key (EndpointConfigError), so a
    command fails in one line before its flow starts rather than after retries inside it."""
    if kind == "template" or (kind == "auto" and not settings.llm_base_url):
        return
    OpenAIGenerator.from_settings(settings).check()


@contextlib.contextmanager
def chosen_generator(kind: str, settings: AffordSettings) -> Iterator[InstructionGenerator]:
    """`template`; `openai` (the configured endpoint); `auto`: the configured endpoint when there is one, else the
    embedded SmolLM2 server, started here and stopped on exit."""
    if kind == "template":
        yield TemplateGenerator()
    elif kind == "openai" or (kind == "auto" and settings.llm_base_url):
        yield OpenAIGenerator.from_settings(settings)
    elif kind == "auto":
        generator = EmbeddedGenerator(settings)
        try:
            yield generator
        finally:
            generator.close()
    else:
        raise ValueError(f"generator must be auto, openai or template, got {kind!r}")


# Requests in flight to the embedded endpoint. It serves with continuous batching, so they are decoded together:
# BENCHMARKS.md block `llm` (bench/bench_llm.py) has answers/s with batching on and off at 1, 4 and 16 in flight.
# At 4 the server kept only about one of two cores busy; 16 answered more per second. Answers stay the same
# whatever the batch: each request carries its own seed.
EMBEDDED_CONCURRENCY = 16


class EmbeddedGenerator:
    """The embedded SmolLM2 endpoint's generator, started on the first key the cache does not hold: a run whose
    keys are all cached (a re-run, an incremental re-annotation) starts no server and makes no call."""

    name = OpenAIGenerator.name
    prompt_version = OpenAIGenerator.prompt_version

    def __init__(self, settings: AffordSettings) -> None:
        from tasks.instruct.endpoint import EMBEDDED_MODEL, model_dir_path

        self.settings = settings
        self.model_dir = model_dir_path(settings.data_root)  # converted when first needed (ensure_model_dir)
        self.model = EMBEDDED_MODEL  # recorded in rows and the cache
        self._lock = threading.Lock()
        self._endpoint = None
        self._owned = False  # started here (stopped by close) rather than adopted from a warm-up
        self._client: OpenAIGenerator | None = None

    def _started(self) -> OpenAIGenerator:
        with self._lock:  # generate() runs on a thread pool: start once
            if self._client is None:
                from tasks.instruct.endpoint import ensure_model_dir, start_endpoint
                from tasks.instruct.warm_endpoint import adopt

                self._endpoint = adopt(self.model_dir)  # started ahead by the run (warm_endpoint), if it was
                if self._endpoint is None:
                    self._endpoint, self._owned = start_endpoint(ensure_model_dir(self.settings.data_root)), True
                print(f"embedded endpoint {self._endpoint.base_url} serving {self.model_dir} "
                      f"(log {self._endpoint.log_path})")
                # SmolLM2-135M on a CPU writes a few tokens per second: short answers (3 instructions fit in
                # 120 tokens) and a generous timeout, since EMBEDDED_CONCURRENCY requests share the cores.
                self._client = OpenAIGenerator(self._endpoint.base_url, self._endpoint.model,
                                               record_as=self.model, max_tokens=120, seed=self.settings.seed,
                                               timeout_s=max(self.settings.llm_timeout_s, 180.0))
            return self._client

    def generate(self, key: InstructionKey, k: int) -> list[Instruction]:
        return self._started().generate(key, k)

    def stats(self) -> GenerationStats:
        return self._client.stats() if self._client is not None else GenerationStats()

    def close(self) -> None:
        if self._endpoint is not None and not self._owned:
            from tasks.instruct.warm_endpoint import release

            release(self.model_dir)  # started ahead by the run; stopped now that the stage is done
            self._endpoint = None
        if self._endpoint is not None:
            from tasks.instruct.endpoint import stop_endpoint

            stop_endpoint(self._endpoint)
            print(f"embedded endpoint {self._endpoint.base_url} stopped")
            self._endpoint = None


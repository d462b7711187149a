"""The instruct flow: one short imperative instruction per labelled grasp, from its object class and affordance.

Each unique (class, affordance) is generated once and shared by its samples; answers are cached by (model,
prompt version, key), so a re-run on unchanged inputs calls no endpoint. The endpoint is the configured one
(AFFORD_LLM_BASE_URL / _MODEL / _API_KEY), else the embedded SmolLM2 server the flow starts and stops itself;
`generator="template"` needs no model at all and says so in every row.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE

from schemas.data_root import DataRoot
from schemas.instruction import InstructionRow
from schemas.manifest import Lineage
from schemas.rows import AffordanceLabel, Reject, Sample
from schemas.settings import AffordSettings
from tasks.instruct.cache import InstructionCache
from tasks.instruct.generators import (
    GenerationStats,
    Instruction,
    InstructionGenerator,
    InstructionKey,
    OpenAIGenerator,
    TemplateGenerator,
)
from tasks.instruct.report import instructions_markdown
from tasks.instruct.stage import STAGE_VERSION, InstructCounts, instruct_samples
from tasks.store.read import open_table
from tasks.store.write import write_table


def instruct_inputs(tables: list[Path], labels: dict[str, str]) -> list[tuple[str, str, str, str, str | None]]:
    """(sample_id, dataset, object_class, affordance, part) per sample that has an affordance: its own
    (AffordPose) or its self-training label. Samples with neither are not inputs (nothing to instruct)."""
    rows = []
    for table in tables:
        for sample in open_table(table, Sample).iter_rows():
            affordance = sample.affordance or labels.get(sample.sample_id)
            if affordance is not None:
                rows.append((sample.sample_id, sample.dataset, sample.object_category, affordance, None))
    return rows


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


class EmbeddedGenerator:
    """The embedded SmolLM2 endpoint's generator, started on the first key the cache does not hold: a run whose
    keys are all cached (a re-run, an incremental re-annotation) starts no server and makes no call."""

    name = OpenAIGenerator.name
    prompt_version = OpenAIGenerator.prompt_version

    def __init__(self, settings: AffordSettings) -> None:
        from tasks.instruct.endpoint import ensure_model_dir

        self.settings = settings
        self.model = str(ensure_model_dir(settings.data_root))  # what the served endpoint calls its model
        self._lock = threading.Lock()
        self._endpoint = None
        self._client: OpenAIGenerator | None = None

    def _started(self) -> OpenAIGenerator:
        with self._lock:  # generate() runs on a thread pool: start once
            if self._client is None:
                from tasks.instruct.endpoint import start_endpoint

                self._endpoint = start_endpoint(Path(self.model))
                print(f"embedded endpoint {self._endpoint.base_url} serving {self.model} "
                      f"(log {self._endpoint.log_path})")
                # SmolLM2-135M on a CPU writes a few tokens per second and serves one request at a time: short
                # answers (3 instructions fit in 120 tokens), a generous timeout, no point in concurrent requests.
                self._client = OpenAIGenerator(self._endpoint.base_url, self.model,
                                               timeout_s=max(self.settings.llm_timeout_s, 180.0), max_tokens=120)
            return self._client

    def generate(self, key: InstructionKey, k: int) -> list[Instruction]:
        return self._started().generate(key, k)

    def stats(self) -> GenerationStats:
        return self._client.stats() if self._client is not None else GenerationStats()

    def close(self) -> None:
        if self._endpoint is not None:
            from tasks.instruct.endpoint import stop_endpoint

            stop_endpoint(self._endpoint)
            self._endpoint = None


@task(name="generate-instructions", cache_policy=NONE)
def generate_task(inputs: list[tuple[str, str, str, str, str | None]], kind: str, settings: AffordSettings, k: int,
                  out_table: Path) -> InstructCounts:
    rejects: list[Reject] = []
    cache = InstructionCache(DataRoot(settings.data_root).instruction_cache)
    keys = len({(c, a, p) for _, _, c, a, p in inputs})
    progress = create_progress_artifact(progress=0.0, key="instruct-progress", description="Keys generated")
    done = [0]

    def advance(*_: object) -> None:
        done[0] += 1
        update_progress_artifact(progress, progress=100.0 * done[0] / max(keys, 1))

    with chosen_generator(kind, settings) as generator:
        concurrency = 1 if kind == "auto" and not settings.llm_base_url else settings.llm_max_concurrency
        rows, counts = instruct_samples(inputs, generator, cache, k=k, concurrency=concurrency,
                                        rejects=rejects, progress=advance)
    update_progress_artifact(progress, progress=100.0)
    lineage = Lineage(stage="instruct", stage_version=STAGE_VERSION, params={"generator": kind, "k": k})
    write_table(out_table, rows, InstructionRow, lineage=lineage)
    write_table(DataRoot.beside(out_table, "rejects"), rejects, Reject, lineage=lineage)
    return counts


@flow(name="instruct", log_prints=True)
def instruct(tables: list[str], out_table: str, labels_table: str | None = None,
             generator: Literal["auto", "openai", "template"] = "auto", k: int = 3,
             data_root: str | None = None) -> str:
    """Write one instruction per labelled sample of `tables` into `out_table`. `labels_table`: the self-training
    labels (affordance_labels) for samples that carry no affordance of their own. `data_root`: where the answer
    cache and the embedded model live (default AFFORD_DATA_ROOT)."""
    settings = AffordSettings(data_root=data_root) if data_root else AffordSettings()
    labels = ({r.sample_id: r.affordance for r in open_table(labels_table, AffordanceLabel).iter_rows()}
              if labels_table else {})
    inputs = instruct_inputs([Path(t) for t in tables], labels)
    out = Path(out_table)
    counts = generate_task(inputs, generator, settings, k, out)
    markdown = instructions_markdown(counts.summary(), open_table(out, InstructionRow).iter_rows(), out)
    create_markdown_artifact(markdown=markdown, key="instructions", description="Instruction generation summary")
    return markdown

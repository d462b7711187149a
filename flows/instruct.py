"""The instruct flow: one short imperative instruction per labelled grasp, from its object class and affordance.

Each unique (class, affordance) is generated once and shared by its samples; answers are cached by (model,
prompt version, key), so a re-run on unchanged inputs calls no endpoint. The endpoint is the configured one
(AFFORD_LLM_BASE_URL / _MODEL / _API_KEY), else the embedded SmolLM2 server the flow starts and stops itself;
`generator="template"` needs no model at all and says so in every row.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE

from schemas.data_root import DataRoot
from schemas.instruction import InstructionRow
from schemas.manifest import Lineage
from schemas.rows import AffordanceLabel, Reject
from schemas.settings import AffordSettings
from tasks.instruct.cache import InstructionCache
from tasks.instruct.choice import EMBEDDED_CONCURRENCY, chosen_generator, instruct_inputs
from tasks.instruct.generators import Instruction, InstructionKey
from tasks.instruct.report import escape_code
from tasks.instruct.stage import STAGE_VERSION, InstructCounts, instruct_samples
from tasks.report.figures import instruction_figures
from tasks.report.render import render_instructions
from tasks.report.run_files import write_stage
from tasks.runtime.progress_line import bar, time_left
from tasks.store.read import open_table
from tasks.store.write import TableWriter, write_table


@task(name="generate-instructions", cache_policy=NONE)
def generate_task(inputs: list[tuple[str, str, str, str, str | None]], kind: str, settings: AffordSettings, k: int,
                  out_table: Path) -> InstructCounts:
    rejects: list[Reject] = []
    cache = InstructionCache(DataRoot(settings.data_root).instruction_cache)
    keys = len({(c, a, p) for _, _, c, a, p in inputs})
    progress = create_progress_artifact(progress=0.0, key="instruct-progress", description="Keys generated")
    done = {"keys": 0, "texts": 0, "model": 0}
    log = get_run_logger()
    start = time.perf_counter()
    running: list = []  # the generator, once chosen: its request count goes into each line

    def advance(key: InstructionKey, made: list[Instruction]) -> None:
        # A line per generated key: on the embedded CPU endpoint a key takes seconds, and a person watching the
        # terminal should see the stage move, how much of it the model wrote, and how long is left (cache hits
        # are not counted, so the estimate is an upper bound).
        done["keys"] += 1
        done["texts"] += len(made)
        done["model"] += sum(not text.fallback for text in made)
        update_progress_artifact(progress, progress=100.0 * done["keys"] / max(keys, 1))
        elapsed = time.perf_counter() - start
        calls = running[0].stats().calls if running and hasattr(running[0], "stats") else 0
        log.info(f"instructions: key {done['keys']}/{keys} {bar(done['keys'], keys)} ({key.object_class}, "
                 f"{key.affordance}) after {elapsed:.0f} s; {done['model']}/{done['texts']} texts from the model, "
                 f"{calls} requests; at most {time_left(elapsed, done['keys'], keys)}")

    with chosen_generator(kind, settings) as generator:
        running.append(generator)
        concurrency = (EMBEDDED_CONCURRENCY if kind == "auto" and not settings.llm_base_url
                       else settings.llm_max_concurrency)
        lineage = Lineage(stage="instruct", stage_version=STAGE_VERSION, params={"generator": kind, "k": k})
        # Rows stream into the table's shards as they are made: the stage never holds every instruction row
        with TableWriter(out_table, InstructionRow, lineage=lineage) as writer:
            _, counts = instruct_samples(inputs, generator, cache, k=k, concurrency=concurrency,
                                         rejects=rejects, progress=advance, emit=writer.write)
    update_progress_artifact(progress, progress=100.0)
    write_table(DataRoot.beside(out_table, "rejects"), rejects, Reject, lineage=lineage)
    return counts


@flow(name="instruct", log_prints=True)
def instruct(tables: list[str], out_table: str, labels_table: str | None = None,
             generator: Literal["auto", "openai", "template"] = "auto", k: int = 3,
             data_root: str | None = None, seed: int | None = None, reports_dir: str | None = None) -> str:
    """Write one instruction per labelled sample of `tables` into `out_table`. `labels_table`: the self-training
    labels (affordance_labels) for samples that carry no affordance of their own. `data_root`: where the answer
    cache and the embedded model live (default AFFORD_DATA_ROOT). `seed`: the endpoint's sampling seed (default
    AFFORD_SEED). `reports_dir`: where to write the stage's figures (a data root's reports/, as annotate does)."""
    given = {"data_root": data_root or None, "seed": seed}
    settings = AffordSettings(**{name: value for name, value in given.items() if value is not None})
    labels = {}
    if labels_table:  # two columns, not every row model: one id -> class entry per target sample
        data = open_table(labels_table, AffordanceLabel).read(["sample_id", "affordance"]).to_pydict()
        labels = dict(zip(data["sample_id"], data["affordance"], strict=True))
    inputs = instruct_inputs([Path(t) for t in tables], labels)
    out = Path(out_table)
    counts = generate_task(inputs, generator, settings, k, out)
    figures = instruction_figures(counts, open_table(out, InstructionRow).iter_rows())
    if reports_dir:
        write_stage(Path(reports_dir), "instructions", figures)
    markdown = f"{render_instructions(figures)}\n\nTable `{escape_code(str(out.absolute()))}`."
    create_markdown_artifact(markdown=markdown, key="instructions", description="Instruction generation summary")
    return markdown

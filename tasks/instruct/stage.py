"""The instruct stage: one language instruction per sample, generated once per (object class, affordance, part).

Samples sharing a key share one generation of k instructions; each sample takes variant
stable_hash(sample_id) % k, so a sample keeps its instruction across runs. Keys found in the cache cost no
endpoint call; the rest are generated on a bounded thread pool (the endpoint's concurrency, not the CPU's, is
the limit). Inputs that cannot be keyed go to `rejects`: samples = rows + rejected.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from schemas.instruction import InstructionRow
from schemas.rows import SAMPLE_ID_PATTERN, Reject
from tasks.instruct.cache import InstructionCache
from tasks.instruct.generators import (
    ENDPOINT_FAILURE,
    GenerationStats,
    Instruction,
    InstructionGenerator,
    InstructionKey,
    OpenAIGenerator,
    TemplateGenerator,
)
from tasks.runtime.interrupt import check as check_interrupted

STAGE = "instruct"
STAGE_VERSION = "instruct-1"
_EMIT_ROWS = 1024  # rows made (and handed to `emit`) at a time
if TYPE_CHECKING:
    from schemas.settings import AffordSettings

_DATASET_PATTERN = re.compile(r"^[a-z0-9_\-]+$")


class InstructInput(NamedTuple):
    """One sample to instruct; plain 5-tuples in this order work too."""

    sample_id: str
    dataset: str
    object_class: str
    affordance: str
    part: str | None = None


@dataclass(frozen=True)
class InstructCounts:
    """What a run did. samples = rows + rejected; keys = cache_hits + generated;
    endpoint_calls = generated requests + repairs + retries (for an endpoint generator)."""

    samples: int
    rows: int
    rejected: int
    keys: int
    cache_hits: int
    generated: int
    endpoint_calls: int
    retries: int
    repairs: int
    gave_up: int
    fallback_keys: int
    fallback_samples: int
    not_cached: int

    def summary(self) -> str:
        return (f"{self.samples} samples -> {self.rows} instructions + {self.rejected} rejected; {self.keys} keys "
                f"({self.cache_hits} cached, {self.generated} generated, {self.fallback_keys} with template "
                f"fallbacks, {self.not_cached} left uncached after endpoint failures); {self.endpoint_calls} "
                f"endpoint calls ({self.retries} retries, {self.repairs} repairs, {self.gave_up} gave up)")


def stable_variant(sample_id: str, k: int) -> int:
    """variant = sha256(sample_id) mod k: the same on every run and machine (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(sample_id.encode()).digest()[:8], "big") % k


def make_generator(settings: AffordSettings, kind: str = "openai", **overrides: Any) -> InstructionGenerator:
    """The one place a generator is chosen: `openai` (settings' endpoint) or `template` (offline)."""
    if kind == "template":
        return TemplateGenerator()
    if kind == "openai":
        return OpenAIGenerator.from_settings(settings, **overrides)
    raise ValueError(f"generator kind must be 'openai' or 'template', got {kind!r}")


def instruct_samples(rows: Iterable[tuple[str, str, str, str, str | None]], generator: InstructionGenerator,
                     cache: InstructionCache | None, k: int = 3, concurrency: int = 4, *,
                     rejects: list[Reject] | None = None,
                     progress: Callable[[InstructionKey, list[Instruction]], None] | None = None,
                     emit: Callable[[list[InstructionRow]], None] | None = None,
                     ) -> tuple[list[InstructionRow], InstructCounts]:
    """Instruction rows for (sample_id, dataset, object_class, affordance, part) inputs.

    cache: None generates every key. rejects: inputs that cannot be keyed are appended here (stage "instruct").
    progress: called after each key is generated (not for cache hits). emit: when given, rows go to it in
    batches as they are made (e.g. a TableWriter's `write`) and the returned list is empty, so a large input never
    holds all its rows. Raises EndpointConfigError when the endpoint refuses the credentials or model; keys
    finished before that are already cached.
    """
    if k < 1 or concurrency < 1:
        raise ValueError(f"k and concurrency must be >= 1, got k={k}, concurrency={concurrency}")
    rejected: list[Reject] = []
    samples = _keyed(rows, rejected)
    before = _stats(generator)
    keys = list(dict.fromkeys(key for _, _, key in samples))
    found = _cached(keys, generator, cache, k)
    made, not_cached = _generate([key for key in keys if key not in found], generator, cache, k, concurrency,
                                 progress)
    by_key = found | made
    out: list[InstructionRow] = []
    written = fallback_samples = 0
    for start in range(0, len(samples), _EMIT_ROWS):
        batch = [_row(sample_id, dataset, key, by_key[key], k)
                 for sample_id, dataset, key in samples[start:start + _EMIT_ROWS]]
        written += len(batch)
        fallback_samples += sum(row.fallback for row in batch)
        if emit is None:
            out.extend(batch)
        else:
            emit(batch)
    if rejects is not None:
        rejects.extend(rejected)
    spent = _stats(generator) - before
    counts = InstructCounts(
        samples=len(samples) + len(rejected), rows=written, rejected=len(rejected), keys=len(keys),
        cache_hits=len(found), generated=len(made), endpoint_calls=spent.calls, retries=spent.retries,
        repairs=spent.repairs, gave_up=spent.gave_up,
        fallback_keys=sum(any(i.fallback for i in by_key[key]) for key in keys),
        fallback_samples=fallback_samples, not_cached=not_cached)
    return out, counts


def _keyed(rows: Iterable[tuple], rejected: list[Reject]) -> list[tuple[str, str, InstructionKey]]:
    """(sample_id, dataset, base key) per usable input; the rest become rejects (first of a duplicate id wins)."""
    samples, seen = [], set()
    for row in rows:
        sample_id, dataset, object_class, affordance, part = InstructInput(*row)
        problem = None
        if not isinstance(sample_id, str) or not re.fullmatch(SAMPLE_ID_PATTERN, sample_id):
            problem = ("sample_id", f"sample_id {sample_id!r} does not match {SAMPLE_ID_PATTERN}")
        elif sample_id in seen:
            problem = ("sample_id", f"duplicate sample_id {sample_id!r} in the input")
        elif not isinstance(dataset, str) or not _DATASET_PATTERN.fullmatch(dataset):
            problem = ("dataset", f"dataset {dataset!r} does not match {_DATASET_PATTERN.pattern}")
        else:
            try:
                samples.append((sample_id, dataset, InstructionKey(object_class, affordance, part)))
                seen.add(sample_id)
            except (ValueError, TypeError, AttributeError) as error:
                text = str(error)  # InstructionKey names the field first for a bad name: "part 'x' holds ..."
                field = next((f for f in ("object_class", "part") if text.startswith(f"{f} ")),
                             "affordance" if "affordance" in text else "object_class")
                problem = (field, f"{field}: {error}")
        if problem:
            rejected.append(Reject(sample_id=_reject_id(sample_id, dataset), stage_version=STAGE_VERSION,
                                   stage=STAGE, source="instruct input", reason=problem[1], field=problem[0],
                                   dataset=dataset if isinstance(dataset, str) else None))
    return samples


def _cached(keys: list[InstructionKey], generator: InstructionGenerator, cache: InstructionCache | None,
            k: int) -> dict[InstructionKey, list[Instruction]]:
    if cache is None:
        return {}
    hits = {key: cache.get(generator.model, generator.prompt_version, key, k) for key in keys}
    return {key: hit for key, hit in hits.items() if hit is not None}


def _reject_id(sample_id: object, dataset: object) -> str:
    """A Reject needs a valid sample_id; a malformed one is replaced by a stable id derived from it."""
    if isinstance(sample_id, str) and re.fullmatch(SAMPLE_ID_PATTERN, sample_id):
        return sample_id
    prefix = dataset if isinstance(dataset, str) and _DATASET_PATTERN.fullmatch(dataset) else "invalid"
    return f"{prefix}-{hashlib.sha256(repr(sample_id).encode()).hexdigest()[:16]}"


def _generate(keys: list[InstructionKey], generator: InstructionGenerator, cache: InstructionCache | None, k: int,
              concurrency: int, progress: Callable | None) -> tuple[dict[InstructionKey, list[Instruction]], int]:
    """Generate the keys on a pool of `concurrency` threads; cache each as it lands (in this thread, so a crash
    keeps the finished ones). Returns the instructions and how many keys were left out of the cache."""
    made: dict[InstructionKey, list[Instruction]] = {}
    not_cached = 0
    if not keys:
        return made, not_cached
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(keys)), thread_name_prefix="instruct")
    try:
        futures: dict[Future, InstructionKey] = {pool.submit(generator.generate, key, k): key for key in keys}
        for future in as_completed(futures):
            check_interrupted()  # a Ctrl-C swallowed elsewhere still stops the stage at the next key
            key, instructions = futures[future], future.result()
            if len(instructions) != k:
                raise RuntimeError(f"{generator.name} returned {len(instructions)} instructions for {key}, not {k}")
            made[key] = instructions
            if cache is None:
                pass
            elif _cacheable(instructions):
                cache.put(generator.model, generator.prompt_version, key, k, instructions)
            else:
                not_cached += 1
            if progress:
                progress(key, instructions)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error: drop queued keys, let running ones end
    return made, not_cached


def _cacheable(instructions: list[Instruction]) -> bool:
    """An endpoint outage is transient: keys that fell back because of it are generated again next run. A
    fallback for an unusable answer is kept (asking the same model the same prompt would likely repeat it)."""
    return not any(i.fallback and (i.reason or "").startswith(ENDPOINT_FAILURE) for i in instructions)


def _row(sample_id: str, dataset: str, key: InstructionKey, instructions: list[Instruction], k: int) -> InstructionRow:
    chosen = instructions[stable_variant(sample_id, k)]
    return InstructionRow(sample_id=sample_id, stage_version=STAGE_VERSION, dataset=dataset,
                          object_class=key.object_class, affordance=key.affordance, part=key.part,
                          instruction=chosen.text, variant=chosen.variant, generator=chosen.generator,
                          model=chosen.model, prompt_version=chosen.prompt_version, fallback=chosen.fallback,
                          fallback_reason=chosen.reason)


def _stats(generator: InstructionGenerator) -> GenerationStats:
    stats = getattr(generator, "stats", None)
    return stats() if callable(stats) else GenerationStats()

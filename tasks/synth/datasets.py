"""Synthetic datasets in the real on-disk formats of AffordPose, OakInk-Shape, GRAB and HO-3D.

Objects come from tasks.synth.objects, grasps from tasks.synth.grasps, files from each format's writer, so
the loaders read them exactly as they read the real datasets. Each dataset gets its own objects (a seed
offset per dataset; OakInk only the classes OakInk has, named and numbered as oikit reads them). AffordPose
keeps its affordance labels and a posed GraspIt!-ManoHand-style hand mesh (tasks.synth.manohand); the other
three are written unlabelled, with MANO parameters, as the real ones are.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from models.mano import ManoLayer
from models.mano_pickle import ManoParams, load_mano_pickle
from models.synthetic_hand import write_synthetic_mano
from tasks.ingest.common import GraspRecord
from tasks.ingest.formats import get_format, writable_formats
from tasks.ingest.mano_frame import HandTemplate
from tasks.synth.grasps import SynthGrasp, synthesize_grasps
from tasks.synth.manohand import manohand_from_mano
from tasks.synth.objects import CATEGORIES, SynthObject, make_object
from tasks.synth.stable_grasps import drop_displacements, keep_most_stable
from tasks.synth.truth import write_truth

DATASETS = writable_formats()  # every registered format the project can write
OAKINK_INTENTS = ("use", "hold", "liftup", "handover")
GRAB_ACTIONS = ("lift", "pass", "use", "inspect")
# The synthetic OakInk set holds the objects whose class OakInk has, under oikit's category name (oikit reads only
# its own 34 categories, tasks/ingest/oakink.py OIKIT_CATEGORIES); the other 7 classes have no OakInk counterpart.
OAKINK_CATEGORIES = {"bottle": "bottle", "mug": "mug", "knife": "knife", "scissors": "scissors",
                     "dispenser": "lotion_pump", "earphone": "headphones"}


@dataclass
class SynthSummary:
    """Where everything went and how many grasps each dataset holds."""

    root: Path
    mano_root: Path
    grasps: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)


def dataset_dir(root: Path, dataset: str) -> Path:
    return root / dataset


def synthesize_datasets(out: str | Path, objects_per_category: int | Mapping[str, int] = 1, seed: int = 0,
                        grasps_per_part: int | Mapping[str, int] = 1, steps: int = 60,
                        progress: Callable[[str, int, int], None] | None = None,
                        categories: Sequence[str] | None = None,
                        datasets: Sequence[str] = DATASETS, workers: int | None = None,
                        candidates: int | Mapping[str, int] = 1) -> SynthSummary:
    """Write the MANO pickles and the datasets (default: all four) under `out`; `progress(dataset, done, total)`
    per object. `categories` restricts the object categories (default: all 13). `objects_per_category` and
    `grasps_per_part` are one number for every dataset or a {dataset: number} map (missing datasets: 1), e.g. a
    larger labelled AffordPose set to train the affordance classifier on. `candidates` (same forms) > 1 synthesises
    that many times the grasps and keeps, per part, the ones that hold the object best in the drop test.

    Each object's grasps are refined from their own seed ([seed, dataset offset, object index]), so objects go to
    `workers` processes (default: one per core when there are PARALLEL_MIN_OBJECTS objects or more) and the files
    are the same whatever the number of workers."""
    unknown = sorted(set(categories or ()) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"categories: unknown {unknown}; expected names from {', '.join(CATEGORIES)}")
    if not datasets or set(datasets) - set(DATASETS):
        raise ValueError(f"datasets: expected a non-empty subset of {', '.join(DATASETS)}, got {list(datasets)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    objects = _per_dataset("objects_per_category", objects_per_category)
    grasps = _per_dataset("grasps_per_part", grasps_per_part)
    pick = _per_dataset("candidates", candidates)
    root = Path(out)
    mano_root = root / "mano"
    write_synthetic_mano(mano_root)
    template = HandTemplate.from_mano(load_mano_pickle(mano_root / "MANO_RIGHT.pkl"))
    summary = SynthSummary(root=root, mano_root=mano_root)
    rngs, jobs = {}, []
    for offset, dataset in enumerate(DATASETS):
        if dataset not in datasets:
            continue
        rngs[dataset] = rng = np.random.default_rng([seed, offset])
        made = [make_object(c, rng, _object_id(dataset, c, i)) for c in _categories(dataset, categories or CATEGORIES)
                for i in range(objects[dataset])]
        jobs += [ObjectJob(obj, dataset, grasps[dataset], (seed, offset, index), steps, pick[dataset])
                 for index, obj in enumerate(made)]
    results = object_grasps(jobs, mano_root, workers, progress)
    for dataset, rng in rngs.items():
        mine = [result for job, result in zip(jobs, results, strict=True) if job.dataset == dataset]
        records = [record for found, _ in mine for record in found]
        files = _write(dataset, dataset_dir(root, dataset), records, rng, template)
        if not get_format(dataset).labelled:  # the unlabelled ones: truth kept aside for the simulated reviewer
            write_truth(root, dataset, records, [a for _, made in mine for a in made])
        summary.grasps[dataset], summary.files[dataset] = len(records), len(files)
    return summary


class ObjectJob(NamedTuple):
    """One object's grasps to synthesise: `per_part` grasps per graspable part from the seed `seed_key`; with
    `candidates` > 1, the `per_part` that hold the object best of `candidates x per_part` per part
    (tasks/synth/stable_grasps.py)."""

    obj: SynthObject
    dataset: str
    per_part: int
    seed_key: tuple[int, int, int]
    steps: int
    candidates: int = 1


# Below this many objects the work stays in this process: a worker process costs a few seconds to start (it
# imports torch), about what a few objects take to refine.
PARALLEL_MIN_OBJECTS = 16


def object_grasps(jobs: Sequence[ObjectJob], mano_root: Path, workers: int | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> list[tuple[list[GraspRecord], list[str]]]:
    """(writer records, affordances) per job, in the jobs' order, refined in `workers` processes (None: one per
    core, or this process alone below PARALLEL_MIN_OBJECTS jobs). Every job runs on one torch thread: the
    refinement's tensors are small, so a second thread barely shortens a job while a second process halves the
    whole, and a fixed count keeps the floating-point sums, hence the files, the same however the jobs are spread."""
    count = workers or (min(os.cpu_count() or 1, len(jobs)) if len(jobs) >= PARALLEL_MIN_OBJECTS else 1)
    totals = {d: sum(j.dataset == d for j in jobs) for d in dict.fromkeys(j.dataset for j in jobs)}
    done = dict.fromkeys(totals, 0)

    def advance(job: ObjectJob) -> None:
        done[job.dataset] += 1
        if progress:
            progress(job.dataset, done[job.dataset], totals[job.dataset])

    if count <= 1:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _load_worker_model(mano_root)
            results = []
            for job in jobs:
                results.append(_run_job(job))
                advance(job)
            return results
        finally:
            torch.set_num_threads(previous)
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(count, mp_context=context, initializer=_load_worker_model,
                             initargs=(mano_root,)) as pool:
        futures = [pool.submit(_run_job, job) for job in jobs]
        try:
            for future, job in zip(futures, jobs, strict=True):
                future.result()
                advance(job)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]


_WORKER: dict[str, tuple[ManoParams, ManoLayer]] = {}


def _load_worker_model(mano_root: Path) -> None:
    """Per process, once: the MANO model read back through the loader a user's MANO_RIGHT.pkl goes through."""
    torch.set_num_threads(1)
    key = str(mano_root)
    if key not in _WORKER:
        params = load_mano_pickle(Path(mano_root) / "MANO_RIGHT.pkl")
        _WORKER[key] = params, ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    _WORKER["current"] = _WORKER[key]


def _run_job(job: ObjectJob) -> tuple[list[GraspRecord], list[str]]:
    params, layer = _WORKER["current"]
    rng = np.random.default_rng(list(job.seed_key))
    synthesized = synthesize_grasps(job.obj, params, layer, job.per_part * job.candidates, rng, steps=job.steps)
    if job.candidates > 1:
        displacement = drop_displacements(job.obj, synthesized, np.asarray(params.f, np.int64))
        synthesized = keep_most_stable(synthesized, displacement, job.per_part)
    records = [_record(job.obj, g, job.dataset, i, rng, params, layer) for i, g in enumerate(synthesized)]
    return records, [g.affordance for g in synthesized]


def _categories(dataset: str, categories: Sequence[str]) -> list[str]:
    """The object categories a dataset gets: OakInk only those it has itself (OAKINK_CATEGORIES)."""
    return [c for c in categories if c in OAKINK_CATEGORIES] if dataset == "oakink" else list(categories)


def _object_id(dataset: str, category: str, index: int) -> str:
    """OakInk: 6 characters as oikit requires ("S" + category number + object number); else readable."""
    if dataset == "oakink":
        return f"S{CATEGORIES.index(category):02d}{index:03d}"
    return f"{dataset[:2]}{category.replace('-', '')}{index:03d}"


def _per_dataset(name: str, value: int | Mapping[str, int]) -> dict[str, int]:
    """{dataset: count} from one count or a partial map; ValueError naming the parameter and the bad entry."""
    table = {d: value for d in DATASETS} if isinstance(value, int) else {d: 1 for d in DATASETS} | dict(value)
    unknown = sorted(set(table) - set(DATASETS))
    if unknown:
        raise ValueError(f"{name}: unknown datasets {unknown}; expected names from {', '.join(DATASETS)}")
    for dataset, count in table.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"{name} must be >= 1, got {count!r} for {dataset}")
    return table


def _record(obj: SynthObject, grasp: SynthGrasp, dataset: str, index: int, rng: np.random.Generator,
            params: ManoParams, layer: ManoLayer) -> GraspRecord:
    """A writer record; only AffordPose keeps the affordance (the others are the unlabelled targets). A format
    that stores its own hand mesh (AffordPose: GraspIt!'s ManoHand) gets one built around the MANO grasp."""
    fmt = get_format(dataset)
    intent = {"oakink": OAKINK_INTENTS[index % 4], "grab": GRAB_ACTIONS[index % 4]}.get(dataset)
    hand = {}
    if fmt.hand_model == "graspit_manohand":
        built = manohand_from_mano(grasp.verts, grasp.pose, params)
        hand = {"hand_verts": built.vertices, "hand_faces": built.faces, "hand_dofs": built.dofs,
                "palm_rotation": built.palm_rotation, "palm_translation": built.palm_translation}
    elif fmt.labelled:
        hand = {"hand_verts": grasp.verts, "hand_faces": params.f}
    else:  # the MANO datasets: joints for the formats that store them (HO-3D's handJoints3D)
        hand = {"hand_joints": _joints(layer, grasp)}
    category = OAKINK_CATEGORIES[obj.category] if dataset == "oakink" else obj.category
    return GraspRecord(
        category=category, object_id=obj.object_id, object_vertices=obj.vertices, object_faces=obj.faces,
        object_vertex_labels=obj.vertex_labels, affordance=grasp.affordance if fmt.labelled else None,
        intent=intent, hand_pose=grasp.pose, hand_betas=grasp.betas, hand_trans=grasp.trans, **hand,
        # GRAB: one subject per object, its betas shared by the sequence; frames are the object's grasps.
        subject=f"s{1 + int(rng.integers(0, 10))}" if dataset == "grab" else None,
        sequence=None, frame=index)


def _joints(layer: ManoLayer, grasp: SynthGrasp) -> np.ndarray:
    """(21, 3) MANO joints of the grasp, metres, object frame (manopth order)."""
    with torch.no_grad():
        inputs = (torch.tensor(np.asarray(a, np.float32))[None] for a in (grasp.pose, grasp.betas, grasp.trans))
        joints = layer(*inputs)[1]
    return joints[0].numpy().astype(np.float64) / 1000.0


def _write(dataset: str, root: Path, records: list[GraspRecord], rng: np.random.Generator,
           template: HandTemplate) -> list[Path]:
    if dataset == "grab":  # a GRAB sequence holds one subject's frames
        records = _one_subject_per_sequence(records)
    return get_format(dataset).write(root, records, rng, template)


def _one_subject_per_sequence(records: list[GraspRecord]) -> list[GraspRecord]:
    """A GRAB sequence is one subject on one object, and a subject has one hand (one vtemp, one set of betas):
    each object's frames take its first record's subject, each subject its first record's betas."""
    subject_of: dict[str, GraspRecord] = {}
    betas_of: dict[str, np.ndarray] = {}
    out = []
    for record in records:
        lead = subject_of.setdefault(record.object_id, record)
        betas = betas_of.setdefault(lead.subject, lead.hand_betas)
        frame = sum(r.object_id == record.object_id for r in out)
        out.append(GraspRecord(**{**record.__dict__, "subject": lead.subject, "hand_betas": betas,
                                  "sequence": f"{record.object_id}_{lead.intent}_1", "frame": frame}))
    return out

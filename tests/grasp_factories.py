"""Small synthetic annotated tables for the grasp generator's tests: valid MANO grasps around simple objects."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from schemas.annotated import AnnotatedRow
from tasks.store.write import write_table

INSTRUCTIONS = ("Grip the handle of the mug securely", "Press the top of the bottle", "Lift the pot by its rim")
AFFORDANCES = ("handle-grasp", "press", "lift")


def sphere_points(n: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) float32 points on a sphere of `radius` metres at the origin."""
    points = rng.normal(size=(n, 3))
    return (points / np.linalg.norm(points, axis=1, keepdims=True) * radius).astype(np.float32)


def annotated_rows(n: int = 12, num_points: int = 200, seed: int = 0, affordpose: int = 2,
                   other_split: int = 1) -> list[AnnotatedRow]:
    """`n` train rows with MANO parameters (small random poses, the generated hand's palm on a 3-5 cm sphere), then
    `affordpose` rows with hand_verts only and `other_split` val rows: n + affordpose + other_split rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n + affordpose + other_split):
        kind = "oakink" if i < n or i >= n + affordpose else "affordpose"
        radius = 0.03 + 0.01 * (i % 3)
        points = sphere_points(num_points, radius, rng)
        top = points[:, 2] > 0 if i % 2 else points[:, 0] > 0
        digest = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
        row = dict(
            sample_id=f"{kind}-{digest[:16]}", stage_version="test", dataset=kind,
            split="train" if i < n + affordpose else "val", content_hash=digest, object_id=f"obj{i % 4}",
            object_class="mug", affordance=AFFORDANCES[i % 3], label_source="ground_truth",
            instruction=INSTRUCTIONS[i % 3], instruction_generator="template", prompt_version="t",
            object_points=points, affordance_map=top.astype(np.float32), map_source="part_labels")
        if kind == "affordpose":
            row["hand_verts"] = rng.normal(scale=0.05, size=(778, 3)).astype(np.float32)
        else:
            pose = rng.normal(scale=0.15, size=48).astype(np.float32)
            row.update(hand_pose=pose, hand_betas=rng.normal(scale=0.3, size=10).astype(np.float32),
                       hand_trans=(np.array([-0.07, -0.032 - radius, -0.02])  # palm (+y) on the sphere
                                   + rng.normal(scale=0.005, size=3)).astype(np.float32))
        rows.append(AnnotatedRow.model_validate(row))
    return rows


def write_annotated(path: Path, **options) -> list[AnnotatedRow]:
    rows = annotated_rows(**options)
    write_table(path, rows, AnnotatedRow, rows_per_shard=8)
    return rows


def fake_embed(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for the sentence encoder (saves its ~6 s load): (T, 384), one vector per text."""
    out = np.zeros((len(texts), 384), np.float32)
    for i, text in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).normal(scale=0.05, size=384)
    return out


def single_thread() -> Iterator[None]:
    """For a module-scoped autouse fixture: tiny models run fastest on one thread, and on a loaded 2-core machine
    two threads per process make them several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""The grasp generator's training data: the annotated table's rows with MANO parameters, held in memory.

One item: the MANO vector (61: betas 10, global rotation 3, finger pose 45 axis-angle, translation 3), the hand
vertices (778, 3) from the MANO layer, `num_points` object points with outward normals and their affordance map,
the instruction's sentence embedding (384, computed once per distinct text) and the affordance label.
AffordPose rows carry a hand mesh but no MANO parameters: they are counted (`skipped_no_mano`) and left out, as
are rows of other splits and rows with non-finite values (`skipped_invalid`, with their ids).
Memory: about 4 * (61 + 778*3 + 7 N) bytes per item, 94 KB at N = 3000: 100k grasps fit in 10 GB.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from models.grasp_losses import estimate_normals
from models.hand_autoencoder import mano_vector, mano_vertices
from models.mano import ManoLayer
from schemas.affordance import affordance_index
from schemas.annotated import AnnotatedRow
from tasks.store.read import open_table

Embedder = Callable[[list[str]], np.ndarray]  # texts -> (T, 384) float32
_MANO_BATCH = 256


def mano_layer(mano_root: str | Path | None = None) -> tuple[ManoLayer, str]:
    """(right-hand MANO layer, what it is): `mano_root`, else AFFORD_MANO_ROOT, else the generated hand.

    Full axis-angle finger pose (use_pca=False) and a flat mean, matching how the datasets store MANO.
    """
    from models.mano_pickle import load_mano_pickle, mano_file

    root = mano_root or os.environ.get("AFFORD_MANO_ROOT")
    if root:
        params, origin = load_mano_pickle(mano_file(root, "right")), str(root)
    else:
        from models.synthetic_hand import build_synthetic_hand

        params, origin = build_synthetic_hand("right"), "generated"
    return ManoLayer(use_pca=False, flat_hand_mean=True, params=params).eval(), origin


def sentence_embedder() -> Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean-pooled tokens), 384-d; loads the model on first call."""
    from models.text_encoder import TextEncoder

    encoder: list[TextEncoder] = []

    def embed(texts: list[str]) -> np.ndarray:
        if not encoder:
            encoder.append(TextEncoder())
        return encoder[0].encode(texts).sentence.float().numpy()
    return embed


@dataclass
class GraspItems:
    """Stacked arrays of M training grasps (float32 unless noted)."""

    sample_ids: list[str]
    mano: np.ndarray  # (M, 61)
    hand_verts: np.ndarray  # (M, 778, 3) metres
    object_points: np.ndarray  # (M, N, 3) metres
    object_normals: np.ndarray  # (M, N, 3) unit, outward
    affordance_map: np.ndarray  # (M, N) in [0, 1]
    affordance: np.ndarray  # (M,) int64 class index
    text_ids: np.ndarray  # (M,) int64 into texts
    texts: list[str]
    text_embeddings: np.ndarray  # (T, 384)
    rows_read: int = 0
    skipped_no_mano: int = 0
    skipped_split: int = 0
    skipped_invalid: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def subset(self, index: Sequence[int] | np.ndarray) -> GraspItems:
        index = np.asarray(index, dtype=np.int64)
        return GraspItems([self.sample_ids[i] for i in index], self.mano[index], self.hand_verts[index],
                          self.object_points[index], self.object_normals[index], self.affordance_map[index],
                          self.affordance[index], self.text_ids[index], self.texts, self.text_embeddings,
                          self.rows_read, self.skipped_no_mano, self.skipped_split, list(self.skipped_invalid))

    def summary(self) -> str:
        return (f"{self.rows_read} rows read: {len(self)} grasps with MANO parameters used; "
                f"{self.skipped_no_mano} without MANO parameters (AffordPose meshes) skipped; "
                f"{self.skipped_split} of other splits skipped; {len(self.skipped_invalid)} invalid skipped")


class GraspDataset(Dataset):
    """A map-style dataset over GraspItems; `batch(index)` gathers a whole batch with one indexing op."""

    def __init__(self, items: GraspItems) -> None:
        self.items = items
        self.tensors = {
            "mano": torch.from_numpy(items.mano), "hand_verts": torch.from_numpy(items.hand_verts),
            "object_points": torch.from_numpy(items.object_points),
            "object_normals": torch.from_numpy(items.object_normals),
            "affordance_map": torch.from_numpy(items.affordance_map),
            "affordance": torch.from_numpy(items.affordance),
            "text": torch.from_numpy(items.text_embeddings)[torch.from_numpy(items.text_ids)],
        }

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: value[index] for name, value in self.tensors.items()}

    def batch(self, index: torch.Tensor, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        """index: (B,) long -> each field stacked, (B, ...), moved to `device`."""
        return {name: value[index].to(device or "cpu", non_blocking=True) for name, value in self.tensors.items()}


def resample(points: np.ndarray, values: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """`count` of the (N, 3) points with their (N,) values: a random subset, or with repeats when N < count."""
    index = rng.choice(len(points), size=count, replace=len(points) < count)
    return points[index], values[index]


def _valid(row: AnnotatedRow) -> bool:
    arrays = (row.hand_pose, row.hand_betas, row.hand_trans, row.object_points, row.affordance_map)
    return (len(row.object_points) >= 3 and len(row.affordance_map) == len(row.object_points)
            and all(np.isfinite(a).all() for a in arrays))


def items_from_rows(rows: Iterable[AnnotatedRow], mano: ManoLayer, embed: Embedder, num_points: int = 3000,
                    splits: Sequence[str] | None = ("train",), seed: int = 0) -> GraspItems:
    """Collect the usable rows, resample each cloud to `num_points`, estimate normals, run MANO, embed texts."""
    if num_points < 16:
        raise ValueError(f"num_points must be >= 16, got {num_points}")
    kept: list[AnnotatedRow] = []
    read = no_mano = other_split = 0
    invalid: list[str] = []
    for row in rows:
        read += 1
        if splits is not None and row.split not in splits:
            other_split += 1
        elif row.hand_pose is None or row.hand_betas is None or row.hand_trans is None:
            no_mano += 1
        elif not _valid(row):
            invalid.append(row.sample_id)
        else:
            kept.append(row)
    points, maps, normals = [], [], []
    for i, row in enumerate(kept):  # per-row stream: the same row always gets the same points
        p, v = resample(row.object_points, row.affordance_map, num_points, np.random.default_rng([seed, i]))
        points.append(p)
        maps.append(np.clip(v, 0, 1))
        normals.append(estimate_normals(p))
    vectors = np.stack([row_mano_vector(r) for r in kept]) if kept else np.zeros((0, 61), np.float32)
    texts = list(dict.fromkeys(r.instruction for r in kept))
    text_index = {t: i for i, t in enumerate(texts)}
    return GraspItems(
        sample_ids=[r.sample_id for r in kept], mano=vectors.astype(np.float32),
        hand_verts=hand_vertices(mano, vectors), object_points=_stack(points, (num_points, 3)),
        object_normals=_stack(normals, (num_points, 3)), affordance_map=_stack(maps, (num_points,)),
        affordance=np.array([affordance_index(r.affordance) for r in kept], dtype=np.int64),
        text_ids=np.array([text_index[r.instruction] for r in kept], dtype=np.int64), texts=texts,
        text_embeddings=(np.asarray(embed(texts), np.float32) if texts else np.zeros((0, 384), np.float32)),
        rows_read=read, skipped_no_mano=no_mano, skipped_split=other_split, skipped_invalid=invalid)


def row_mano_vector(row: AnnotatedRow) -> np.ndarray:
    """A row's MANO parameters (it must have them) as the (61,) float32 vector the models use."""
    return mano_vector(*(torch.tensor(np.asarray(a, np.float32))[None]  # a copy: table arrays are read-only
                         for a in (row.hand_pose, row.hand_betas, row.hand_trans)))[0].numpy()


def _stack(arrays: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(arrays).astype(np.float32) if arrays else np.zeros((0, *shape), np.float32)


@torch.no_grad()
def hand_vertices(mano: ManoLayer, vectors: np.ndarray) -> np.ndarray:
    """MANO vectors (M, 61) -> vertices (M, 778, 3) metres, in batches."""
    out = np.zeros((len(vectors), 778, 3), np.float32)
    for start in range(0, len(vectors), _MANO_BATCH):
        batch = torch.from_numpy(np.ascontiguousarray(vectors[start:start + _MANO_BATCH], np.float32))
        out[start:start + _MANO_BATCH] = mano_vertices(mano, batch).numpy()
    return out


def load_grasp_items(table: str | Path, mano: ManoLayer, embed: Embedder | None = None, num_points: int = 3000,
                     splits: Sequence[str] | None = ("train",), seed: int = 0) -> GraspItems:
    """The annotated table at `table` -> GraspItems (see `items_from_rows`)."""
    rows = open_table(table, AnnotatedRow).iter_rows()
    return items_from_rows(rows, mano, embed or sentence_embedder(), num_points, splits, seed)


def rank_indices(count: int, rank: int, world: int) -> np.ndarray:
    """The items one distributed rank trains on: every world-th item from `rank` (disjoint, covering)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank {rank}, world {world}")
    return np.arange(rank, count, world)

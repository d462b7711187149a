"""Generate grasps with a trained grasp generator: DDIM in the hand latent -> DAM -> AE decoder -> MANO mesh.

One pass per batch of K grasps, no test-time optimisation. Deterministic for a fixed seed: the initial noise comes
from a seeded CPU generator and every module runs in eval mode.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from models.device import resolve_device
from models.hand_autoencoder import mano_vertices
from tasks.grasp.config import GraspModelConfig, GraspTrainConfig
from tasks.grasp.data import Embedder, mano_layer, sentence_embedder
from tasks.grasp.model import GraspModels, read_checkpoint


@dataclass
class GraspGenerator:
    models: GraspModels
    train_config: GraspTrainConfig
    meta: dict[str, Any]
    path: Path | None = None


def load_grasp_generator(path: str | Path, device: str = "auto", mano_root: str | Path | None = None
                         ) -> GraspGenerator:
    """A checkpoint written by training (grasp_model.pt or checkpoints/last.pt), in eval mode on `device`.

    The MANO model: `mano_root`, else the one the checkpoint was trained with (its folder, or the generated hand).
    """
    raw = read_checkpoint(path)
    meta = dict(raw.get("meta", {}))
    origin = meta.get("mano_origin", "generated")
    mano, _ = mano_layer(mano_root or (None if origin == "generated" else origin))
    models = GraspModels(GraspModelConfig.from_dict(raw["model_config"]), mano)
    try:
        models.load_trained_state(raw["state"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path}: weights do not fit the saved config ({exc})") from None
    train_config = GraspTrainConfig(**{k: tuple(v) if isinstance(v, list) else v
                                       for k, v in raw["train_config"].items()})
    return GraspGenerator(models.to(resolve_device(device)).eval(), train_config, meta, Path(path))


@dataclass(frozen=True)
class Sampling:
    """The sampler's settings for a whole evaluation; None: the checkpoint's training config's."""

    guidance: float | None = None  # classifier-free guidance scale w
    ddim_steps: int | None = None

    def described(self, train_config: GraspTrainConfig) -> dict[str, float | int | str]:
        """The settings in effect with `train_config`'s defaults, and where each came from."""
        return {"guidance": train_config.guidance if self.guidance is None else self.guidance,
                "ddim_steps": train_config.ddim_steps if self.ddim_steps is None else self.ddim_steps,
                "from": ", ".join(f"{name} {'given' if getattr(self, name) is not None else 'training config'}"
                                  for name in ("guidance", "ddim_steps"))}


class Grasps(NamedTuple):
    mano: np.ndarray  # (K, 61) refined by the DAM
    verts: np.ndarray  # (K, 778, 3) metres
    coarse_mano: np.ndarray  # (K, 61) decoded straight from the diffusion latent, before the DAM


@torch.no_grad()
def sample_grasps(generator: GraspGenerator, object_points: np.ndarray, affordance_map: np.ndarray,
                  text_embedding: np.ndarray, k: int, seed: int = 0, ddim_steps: int | None = None,
                  guidance: float | None = None) -> Grasps:
    """K grasps of one object. object_points: (N, 3) metres; affordance_map: (N,) in [0, 1];
    text_embedding: (384,). ddim_steps / guidance default to the training config's."""
    points = np.asarray(object_points, np.float32)
    values = np.asarray(affordance_map, np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 16:
        raise ValueError(f"object_points must be (N, 3) with N >= 16, got {points.shape}")
    if values.shape != (len(points),):
        raise ValueError(f"affordance_map must be ({len(points)},), got {values.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    models, config = generator.models, generator.train_config
    device = next(models.parameters()).device
    condition = models.diffusion.condition(
        torch.from_numpy(points)[None].expand(k, -1, -1).to(device),
        torch.from_numpy(values)[None].expand(k, -1).to(device),
        torch.as_tensor(np.asarray(text_embedding, np.float32))[None].expand(k, -1).to(device))
    noise = torch.Generator().manual_seed(seed)
    coarse = models.diffusion.sample(condition, ddim_steps or config.ddim_steps,
                                     config.guidance if guidance is None else guidance, noise)
    mano = models.ae.decode(models.dam(coarse, condition.tokens))
    verts = mano_vertices(models.mano, mano)
    return Grasps(mano.float().cpu().numpy(), verts.float().cpu().numpy(),
                  models.ae.decode(coarse).float().cpu().numpy())


def object_from_mesh(path: str | Path, num_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(surface points (num_points, 3), vertices (V, 3), faces (F, 3)) of a mesh file in metres (OBJ, PLY, STL...)."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"object mesh {path}: no such file")
    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as exc:  # trimesh raises many kinds for a foreign file
        raise ValueError(f"object mesh {path}: cannot be read ({exc})") from None
    if len(mesh.faces) == 0:
        raise ValueError(f"object mesh {path}: has no faces")
    points, _ = trimesh.sample.sample_surface(mesh, num_points, seed=seed)
    return points.astype(np.float32), np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64)


def render_grasps(path: str | Path, object_vertices: np.ndarray, object_faces: np.ndarray, hand_verts: np.ndarray,
                  hand_faces: np.ndarray, title: str = "", columns: int = 2) -> Path:
    """One PNG: a grid of K panels, each grasp from two views (ops.render.render_pair), titled #i."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ops.render import render_pair

    with tempfile.TemporaryDirectory() as tmp:
        tiles = [plt.imread(render_pair(Path(tmp) / f"{i}.png", object_vertices, object_faces, verts, hand_faces,
                                        title=f"#{i}", size_px=240)) for i, verts in enumerate(hand_verts)]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    blank = np.ones_like(tiles[0])
    grid = [np.concatenate([tiles[r * columns + c] if r * columns + c < len(tiles) else blank
                            for c in range(columns)], 1) for r in range(rows)]
    image = np.concatenate(grid, 0)
    figure = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100 + 0.3), dpi=100)
    figure.figimage(image, 0, 0)
    if title:
        figure.suptitle(title, fontsize=9)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def instruction_embedding(text: str, embed: Embedder | None = None) -> np.ndarray:
    """(384,) sentence embedding of one instruction."""
    if not text.strip():
        raise ValueError("instruction is empty")
    return np.asarray((embed or sentence_embedder())([text]), np.float32)[0]

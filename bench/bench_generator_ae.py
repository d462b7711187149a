"""The hand autoencoder's encoder, rotation head and vertex loss, compared at the same wall-clock budget on the
generator's training set: FastGrasp's PointNet (order-free) against an MLP over the 778 vertices in MANO's fixed
order; the global rotation regressed as axis-angle (FastGrasp's) or as two matrix columns (6d, models/rotations.py);
chamfer against vertex-to-vertex distance.

    python -m bench.bench_generator_ae --data-root afford-data/generator --seconds 60
    afford report docs/results/generator_ae --update BENCHMARKS.md

Each variant trains the `small` preset's autoencoder (latent 64, decoder 256-256, batch 32) for `--seconds` on the
train split, then reconstructs the val grasps (never trained on; the test grasps are left for the report):
mean vertex error, translation error and the global rotation's angle error.
The set must have been built (`python -m bench.bench_generator` builds it).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# name -> (encoder, encoder widths, rotation head, chamfer weight, vertex-to-vertex weight); the last is `small`'s
VARIANTS = {
    "pointnet 32-64-128, axis-angle, chamfer": ("pointnet", (32, 64, 128), "axis_angle", 1.0, 0.0),
    "mlp 512-256, axis-angle, chamfer": ("mlp", (512, 256), "axis_angle", 1.0, 0.0),
    "mlp 512-256, 6d, chamfer": ("mlp", (512, 256), "6d", 1.0, 0.0),
    "mlp 512-256, 6d, vertex-to-vertex": ("mlp", (512, 256), "6d", 0.0, 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path("afford-data/generator"))
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget per variant and lr")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", type=Path, default=None, help="default: docs/results/generator_ae")
    args = parser.parse_args()
    from bench.record import bench_table, finish, load_text, started

    header = started("generator_ae", seed=0)
    import numpy as np
    import torch

    from models.hand_autoencoder import mano_vertices
    from models.mano import axis_angle_to_matrix
    from schemas.data_root import DataRoot
    from tasks.grasp.config import preset_config
    from tasks.grasp.data import GraspDataset, load_grasp_items, mano_layer
    from tasks.grasp.losses import autoencoder_loss
    from tasks.grasp.model import GraspModels

    torch.set_num_threads(args.threads)
    root = DataRoot(args.data_root)
    mano, _ = mano_layer(str(root.datasets / "mano"))
    no_text = lambda texts: np.zeros((len(texts), 384), np.float32)  # noqa: E731  the AE reads no text
    train = GraspDataset(load_grasp_items(root.annotated, mano, no_text, num_points=16))
    held = load_grasp_items(root.annotated, mano, no_text, num_points=16, splits=("val",))
    held_verts, held_mano = torch.from_numpy(held.hand_verts), torch.from_numpy(held.mano)
    rows = []
    for lr in args.lr:
        for name, (encoder, widths, rotation, chamfer, v2v) in VARIANTS.items():
            config = preset_config("small", batch_size=32, lr=lr, ae_chamfer=chamfer, ae_v2v=v2v)
            model = config.model_config()
            model = replace(model, ae=replace(model.ae, encoder=encoder, point_widths=widths, rotation=rotation))
            torch.manual_seed(0)
            models = GraspModels(model, mano)
            models.ae.set_param_stats(train.tensors["mano"])
            optimiser = torch.optim.AdamW(models.ae.parameters(), lr=lr, weight_decay=1e-4)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                loss = autoencoder_loss(models, train.batch(torch.randint(len(train), (32,))), config)["loss"]
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(models.ae.parameters(), 1.0)
                optimiser.step()
                steps += 1
            models.ae.eval()
            with torch.no_grad():
                out = models.ae(held_verts).mano
                vertex_cm = float((mano_vertices(mano, out) - held_verts).norm(dim=-1).mean()) * 100
                trans_cm = float((out[:, -3:] - held_mano[:, -3:]).norm(dim=-1).mean()) * 100
                predicted, truth = axis_angle_to_matrix(out[:, 10:13]), axis_angle_to_matrix(held_mano[:, 10:13])
                relative = predicted.transpose(1, 2) @ truth
                cosine = ((relative.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
                rotation_deg = float(torch.rad2deg(torch.acos(cosine)).mean())
                rows.append([name, lr, steps, vertex_cm, trans_cm, rotation_deg])
            print(rows[-1], flush=True)
    text = [f"The `small` preset's autoencoder with each encoder, {args.seconds:.0f} s of training each on the "
            f"{len(train)} train-split grasps of `{args.data_root}` (batch 32, {args.threads} torch threads), then "
            f"reconstructing the {len(held)} val-split grasps; {load_text()}."]
    finish(header, "generator_ae", "Hand autoencoder: encoder compared at equal training time", text,
           [bench_table(["encoder, rotation head, vertex loss", "lr", "steps", "vertex error cm",
                         "translation error cm", "global rotation error deg"], rows,
                        ["", ".0e", "d", ".2f", ".2f", ".1f"])],
           out=args.results)


if __name__ == "__main__":
    main()

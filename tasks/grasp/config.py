"""The grasp generator's settings: module sizes, the preset registry, training settings.

`PRESETS` is the one place preset names are written; CLI choices, flow parameters and `torchrun -m
tasks.grasp.train --preset` derive from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from models.grasp_dam import DAMConfig
from models.grasp_diffusion import DiffusionConfig
from models.hand_autoencoder import HandAEConfig
from models.presets import Presets

CHECKPOINT_FORMAT = "grasp-generator-v1"


STAGES = ("autoencoder", "diffusion", "dam")


CM = 100.0  # geometric losses measure metres x 100: centimetres, the unit the grasp metrics report


@dataclass(frozen=True)
class GraspModelConfig:
    """The three modules' sizes; `latent_dim` and `cond_dim` are shared and checked to agree."""

    ae: HandAEConfig
    diffusion: DiffusionConfig
    dam: DAMConfig

    def __post_init__(self) -> None:
        if not self.ae.latent_dim == self.diffusion.latent_dim == self.dam.latent_dim:
            raise ValueError(f"latent_dim differs: ae {self.ae.latent_dim}, diffusion {self.diffusion.latent_dim}, "
                             f"dam {self.dam.latent_dim}")
        if self.diffusion.cond_dim != self.dam.cond_dim:
            raise ValueError(f"cond_dim differs: diffusion {self.diffusion.cond_dim}, dam {self.dam.cond_dim}")

    def to_dict(self) -> dict[str, Any]:
        return {"ae": asdict(self.ae), "diffusion": asdict(self.diffusion), "dam": asdict(self.dam)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GraspModelConfig:
        def tuples(d: dict[str, Any]) -> dict[str, Any]:  # torch.save keeps tuples, JSON would not
            return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(HandAEConfig(**tuples(raw["ae"])), DiffusionConfig(**tuples(raw["diffusion"])),
                   DAMConfig(**tuples(raw["dam"])))

    def with_heads(self, heads: int) -> GraspModelConfig:
        return replace(self, dam=replace(self.dam, heads=heads))


@dataclass(frozen=True)
class GraspPreset:
    """A grasp-generator preset: the modules' sizes and the training settings it sets (the rest: GraspTrainConfig's
    defaults)."""

    model: GraspModelConfig
    train: dict[str, Any] = field(default_factory=dict)


PRESETS: Presets[GraspPreset] = Presets("grasp generator", {
    # Seconds on a CPU: proves the path, learns little.
    "tiny": GraspPreset(GraspModelConfig(
        HandAEConfig(latent_dim=16, point_widths=(16, 32), decoder_widths=(64,)),
        DiffusionConfig(latent_dim=16, cond_dim=32, point_widths=(16, 32), hidden=64, blocks=2, cond_tokens=16),
        DAMConfig(latent_dim=16, cond_dim=32, heads=2, queries=2, layers=1))),
    # Sized for 2 CPU cores: all three stages in <= 30 min on the generator training set. The autoencoder reads
    # the ordered vertices through an MLP (bench_generator_ae: closer reconstructions than PointNet at equal time);
    # DAM loss weights as default (bench_generator on val objects: lower cmap/mesh weights did worse).
    "small": GraspPreset(GraspModelConfig(
        HandAEConfig(latent_dim=64, point_widths=(512, 256), decoder_widths=(256, 256), encoder="mlp", rotation="6d"),
        DiffusionConfig(latent_dim=64, cond_dim=128, point_widths=(32, 64, 128), hidden=512, blocks=4,
                        cond_tokens=32),
        DAMConfig(latent_dim=64, cond_dim=128, heads=4, queries=4, layers=2)),
        train={"ae_steps": 6000, "diffusion_steps": 12000, "dam_steps": 4000, "batch_size": 32, "lr": 1e-3,
               "warmup_steps": 100, "num_points": 512, "loss_verts": 195, "ddim_steps": 20,
               "checkpoint_every": 1000, "log_every": 100, "ae_chamfer": 0.0, "ae_v2v": 1.0,
               # the hand-centric contact term, chosen on val objects (docs/grasp/training.md runs dam_hand0/1,
               # val_dam_w*): more weight, more contact and less displacement, but from 6 on another goal fails
               # (entropy at 6 and 10, penetration depth at 20); 3 is the largest weight tried that keeps them all
               "w_hand": 3.0}),
    # FastGrasp's sizes: 768-d hand latent, 3000 object points; for a GPU.
    "paper": GraspPreset(GraspModelConfig(
        HandAEConfig(latent_dim=768, point_widths=(64, 128, 256), decoder_widths=(512, 256)),
        DiffusionConfig(latent_dim=768, cond_dim=256, point_widths=(64, 128, 256), hidden=1024, blocks=6,
                        cond_tokens=64),
        DAMConfig(latent_dim=768, cond_dim=256, heads=4, queries=8, layers=2)),
        train={"ae_steps": 50_000, "diffusion_steps": 200_000, "dam_steps": 50_000, "batch_size": 128, "lr": 2e-4,
               "warmup_steps": 1000, "num_points": 3000, "loss_verts": 778, "ddim_steps": 50,
               "checkpoint_every": 2000, "log_every": 100}),
}, default="tiny")
GraspPresetName = PRESETS.literal  # a flow parameter's type: the registered names


@dataclass(frozen=True)
class GraspTrainConfig:
    """Training settings (defaults: the tiny preset; `preset_config` fills a preset's). Bounded in __post_init__."""

    preset: str = PRESETS.default
    ae_steps: int = 60
    diffusion_steps: int = 40
    dam_steps: int = 60
    batch_size: int = 8
    lr: float = 3e-3
    warmup_steps: int = 5
    num_points: int = 256  # object points per grasp (3000 in the paper)
    loss_verts: int = 195  # hand vertices the geometric losses use (every k-th): 4x fewer, ~4x faster tiny steps
    dam_heads: int | None = None  # None: the preset's (1, 2 or 4)
    ae_chamfer: float = 1.0  # weight of the chamfer term (cm^2) in the AE loss
    # weight of the mean vertex-to-vertex distance (cm) in the AE loss: MANO's vertices come in a fixed order, so
    # each decoded vertex can be held to its own target, not only to the nearest one (chamfer)
    ae_v2v: float = 0.0
    ae_kl: float = 0.0  # > 0 makes the AE variational, with this KL weight
    dam_noise: float = 1.0  # DAM training: coarse latents denoised in one step from t < dam_noise * T
    w_param: float = 1.0  # l1 .. l5 of L_DAM
    w_mesh: float = 1.0
    w_consist: float = 1.0
    w_cmap: float = 0.1
    w_penetr: float = 0.1
    # hand-centric contact (models/grasp_losses.hand_contact_loss, GraspTTA's test-time term) as a DAM training term
    w_hand: float = 0.0
    ddim_steps: int = 20
    guidance: float = 2.0
    checkpoint_every: int = 50
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    compile: bool = False  # torch.compile the denoiser (CUDA; minutes of compile time, ~1.5x faster steps)

    def __post_init__(self) -> None:
        PRESETS.check(self.preset)
        for name, low in (("ae_steps", 0), ("diffusion_steps", 0), ("dam_steps", 0), ("batch_size", 1),
                          ("warmup_steps", 0), ("num_points", 16), ("loss_verts", 16), ("ddim_steps", 1),
                          ("checkpoint_every", 1), ("log_every", 1), ("seed", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.total_steps < 1:
            raise ValueError("ae_steps + diffusion_steps + dam_steps must be >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 < self.dam_noise <= 1:
            raise ValueError(f"dam_noise must be in (0, 1], got {self.dam_noise}")
        if self.dam_heads is not None and self.dam_heads not in (1, 2, 4):
            raise ValueError(f"dam_heads must be 1, 2 or 4, got {self.dam_heads}")
        for name in ("ae_chamfer", "ae_v2v", "ae_kl", "w_param", "w_mesh", "w_consist", "w_cmap", "w_penetr",
                     "w_hand", "guidance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def vertex_stride(self) -> int:
        """Every k-th hand vertex enters the geometric losses: k = ceil(778 / loss_verts)."""
        return -(-778 // min(self.loss_verts, 778))

    @property
    def total_steps(self) -> int:
        return self.ae_steps + self.diffusion_steps + self.dam_steps

    def stage_of(self, step: int) -> str:
        """The stage global step `step` (1-based) belongs to."""
        if step <= self.ae_steps:
            return "autoencoder"
        return "diffusion" if step <= self.ae_steps + self.diffusion_steps else "dam"

    def model_config(self) -> GraspModelConfig:
        model = PRESETS.from_name(self.preset).model
        model = model.with_heads(self.dam_heads) if self.dam_heads else model
        return replace(model, ae=replace(model.ae, variational=self.ae_kl > 0))


def preset_config(preset: str, steps: int | None = None, **overrides: Any) -> GraspTrainConfig:
    """A preset's settings, with `steps` (each stage's step count) and any field overridden; None = keep."""
    PRESETS.check(preset)
    known = {f.name for f in fields(GraspTrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    values = PRESETS.from_name(preset).train | {k: v for k, v in overrides.items() if v is not None}
    if steps is not None:
        values |= {"ae_steps": steps, "diffusion_steps": steps, "dam_steps": steps}
    return GraspTrainConfig(preset=preset, **values)


"""Train the grasp generator in three stages: hand autoencoder -> latent diffusion -> DAM.

One global step counter runs through the stages (AE steps, then diffusion steps, then DAM steps), so a run is
resumable at any step: `out/checkpoints/last.pt` holds every module, the current stage's optimiser, the RNG
states and the loss history, and is written to a temporary file and renamed over the old one (a kill mid-write
leaves the previous checkpoint intact). On CUDA the forward passes run under bf16 autocast (MANO and the
geometric losses stay float32); `compile` compiles the denoiser, the bulk of the FLOPs.

Multi-GPU: `torchrun --nproc_per_node G -m tasks.grasp.train ...` runs `main` on every GPU; each rank reads the
table, trains on every G-th grasp (`rank_indices`) and averages gradients with one all-reduce per parameter
(simple, and the models are small enough that bucketing would save little); rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from models.device import resolve_device
from models.grasp_dam import DAM, DAMConfig
from models.grasp_diffusion import DiffusionConfig, GraspDiffusion
from models.grasp_losses import (
    affordance_contact_loss,
    chamfer_distance,
    contact_consistency_loss,
    penetration_loss,
)
from models.hand_autoencoder import HandAEConfig, HandAutoencoder, kl_divergence, mano_vertices
from models.mano import ManoLayer
from tasks.grasp.data import GraspDataset, GraspItems, load_grasp_items, mano_layer, rank_indices

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


MODEL_PRESETS: dict[str, GraspModelConfig] = {
    # Seconds on a CPU: proves the path, learns little.
    "tiny": GraspModelConfig(
        HandAEConfig(latent_dim=16, point_widths=(16, 32), decoder_widths=(64,)),
        DiffusionConfig(latent_dim=16, cond_dim=32, point_widths=(16, 32), hidden=64, blocks=2, cond_tokens=16),
        DAMConfig(latent_dim=16, cond_dim=32, heads=2, queries=2, layers=1)),
    # FastGrasp's sizes: 768-d hand latent, 3000 object points; for a GPU.
    "paper": GraspModelConfig(
        HandAEConfig(latent_dim=768, point_widths=(64, 128, 256), decoder_widths=(512, 256)),
        DiffusionConfig(latent_dim=768, cond_dim=256, point_widths=(64, 128, 256), hidden=1024, blocks=6,
                        cond_tokens=64),
        DAMConfig(latent_dim=768, cond_dim=256, heads=4, queries=8, layers=2)),
}


@dataclass(frozen=True)
class GraspTrainConfig:
    """Training settings (defaults: the tiny preset; `preset_config` fills a preset's). Bounded in __post_init__."""

    preset: str = "tiny"
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
    ae_kl: float = 0.0  # > 0 makes the AE variational, with this KL weight
    dam_noise: float = 1.0  # DAM training: coarse latents denoised in one step from t < dam_noise * T
    w_param: float = 1.0  # l1 .. l5 of L_DAM
    w_mesh: float = 1.0
    w_consist: float = 1.0
    w_cmap: float = 0.1
    w_penetr: float = 0.1
    ddim_steps: int = 20
    guidance: float = 2.0
    checkpoint_every: int = 50
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    compile: bool = False  # torch.compile the denoiser (CUDA; minutes of compile time, ~1.5x faster steps)

    def __post_init__(self) -> None:
        if self.preset not in MODEL_PRESETS:
            raise ValueError(f"preset {self.preset!r} not in {sorted(MODEL_PRESETS)}")
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
        for name in ("ae_chamfer", "ae_kl", "w_param", "w_mesh", "w_consist", "w_cmap", "w_penetr", "guidance"):
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
        model = MODEL_PRESETS[self.preset]
        model = model.with_heads(self.dam_heads) if self.dam_heads else model
        return replace(model, ae=replace(model.ae, variational=self.ae_kl > 0))


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    "paper": {"ae_steps": 50_000, "diffusion_steps": 200_000, "dam_steps": 50_000, "batch_size": 128, "lr": 2e-4,
              "warmup_steps": 1000, "num_points": 3000, "loss_verts": 778, "ddim_steps": 50, "checkpoint_every": 2000,
              "log_every": 100},
}


def preset_config(preset: str, steps: int | None = None, **overrides: Any) -> GraspTrainConfig:
    """A preset's settings, with `steps` (each stage's step count) and any field overridden; None = keep."""
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"preset {preset!r} not in {sorted(TRAIN_PRESETS)}")
    known = {f.name for f in fields(GraspTrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    values = TRAIN_PRESETS[preset] | {k: v for k, v in overrides.items() if v is not None}
    if steps is not None:
        values |= {"ae_steps": steps, "diffusion_steps": steps, "dam_steps": steps}
    return GraspTrainConfig(preset=preset, **values)


class GraspModels(torch.nn.Module):
    """The three trained modules, plus the (constant) MANO layer they decode through."""

    def __init__(self, config: GraspModelConfig, mano: ManoLayer) -> None:
        super().__init__()
        self.config = config
        self.ae = HandAutoencoder(config.ae)
        self.diffusion = GraspDiffusion(config.diffusion)
        self.dam = DAM(config.dam)
        self.mano = mano

    def trained_state(self) -> dict[str, dict[str, Tensor]]:
        return {"ae": self.ae.state_dict(), "diffusion": self.diffusion.state_dict(), "dam": self.dam.state_dict()}

    def load_trained_state(self, state: dict[str, dict[str, Tensor]]) -> None:
        self.ae.load_state_dict(state["ae"])
        self.diffusion.load_state_dict(state["diffusion"])
        self.dam.load_state_dict(state["dam"])

    def stage_module(self, stage: str) -> torch.nn.Module:
        return {"autoencoder": self.ae, "diffusion": self.diffusion, "dam": self.dam}[stage]


class DistContext(NamedTuple):
    rank: int
    local_rank: int
    world: int


def distributed_context(environ: dict[str, str] | None = None) -> DistContext:
    """Rank, local rank and world size from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE); 0, 0, 1 without.

    ValueError naming the variable when one is not an integer or the three do not fit together.
    """
    env = os.environ if environ is None else environ
    values = {}
    for name, default in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        try:
            values[name] = int(env.get(name, default))
        except ValueError:
            raise ValueError(f"{name}={env.get(name)!r} is not an integer") from None
    if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"] or values["LOCAL_RANK"] < 0:
        raise ValueError(f"inconsistent torchrun environment: RANK={values['RANK']} LOCAL_RANK="
                         f"{values['LOCAL_RANK']} WORLD_SIZE={values['WORLD_SIZE']}")
    return DistContext(values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"])


def rank_device(config_device: str, context: DistContext) -> torch.device:
    """One GPU per rank (cuda:LOCAL_RANK) under torchrun with CUDA; else the configured device."""
    if context.world > 1 and torch.cuda.is_available() and config_device in ("auto", "cuda"):
        return torch.device("cuda", context.local_rank)
    return resolve_device(config_device)


def init_distributed(context: DistContext, device: torch.device) -> None:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPUs); nothing to do for one process."""
    if context.world > 1 and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def average_gradients(parameters: list[torch.nn.Parameter], world: int) -> None:
    """g <- (sum over ranks of g) / world, for every parameter with a gradient."""
    if world == 1:
        return
    for p in parameters:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world


# ---- losses of one batch, per stage -------------------------------------------------------------------------


def autoencoder_loss(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig) -> dict[str, Tensor]:
    """L_AE = MSE(x, x*) + w_cd CD_cm(MANO(x), hand) [+ w_kl KL]."""
    out = models.ae(batch["hand_verts"])
    param = models.ae.param_loss(out.mano, batch["mano"])
    k = config.vertex_stride
    mesh = chamfer_distance(mano_vertices(models.mano, out.mano)[:, ::k] * CM, batch["hand_verts"][:, ::k] * CM)
    terms = {"param": param, "mesh": mesh}
    loss = param + config.ae_chamfer * mesh
    if out.logvar is not None and config.ae_kl > 0:
        terms["kl"] = kl_divergence(out.mean.float(), out.logvar.float())
        loss = loss + config.ae_kl * terms["kl"]
    return {"loss": loss, **terms}


def diffusion_loss(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig) -> dict[str, Tensor]:
    """DDPM epsilon loss on the frozen AE's latents, condition dropped with probability cond_drop."""
    with torch.no_grad():
        latent = models.ae.encode(batch["hand_verts"])
    condition = models.diffusion.condition(batch["object_points"], batch["affordance_map"], batch["text"])
    return {"loss": models.diffusion.loss(latent, condition)}


def coarse_latents(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig):
    """h_c for DAM training: the frozen diffusion model's one-step x0 estimate from x_t, t < dam_noise * T.

    Running full DDIM per training step would cost ddim_steps denoiser passes; the one-step estimate spans the
    same range, from near the true latent (small t) to the conditional mean (t -> T), so the DAM learns to
    correct coarse latents of every quality from the condition tokens. Measured on the tiny overfit set: with
    t < T/2 the coarse latents are already near the AE's floor and the DAM has little left to learn.
    """
    with torch.no_grad():
        diffusion = models.diffusion
        latent = models.ae.encode(batch["hand_verts"])
        condition = diffusion.condition(batch["object_points"], batch["affordance_map"], batch["text"])
        x0 = diffusion.normalise(latent)
        t = torch.randint(0, max(1, int(config.dam_noise * diffusion.config.timesteps)), (len(x0),), device=x0.device)
        x_t = diffusion.q_sample(x0, t, torch.randn_like(x0))
        coarse = diffusion.denormalise(diffusion.predict_x0(x_t, t, condition.vector, config.guidance).float())
    return coarse, condition


def dam_terms(models: GraspModels, hand_cm: Tensor, mano: Tensor, batch: dict[str, Tensor],
              stride: int = 1) -> dict[str, Tensor]:
    """The five DAM loss terms of a predicted MANO vector (B, 61) and its vertices (B, 778 / stride, 3) in cm."""
    points = batch["object_points"] * CM
    true_cm = batch["hand_verts"][:, ::stride] * CM
    return {
        "param": models.ae.param_loss(mano, batch["mano"]),
        "mesh": chamfer_distance(hand_cm, true_cm),
        "consist": contact_consistency_loss(hand_cm, true_cm, points),
        "cmap": affordance_contact_loss(hand_cm, points, batch["affordance_map"]),
        "penetr": penetration_loss(hand_cm, points, batch["object_normals"]),
    }


def dam_loss(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig) -> dict[str, Tensor]:
    """L = l1 L_param + l2 L_mesh + l3 L_consist + l4 L_cmap + l5 L_penetr, diffusion and AE frozen."""
    coarse, condition = coarse_latents(models, batch, config)
    mano = models.ae.decode(models.dam(coarse, condition.tokens.detach()))
    k = config.vertex_stride
    terms = dam_terms(models, mano_vertices(models.mano, mano)[:, ::k] * CM, mano, batch, k)
    weights = (config.w_param, config.w_mesh, config.w_consist, config.w_cmap, config.w_penetr)
    loss = sum(w * terms[name] for w, name in zip(weights, ("param", "mesh", "consist", "cmap", "penetr"),
                                                   strict=True))
    return {"loss": loss, **terms}


STAGE_LOSSES: dict[str, Callable[[GraspModels, dict[str, Tensor], GraspTrainConfig], dict[str, Tensor]]] = {
    "autoencoder": autoencoder_loss, "diffusion": diffusion_loss, "dam": dam_loss}


# ---- the loop -----------------------------------------------------------------------------------------------


@dataclass
class GraspTrainResult:
    out_dir: Path
    checkpoint: Path  # out/checkpoints/last.pt: resumable
    model_path: Path  # out/grasp_model.pt: weights + configs, for sampling
    history: list[dict[str, float]]
    steps_done: int
    total_steps: int
    resumed_from: int
    train_seconds: float  # this process's training time (after resuming, the resumed part only)
    steps_per_s: float
    log_csv: Path | None = None
    loss_curve: Path | None = None
    models: GraspModels | None = None  # the trained modules, in eval mode


@dataclass
class _State:
    step: int
    optimiser: torch.optim.Optimizer | None
    stage: str | None
    history: list[dict[str, float]]


def _optimiser(models: GraspModels, stage: str, config: GraspTrainConfig) -> torch.optim.Optimizer:
    """AdamW over this stage's module; the other modules are frozen (requires_grad False, eval mode)."""
    for name in STAGES:
        module = models.stage_module(name)
        module.requires_grad_(name == stage)
        module.train(name == stage)
    return torch.optim.AdamW(models.stage_module(stage).parameters(), lr=config.lr, weight_decay=1e-4)


def _lr(step_in_stage: int, config: GraspTrainConfig) -> float:
    """Linear warm-up over warmup_steps at the start of each stage, then constant."""
    return config.lr * min(1.0, step_in_stage / max(1, config.warmup_steps))


def _stage_start(stage: str, config: GraspTrainConfig) -> int:
    return {"autoencoder": 0, "diffusion": config.ae_steps, "dam": config.ae_steps + config.diffusion_steps}[stage]


@torch.no_grad()
def _fit_latent_stats(models: GraspModels, dataset: GraspDataset, device: torch.device) -> None:
    """Standardise the diffusion model's latents with the frozen AE's statistics over every training grasp."""
    models.ae.eval()
    latents = [models.ae.encode(dataset.tensors["hand_verts"][i:i + 512].to(device)).float()
               for i in range(0, len(dataset), 512)]
    models.diffusion.set_latent_stats(torch.cat(latents))


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (tensor cores; no loss scaling needed, unlike fp16); a no-op on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train_step(models: GraspModels, state: _State, batch: dict[str, Tensor], config: GraspTrainConfig,
                world: int) -> dict[str, Tensor]:
    """One optimiser step of the current stage; the loss terms, detached (read at log time: no per-step sync)."""
    stage = config.stage_of(state.step)
    for group in state.optimiser.param_groups:
        group["lr"] = _lr(state.step - _stage_start(stage, config), config)
    with _autocast(batch["mano"].device):
        terms = STAGE_LOSSES[stage](models, batch, config)
    state.optimiser.zero_grad(set_to_none=True)
    terms["loss"].backward()
    params = [p for p in models.stage_module(stage).parameters() if p.requires_grad]
    average_gradients(params, world)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    state.optimiser.step()
    return {name: value.detach() for name, value in terms.items()}


def train_grasp_model(items: GraspItems, mano: ManoLayer, config: GraspTrainConfig, out_dir: str | Path, *,
                      mano_origin: str = "generated", text_encoder: str = "all-MiniLM-L6-v2",
                      context: DistContext | None = None, resume: bool = True, stop_at: int | None = None,
                      progress: Callable[[dict[str, float]], None] | None = None) -> GraspTrainResult:
    """Train (or resume) all three stages on `items`; checkpoints, CSV log and loss curves under `out_dir`.

    stop_at: checkpoint and return after this global step (a time-boxed job on a pre-emptible machine; run again
    to continue). The model file and curves are written only when the last step is done.
    """
    if len(items) == 0:
        raise ValueError("no training grasps: the annotated table has no train row with MANO parameters")
    context = context or DistContext(0, 0, 1)
    device = rank_device(config.device, context)
    init_distributed(context, device)
    out = Path(out_dir)
    dataset = GraspDataset(items)
    models, state, resumed_from = _start(mano, dataset, config, out / "checkpoints" / "last.pt", context, device,
                                         resume)
    meta = {"mano_origin": mano_origin, "text_encoder": text_encoder, "num_points": config.num_points,
            "train_rows": len(items)}
    start = time.perf_counter()
    last_step = min(config.total_steps, stop_at or config.total_steps)
    _loop(models, state, dataset, config, out, meta, context, device, last_step, progress)
    seconds = time.perf_counter() - start
    result = GraspTrainResult(out, out / "checkpoints" / "last.pt", out / "grasp_model.pt", state.history,
                              max(last_step, resumed_from), config.total_steps, resumed_from, seconds,
                              (last_step - resumed_from) / seconds if seconds > 0 and last_step > resumed_from
                              else 0.0)
    if context.rank == 0 and result.steps_done == config.total_steps:
        save_model(result.model_path, models, config, meta)
        result.log_csv = write_log(out / "train_log.csv", state.history)
        result.loss_curve = plot_losses(out / "loss_curves.png", state.history)
    result.models = models.eval()
    return result


def _start(mano: ManoLayer, dataset: GraspDataset, config: GraspTrainConfig, last: Path, context: DistContext,
           device: torch.device, resume: bool) -> tuple[GraspModels, _State, int]:
    """Fresh modules (same initial weights on every rank), or the state of `last` when resuming."""
    torch.manual_seed(config.seed)
    models = GraspModels(config.model_config(), mano).to(device)
    state = _State(0, None, None, [])
    for stale in last.parent.glob(f".{last.name}.*.tmp"):  # a run killed mid-write left it; never read
        stale.unlink(missing_ok=True)
    resumed_from = _resume(models, state, last, config) if resume and last.is_file() else 0
    if not resumed_from:
        models.ae.set_param_stats(dataset.tensors["mano"].to(device))
    if not resumed_from or context.rank > 0:  # the checkpoint holds rank 0's RNG: the others draw afresh
        torch.manual_seed(config.seed + 1000 * context.rank + resumed_from)  # other batches and noise per rank
    if config.compile:
        models.diffusion.denoiser.compile()
    return models, state, resumed_from


def _loop(models: GraspModels, state: _State, dataset: GraspDataset, config: GraspTrainConfig, out: Path,
          meta: dict[str, Any], context: DistContext, device: torch.device, last_step: int,
          progress: Callable[[dict[str, float]], None] | None) -> None:
    """Steps state.step + 1 .. last_step: batch from this rank's share, step, log, checkpoint (rank 0)."""
    own = torch.from_numpy(rank_indices(len(dataset), context.rank, context.world))
    start, running = time.perf_counter(), []
    for step in range(state.step + 1, last_step + 1):
        state.step = step
        _enter_stage(models, state, dataset, config, device)
        pick = own[torch.randint(len(own), (config.batch_size,))]
        running.append(_train_step(models, state, dataset.batch(pick, device), config, context.world))
        if step % config.log_every == 0 or step == last_step or config.stage_of(step + 1) != state.stage:
            state.history.append(_record(step, state.stage, running, time.perf_counter() - start))
            running = []
            if progress and context.rank == 0:
                progress(state.history[-1])
        if context.rank == 0 and (step % config.checkpoint_every == 0 or step == last_step):
            save_checkpoint(out / "checkpoints" / "last.pt", models, state, config, meta)
            write_log(out / "train_log.csv", state.history)


def _enter_stage(models: GraspModels, state: _State, dataset: GraspDataset, config: GraspTrainConfig,
                 device: torch.device) -> None:
    """At a stage boundary (or the first step after a resume): freeze the others, new optimiser, latent stats."""
    stage = config.stage_of(state.step)
    if stage == state.stage and state.optimiser is not None:
        return
    if stage == "diffusion" and state.stage != "diffusion" and state.step == _stage_start(stage, config) + 1:
        _fit_latent_stats(models, dataset, device)
    state.optimiser = _optimiser(models, stage, config)
    state.stage = stage


def _record(step: int, stage: str, running: list[dict[str, Tensor]], elapsed: float) -> dict[str, Any]:
    """The mean of each loss term over the steps since the last record."""
    means = {k: float(torch.stack([r[k].float() for r in running]).mean()) for k in running[0]}
    return {"step": step, "stage": stage, **means, "elapsed_s": round(elapsed, 3)}


# ---- checkpoints ---------------------------------------------------------------------------------------------


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside `path`, fsync, then rename over it: readers see old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_model(path: Path, models: GraspModels, config: GraspTrainConfig, meta: dict[str, Any]) -> None:
    """The weights and configs needed to sample (no optimiser), atomically."""
    _atomic_save({"format": CHECKPOINT_FORMAT, "model_config": models.config.to_dict(), "train_config": asdict(config),
                  "state": models.trained_state(), "meta": meta}, path)


def save_checkpoint(path: Path, models: GraspModels, state: _State, config: GraspTrainConfig,
                    meta: dict[str, Any]) -> None:
    """Everything `_resume` needs to continue exactly where this step left off."""
    _atomic_save({"format": CHECKPOINT_FORMAT, "model_config": models.config.to_dict(), "train_config": asdict(config),
                  "state": models.trained_state(), "meta": meta, "step": state.step, "stage": state.stage,
                  "optimiser": state.optimiser.state_dict(), "rng": _rng_state(), "history": state.history}, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A grasp-generator checkpoint as saved; ValueError naming the file when missing, unreadable or foreign."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False)  # our own file: configs are plain dicts
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise ValueError(f"checkpoint {path}: not a torch file ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path}: not a grasp-generator checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return raw


def _resume(models: GraspModels, state: _State, path: Path, config: GraspTrainConfig) -> int:
    """Load `path` into models/state; the step it saved. ValueError when it was trained with other sizes."""
    raw = read_checkpoint(path)
    if raw["model_config"] != models.config.to_dict():
        raise ValueError(f"checkpoint {path}: model sizes differ from preset {config.preset!r}; use another --out")
    saved = raw["train_config"]
    stage_steps = ("ae_steps", "diffusion_steps", "dam_steps")
    if any(saved[name] != getattr(config, name) for name in stage_steps):
        raise ValueError(f"checkpoint {path}: trained with stage steps {[saved[n] for n in stage_steps]}, now "
                         f"{[getattr(config, n) for n in stage_steps]}; use the same --steps or another --out")
    models.load_trained_state(raw["state"])
    state.step, state.history = int(raw["step"]), list(raw["history"])
    if state.step < config.total_steps and config.stage_of(state.step + 1) == raw["stage"]:
        state.optimiser, state.stage = _optimiser(models, raw["stage"], config), raw["stage"]
        state.optimiser.load_state_dict(raw["optimiser"])
    torch.set_rng_state(raw["rng"]["torch"])
    if "cuda" in raw["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(raw["rng"]["cuda"])
    return state.step


# ---- logs ------------------------------------------------------------------------------------------------------


def write_log(path: Path, history: list[dict[str, Any]]) -> Path:
    """The loss history as CSV (one row per logged step; columns: step, stage, loss, terms, elapsed_s), atomic."""
    columns = list(dict.fromkeys(k for record in history for k in record))
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
    return path


def read_log(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open() as handle:
        return [{k: (v if k == "stage" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(handle)]


def plot_losses(path: Path, history: list[dict[str, Any]]) -> Path:
    """One panel per stage: total loss (and each term) against the global step, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in STAGES if any(r["stage"] == s for r in history)]
    figure, axes = plt.subplots(1, max(1, len(stages)), figsize=(4.2 * max(1, len(stages)), 3.2), dpi=80,
                                squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=False):
        records = [r for r in history if r["stage"] == stage]
        terms = [k for k in records[0] if k not in ("step", "stage", "elapsed_s")]
        for term in terms:
            values = [max(r[term], 1e-8) for r in records]
            ax.plot([r["step"] for r in records], values, label=term, lw=2 if term == "loss" else 1)
        ax.set_yscale("log")
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


# ---- entry point for torchrun and subprocesses -------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.grasp.train",
                                     description="Train the grasp generator (one process per GPU under torchrun).")
    parser.add_argument("--annotated", required=True, help="The annotated table.")
    parser.add_argument("--out", required=True, help="Output folder (resumed when it holds a checkpoint).")
    parser.add_argument("--preset", default="tiny", choices=sorted(TRAIN_PRESETS))
    parser.add_argument("--steps", type=int, default=None, help="Steps of each stage (default: the preset's).")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--dam-heads", type=int, default=None, choices=(1, 2, 4))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mano-root", default=None)
    parser.add_argument("--compile", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> GraspTrainConfig:
    return preset_config(args.preset, args.steps, batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
                         dam_heads=args.dam_heads, device=args.device, seed=args.seed, compile=args.compile or None)


def main(argv: list[str] | None = None, run: Callable[..., Any] | None = None) -> Any:
    """Parse arguments, read the torchrun environment, load this rank's data, train. `run` replaces
    `train_grasp_model` (tests check the wiring without training)."""
    args = _parser().parse_args(argv)
    config = config_from_args(args)
    context = distributed_context()
    mano, origin = mano_layer(args.mano_root)
    items = load_grasp_items(args.annotated, mano, num_points=config.num_points, seed=config.seed)
    if context.rank == 0:
        print(items.summary(), flush=True)

    def report(record: dict[str, float]) -> None:
        print(f"step {int(record['step'])}/{config.total_steps} {record['stage']} loss {record['loss']:.4f}",
              flush=True)
    result = (run or train_grasp_model)(items, mano, config, args.out, mano_origin=origin, context=context,
                                        progress=report)
    if context.rank == 0 and isinstance(result, GraspTrainResult):
        print(f"done: step {result.steps_done}/{result.total_steps} (resumed from step {result.resumed_from}); "
              f"model {result.model_path}", flush=True)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


if __name__ == "__main__":
    main()

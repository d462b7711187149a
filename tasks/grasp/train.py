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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.mano import ManoLayer
from tasks.grasp.config import CHECKPOINT_FORMAT, PRESETS, STAGES, GraspModelConfig, GraspTrainConfig, preset_config
from tasks.grasp.data import GraspDataset, GraspItems, load_grasp_items, mano_layer, rank_indices
from tasks.grasp.distributed import DistContext, average_gradients, distributed_context, init_distributed, rank_device
from tasks.grasp.losses import STAGE_LOSSES
from tasks.grasp.model import GraspModels, atomic_save, read_checkpoint, save_model
from tasks.grasp.train_log import plot_losses, write_log

# ---- losses of one batch, per stage -------------------------------------------------------------------------


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
                      progress: Callable[[dict[str, float]], None] | None = None,
                      init_from: str | Path | None = None) -> GraspTrainResult:
    """Train (or resume) all three stages on `items`; checkpoints, CSV log and loss curves under `out_dir`.

    stop_at: checkpoint and return after this global step (a time-boxed job on a pre-emptible machine; run again
    to continue). The model file and curves are written only when the last step is done.
    init_from: a checkpoint whose autoencoder and diffusion model (same sizes and stage steps) this run takes as
    they are, training only the DAM: models that differ only in DAM heads share the two costly stages.
    """
    if len(items) == 0:
        raise ValueError("no training grasps: the annotated table has no train row with MANO parameters")
    context = context or DistContext(0, 0, 1)
    device = rank_device(config.device, context)
    init_distributed(context, device)
    out = Path(out_dir)
    dataset = GraspDataset(items)
    models, state, resumed_from = _start(mano, dataset, config, out / "checkpoints" / "last.pt", context, device,
                                         resume, Path(init_from) if init_from else None)
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
           device: torch.device, resume: bool, init_from: Path | None = None) -> tuple[GraspModels, _State, int]:
    """Fresh modules (same initial weights on every rank), or the state of `last` when resuming, or the first two
    stages of `init_from`."""
    torch.manual_seed(config.seed)
    models = GraspModels(config.model_config(), mano).to(device)
    state = _State(0, None, None, [])
    for stale in last.parent.glob(f".{last.name}.*.tmp"):  # a run killed mid-write left it; never read
        stale.unlink(missing_ok=True)
    resumed_from = _resume(models, state, last, config) if resume and last.is_file() else 0
    if not resumed_from and init_from is not None:
        resumed_from = _warm_start(models, state, init_from, config)
    if not resumed_from:
        models.ae.set_param_stats(dataset.tensors["mano"].to(device))
    if not resumed_from or context.rank > 0:  # the checkpoint holds rank 0's RNG: the others draw afresh
        torch.manual_seed(config.seed + 1000 * context.rank + resumed_from)  # other batches and noise per rank
    if config.compile:
        models.diffusion.denoiser.compile()
    return models, state, resumed_from


class TrainingDiverged(RuntimeError):
    """A non-finite loss: training stopped before it could overwrite the last good checkpoint."""


def _check_finite(running: list[dict[str, Tensor]], step: int, stage: str, checkpoint: Path) -> None:
    """TrainingDiverged naming the first step (of the `running` ones, which end at `step`) whose loss is NaN or
    inf, its stage, and the checkpoint that is kept. One device sync, at log or checkpoint time only."""
    if not running:
        return
    losses = torch.stack([r["loss"].float() for r in running])  # (len(running),)
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = int(bad[0])
        kept = (f"the last good checkpoint {checkpoint} is kept (resume from it with a lower learning rate)"
                if checkpoint.is_file() else "no checkpoint had been written yet")
        raise TrainingDiverged(f"stage {stage}: loss {float(losses[first])} at step {step - len(running) + 1 + first}; "
                               f"training stopped and {kept}")


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
        logs = step % config.log_every == 0 or step == last_step or config.stage_of(step + 1) != state.stage
        saves = context.rank == 0 and (step % config.checkpoint_every == 0 or step == last_step)
        if logs or saves:  # never log or save a diverged model (gradients are averaged: every rank sees it)
            _check_finite(running, step, state.stage, out / "checkpoints" / "last.pt")
        if logs:
            state.history.append(_record(step, state.stage, running, time.perf_counter() - start))
            running = []
            if progress and context.rank == 0:
                progress(state.history[-1])
        if saves:
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


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(path: Path, models: GraspModels, state: _State, config: GraspTrainConfig,
                    meta: dict[str, Any]) -> None:
    """Everything `_resume` needs to continue exactly where this step left off."""
    atomic_save({"format": CHECKPOINT_FORMAT, "model_config": models.config.to_dict(), "train_config": asdict(config),
                  "state": models.trained_state(), "meta": meta, "step": state.step, "stage": state.stage,
                  "optimiser": state.optimiser.state_dict(), "rng": _rng_state(), "history": state.history}, path)


def _resume(models: GraspModels, state: _State, path: Path, config: GraspTrainConfig) -> int:
    """Load `path` into models/state; the step it saved. ValueError when it was trained with other sizes."""
    raw = read_checkpoint(path)
    if _saved_sizes(raw) != models.config.to_dict():
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


def _saved_sizes(raw: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's module sizes with today's defaults filled in (a field added since it was written)."""
    return GraspModelConfig.from_dict(raw["model_config"]).to_dict()


def _warm_start(models: GraspModels, state: _State, path: Path, config: GraspTrainConfig) -> int:
    """Take the autoencoder, the diffusion model and their loss history from `path`; the step the DAM starts
    after. ValueError naming the checkpoint when their sizes or stage steps differ from this run's."""
    raw = read_checkpoint(path)
    theirs, ours = _saved_sizes(raw), models.config.to_dict()
    for module in ("ae", "diffusion"):
        if theirs[module] != ours[module]:
            raise ValueError(f"checkpoint {path}: its {module} sizes differ from preset {config.preset!r}; "
                             f"a warm start needs the same autoencoder and diffusion model")
    saved = raw["train_config"]
    for name in ("ae_steps", "diffusion_steps"):
        if saved[name] != getattr(config, name):
            raise ValueError(f"checkpoint {path}: trained with {name} {saved[name]}, this run {getattr(config, name)}")
    models.ae.load_state_dict(raw["state"]["ae"])
    models.diffusion.load_state_dict(raw["state"]["diffusion"])
    state.step = config.ae_steps + config.diffusion_steps
    state.history = [record for record in raw.get("history", []) if record["stage"] != "dam"]
    return state.step


# ---- logs ------------------------------------------------------------------------------------------------------


# ---- entry point for torchrun and subprocesses -------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.grasp.train",
                                     description="Train the grasp generator (one process per GPU under torchrun).")
    parser.add_argument("--annotated", required=True, help="The annotated table.")
    parser.add_argument("--out", required=True, help="Output folder (resumed when it holds a checkpoint).")
    parser.add_argument("--preset", default=PRESETS.default, choices=PRESETS.names)
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

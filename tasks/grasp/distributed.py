"""torchrun helpers: the rank's context and device, process-group start, gradient averaging."""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from models.device import resolve_device


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


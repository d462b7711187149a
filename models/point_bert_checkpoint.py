"""Point-BERT weights on disk: loading the official pre-trained checkpoint (backbone keys mapped and
coverage checked), and saving / loading the classifier's own checkpoints with their config."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.point_bert import (
    _KEY_PREFIXES,
    _MIN_BACKBONE_COVERAGE,
    BACKBONE_PREFIXES,
    HEAD_PREFIX,
    PointBertConfig,
    PointTransformer,
)
from schemas.ids import hash_file


@dataclass(frozen=True)
class LoadReport:
    """What `load_official_checkpoint` did: model keys left at their initial values, checkpoint keys the model
    did not take (strict=False), and checkpoint keys deliberately dropped (original names, before stripping)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def load_official_checkpoint(model: PointTransformer, path: str | os.PathLike[str]) -> LoadReport:
    """Load official Point-BERT weights (pretrained `Point_BERT` or finetuned `PointTransformer`) into `model`.

    Accepts {'base_model': sd} (the official scripts' format), {'model': sd} or a bare state dict. Strips
    "module.", "transformer_q." and "base_model." prefixes; drops pretraining-only entries (transformer_k.*,
    dvae.*, cls_head.*, lm_head.*, mask_token, the MoCo queue) and a `cls_head_finetune` whose shapes differ from
    the model's (another class count), in which case the head is re-initialised. Raises ValueError naming the
    file when a backbone tensor has another shape, a backbone key is unknown to the model, or fewer than half of
    the model's backbone tensors are present: a checkpoint of another architecture.
    """
    state = _state_dict_of(torch.load(path, map_location="cpu", weights_only=True), path)
    own = model.state_dict()
    kept, dropped, bad = _partition(state, own)
    head_mismatch = any(_strip(key).startswith(HEAD_PREFIX) for key in dropped)
    if bad:
        raise ValueError(f"{os.fspath(path)}: not a checkpoint of this Point-BERT architecture "
                         f"({model.config}); offending keys: {'; '.join(bad[:5])}")
    _check_coverage(kept, own, list(state), path)
    result = model.load_state_dict(kept, strict=False)
    if head_mismatch:
        model.reset_head()
    return LoadReport(missing=sorted(result.missing_keys), unexpected=sorted(result.unexpected_keys),
                      dropped=sorted(dropped))


def _state_dict_of(raw: Any, path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The state dict inside an official ('base_model'), our ('model') or a bare checkpoint."""
    if isinstance(raw, dict):
        for wrapper in ("base_model", "model"):
            if isinstance(raw.get(wrapper), dict):
                raw = raw[wrapper]
                break
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ValueError(f"{os.fspath(path)}: expected a state dict, or a dict with 'base_model' or 'model' holding "
                         f"one; got {type(raw).__name__}")
    return raw


def _strip(key: str) -> str:
    """'module.transformer_q.encoder.x' -> 'encoder.x': removes the wrapper prefixes wherever they lead."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in _KEY_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key


def _is_backbone(key: str) -> bool:
    return key.split(".", 1)[0] in BACKBONE_PREFIXES


def _partition(state: dict[str, Tensor], own: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """Split checkpoint entries into kept (model names), dropped (original names) and bad (descriptions)."""
    kept: dict[str, Tensor] = {}
    dropped: list[str] = []
    bad: list[str] = []
    for original, value in state.items():
        key = _strip(original)
        if key in own and own[key].shape == value.shape:
            kept[key] = value
        elif _is_backbone(key):
            shape = f"{tuple(own[key].shape)} in the model" if key in own else "not in the model"
            bad.append(f"{original} {tuple(value.shape)}, {shape}")
        else:
            dropped.append(original)  # pretraining heads, the other MoCo branch, the dVAE, a head of other classes
    # A head is all or nothing: a 40-class head's first layer fits, but keeping it alone would mix two heads.
    if any(_strip(k).startswith(HEAD_PREFIX) for k in dropped):
        dropped += [k for k in state if _strip(k) in kept and _strip(k).startswith(HEAD_PREFIX)]
        kept = {k: v for k, v in kept.items() if not k.startswith(HEAD_PREFIX)}
    return kept, dropped, bad


def _check_coverage(kept: dict[str, Tensor], own: dict[str, Tensor], names: list[str],
                    path: str | os.PathLike[str]) -> None:
    """Raises when fewer than half of the model's backbone tensors were found: nothing to fine-tune from."""
    backbone = [key for key in own if _is_backbone(key)]
    absent = [key for key in backbone if key not in kept]
    if len(backbone) - len(absent) < _MIN_BACKBONE_COVERAGE * len(backbone):
        raise ValueError(f"{os.fspath(path)}: only {len(backbone) - len(absent)} of {len(backbone)} Point-BERT "
                         f"backbone tensors found, not a checkpoint of this architecture; missing e.g. {absent[:3]}, "
                         f"the file has e.g. {names[:3]}")


def save_checkpoint(model: PointTransformer, config: PointBertConfig, path: str | os.PathLike[str]) -> str:
    """Save {'model': state dict (CPU), 'config': asdict(config)} to `path`; returns the file's sha256 (hex).

    Written to a temporary file beside `path` and renamed into place, so a crash leaves no half-written checkpoint.
    """
    path = Path(path)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"model": state, "config": asdict(config)}, tmp)
    os.replace(tmp, path)
    return hash_file(path)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[PointTransformer, PointBertConfig]:
    """Our own checkpoint (from `save_checkpoint`) -> (model on the CPU in eval mode, its config)."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or not {"model", "config"} <= raw.keys():
        raise ValueError(f"{os.fspath(path)}: expected a dict with 'model' and 'config' (see save_checkpoint)")
    try:
        config = PointBertConfig(**raw["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{os.fspath(path)}: bad config: {error}") from error
    model = PointTransformer(config)
    try:
        model.load_state_dict(raw["model"], strict=True)
    except RuntimeError as error:  # keys or shapes of another architecture than its own config describes
        raise ValueError(f"{os.fspath(path)}: weights do not fit the PointTransformer its config describes: "
                         f"{str(error).splitlines()[0]} ...") from error
    return model.eval(), config


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a checkpoint file: the name under which labels produced with it are traced."""
    return hash_file(path)


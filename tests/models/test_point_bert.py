"""Point-BERT classifier: config bounds, official key names, grouping against a naive loop, the encoder's
permutation invariance, output shapes, official-checkpoint loading (pretraining keys, other class counts, other
architectures), our own checkpoints, determinism, gradients and input checks."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from models.point_bert import (
    CPU_SMALL,
    CPU_WIDE,
    PAPER,
    PRESETS,
    DropPath,
    Encoder,
    Group,
    PointBertConfig,
    PointTransformer,
)
from models.point_bert_checkpoint import load_checkpoint, load_official_checkpoint, save_checkpoint

TINY = PointBertConfig(trans_dim=32, depth=2, drop_path_rate=0.1, num_heads=4, group_size=8, num_group=16,
                       encoder_dims=64, num_points=256)


def cloud(batch: int, num_points: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, num_points, 3, generator=torch.Generator().manual_seed(seed))


def make_model(config: PointBertConfig = TINY, seed: int = 0) -> PointTransformer:
    torch.manual_seed(seed)
    return PointTransformer(config)


def exact_cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """cdist without the matrix-product shortcut, whose rounding puts a point ~1e-3 away from itself."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def official_keys(depth: int) -> set[str]:
    """The state-dict keys of the official finetune PointTransformer (models/Point_BERT.py + models/dvae.py)."""
    keys = {"cls_token", "cls_pos", "reduce_dim.weight", "reduce_dim.bias", "norm.weight", "norm.bias"}
    for conv in ("first_conv", "second_conv"):
        keys |= {f"encoder.{conv}.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")}
        keys |= {f"encoder.{conv}.1.{p}" for p in ("weight", "bias", "running_mean", "running_var",
                                                    "num_batches_tracked")}
    keys |= {f"{seq}.{i}.{p}" for seq, layers in (("pos_embed", (0, 2)), ("cls_head_finetune", (0, 3)))
             for i in layers for p in ("weight", "bias")}
    for b in range(depth):
        block = f"blocks.blocks.{b}"
        keys |= {f"{block}.attn.qkv.weight"}  # qkv_bias=False: no qkv.bias
        keys |= {f"{block}.{name}.{p}" for name in ("norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2")
                 for p in ("weight", "bias")}
    return keys


# --- config -------------------------------------------------------------------------------------------------


def test_presets_are_valid_and_named() -> None:
    assert dict(PRESETS.items()) == {"paper": PAPER, "cpu": CPU_SMALL, "cpu-wide": CPU_WIDE}
    assert (PAPER.trans_dim, PAPER.depth, PAPER.num_heads, PAPER.encoder_dims, PAPER.group_size) == (384, 12, 6,
                                                                                                       256, 32)
    assert PAPER.num_points == 4096 and PAPER.cls_dim == CPU_SMALL.cls_dim == 9


@pytest.mark.parametrize(("name", "value"), [("trans_dim", 0), ("depth", -1), ("num_heads", 5), ("group_size", 2048),
                                             ("num_group", 5000), ("encoder_dims", 1.5), ("cls_dim", 1),
                                             ("drop_path_rate", 1.0), ("num_points", True)])
def test_config_rejects_bad_fields_by_name(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(CPU_SMALL, **{name: value})


# --- architecture ---------------------------------------------------------------------------------------------


def test_state_dict_has_exactly_the_official_keys() -> None:
    assert set(make_model(TINY).state_dict()) == official_keys(TINY.depth)
    assert set(PointTransformer(CPU_SMALL).state_dict()) == official_keys(CPU_SMALL.depth)


def test_paper_preset_has_point_berts_parameter_count() -> None:
    count = sum(p.numel() for p in PointTransformer(PAPER).parameters())
    assert round(count / 1e6, 1) == 22.1  # Point-BERT's reported size, with a 9-class head


def test_head_matches_official_layout() -> None:
    head = make_model(CPU_SMALL).cls_head_finetune
    assert [type(layer) for layer in head] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Dropout, torch.nn.Linear]
    assert (head[0].in_features, head[0].out_features, head[2].p, head[3].out_features) == (256, 256, 0.5, 9)


def test_drop_path_rates_grow_linearly_with_depth() -> None:
    rates = [block.drop_path.drop_prob for block in make_model(CPU_SMALL).blocks.blocks]
    assert rates == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])


def test_drop_path_drops_whole_samples_in_training_only() -> None:
    layer, x = DropPath(0.5), torch.ones(400, 3, 2)
    torch.manual_seed(0)
    out = layer(x)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # one draw per sample
    assert 0.35 < (per_sample[:, 0] == 0).float().mean() < 0.65
    assert torch.equal(layer.eval()(x), x)


# --- grouping and encoder ---------------------------------------------------------------------------------------


def test_group_shapes_centres_and_neighbourhoods() -> None:
    points = cloud(2, 200, seed=1)
    neighborhood, center = Group(num_group=12, group_size=7)(points)
    assert neighborhood.shape == (2, 12, 7, 3) and center.shape == (2, 12, 3)
    assert torch.equal(center[:, 0], points[:, 0])  # FPS starts at point 0
    for b in range(2):
        # every centre is an input point, and every neighbour + centre is one too
        assert exact_cdist(center[b], points[b]).min(1).values.max() == 0
        absolute = (neighborhood[b] + center[b][:, None]).reshape(-1, 3)
        assert exact_cdist(absolute, points[b]).min(1).values.max() < 1e-6
    # re-centred: the centre is its own nearest neighbour, and patches are local
    assert neighborhood.norm(dim=-1).min(-1).values.max() == 0
    assert neighborhood.norm(dim=-1).mean() < 0.5 * exact_cdist(center, points).mean()


def test_group_matches_naive_fps_and_knn() -> None:
    points = cloud(1, 40, seed=2)
    neighborhood, center = Group(num_group=5, group_size=4)(points)
    pts = points[0].tolist()
    chosen = [0]
    while len(chosen) < 5:
        dist = [min(sum((p[k] - pts[c][k]) ** 2 for k in range(3)) for c in chosen) for p in pts]
        chosen.append(max(range(len(pts)), key=lambda i: (dist[i], -i)))
    assert torch.equal(center[0], points[0, chosen])
    for g, c in enumerate(chosen):
        order = sorted(range(len(pts)), key=lambda i: sum((pts[i][k] - pts[c][k]) ** 2 for k in range(3)))
        assert torch.allclose(neighborhood[0, g] + center[0, g], points[0, order[:4]])


def test_encoder_is_invariant_to_point_order_within_a_patch() -> None:
    torch.manual_seed(0)
    encoder = Encoder(encoder_channel=64).eval()
    groups = torch.randn(2, 5, 16, 3)
    shuffled = groups[:, :, torch.randperm(16)]
    with torch.no_grad():
        out, out_shuffled = encoder(groups), encoder(shuffled)
    assert out.shape == (2, 5, 64)
    assert torch.allclose(out, out_shuffled, atol=1e-5)




def test_patch_width_sets_the_mini_pointnet_and_the_official_width_stays_256() -> None:
    # Official Point-BERT encoder: Conv1d 3->128->256, concat the pooled 256, then 512->512->encoder_dims
    # (lulutang0608/Point-BERT, models/Point_BERT.py, class Encoder); the paper preset must keep it to load its
    # released weights.
    assert PAPER.patch_width == CPU_WIDE.patch_width == 256
    shapes = {name: tuple(p.shape) for name, p in Encoder(encoder_channel=64, width=128).named_parameters()
              if name.endswith("weight") and p.ndim == 3}
    assert shapes == {"first_conv.0.weight": (64, 3, 1), "first_conv.3.weight": (128, 64, 1),
                      "second_conv.0.weight": (256, 256, 1), "second_conv.3.weight": (64, 256, 1)}
    assert PointTransformer(CPU_SMALL).encoder.second_conv[0].in_channels == 2 * CPU_SMALL.patch_width
    with pytest.raises(ValueError, match="patch_width must be even"):
        dataclasses.replace(CPU_SMALL, patch_width=127)


def _conv_reference(encoder: Encoder, groups: torch.Tensor) -> torch.Tensor:
    """The official layout: Conv1d over (BG, C, S) through the encoder's own modules."""
    batch, count, size, _ = groups.shape
    feature = encoder.first_conv(groups.reshape(batch * count, size, 3).transpose(2, 1))
    pooled = feature.max(dim=2, keepdim=True).values
    feature = encoder.second_conv(torch.cat([pooled.expand(-1, -1, size), feature], dim=1))
    return feature.max(dim=2).values.reshape(batch, count, -1)


@pytest.mark.parametrize("training", [True, False])
def test_encoder_equals_the_conv1d_layout_including_batchnorm_statistics(training: bool) -> None:
    torch.manual_seed(0)
    fast = Encoder(encoder_channel=64).train(training)
    reference = Encoder(encoder_channel=64).train(training)
    reference.load_state_dict(fast.state_dict())
    groups = torch.randn(3, 5, 16, 3)
    for _ in range(2):  # two steps, so running statistics and the batch counter move as well
        assert torch.allclose(fast(groups), _conv_reference(reference, groups), atol=1e-5)
    for (name, a), (_, b) in zip(fast.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
# --- forward ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["cpu", "cpu-wide", "paper"])
def test_output_shape_for_each_preset(preset: str) -> None:
    config = PRESETS[preset]
    model = make_model(config).eval()
    with torch.no_grad():
        logits = model(cloud(2, config.num_points))
    assert logits.shape == (2, 9) and logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_eval_inference_is_deterministic_and_survives_save_load(tmp_path: Path) -> None:
    model, points = make_model(CPU_SMALL).eval(), cloud(3, CPU_SMALL.num_points, seed=4)
    with torch.no_grad():
        first, second = model(points), model(points)
    assert torch.equal(first, second)
    path = tmp_path / "clf.pt"
    digest = save_checkpoint(model, CPU_SMALL, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, config = load_checkpoint(path)
    assert config == CPU_SMALL and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(points), first)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place


def test_load_checkpoint_rejects_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "bare.pt"
    torch.save(make_model().state_dict(), path)
    with pytest.raises(ValueError, match=r"bare\.pt"):
        load_checkpoint(path)


def test_load_checkpoint_rejects_weights_that_do_not_fit_their_config(tmp_path: Path) -> None:
    path = tmp_path / "mislabelled.pt"
    save_checkpoint(make_model(), TINY, path)
    raw = torch.load(path, weights_only=True)
    raw["config"] = dataclasses.asdict(dataclasses.replace(TINY, trans_dim=64))  # says 64 wide, holds 32
    torch.save(raw, path)
    with pytest.raises(ValueError, match=r"mislabelled\.pt: weights do not fit"):
        load_checkpoint(path)


def test_gradients_reach_every_parameter_and_the_points() -> None:
    model = make_model(TINY).train()
    points = cloud(2, TINY.num_points).requires_grad_()
    loss = torch.nn.functional.cross_entropy(model(points), torch.tensor([1, 7]))
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert points.grad is not None and points.grad.abs().sum() > 0


@pytest.mark.parametrize(("shape", "match"), [((2, 64, 2), "points"), ((64, 3), "points"), ((2, 10, 3), "N >= 16"),
                                              ((0, 64, 3), "points")])
def test_bad_shapes_raise(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_model(TINY)(torch.zeros(shape))


def test_nan_and_integer_points_raise() -> None:
    model, points = make_model(TINY), cloud(1, 64)
    points[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(points)
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(1, 64, 3, dtype=torch.long))


# --- official checkpoints -------------------------------------------------------------------------------------

PRETRAIN_ONLY = {
    "module.transformer_q.cls_head.0.weight": (TINY.cls_dim, TINY.trans_dim),
    "module.transformer_q.lm_head.weight": (8192, TINY.trans_dim),
    "module.transformer_q.mask_token": (1, 1, TINY.trans_dim),
    "module.transformer_k.encoder.first_conv.0.weight": (128, 3, 1),
    "module.dvae.encoder.weight": (4, 4),
    "module.queue": (TINY.trans_dim, 16),
}


def official_pretrain_state(source: PointTransformer) -> dict[str, torch.Tensor]:
    """`source`'s weights under the official pretraining names, plus pretraining-only entries."""
    state = {f"module.transformer_q.{k}": v.clone() for k, v in source.state_dict().items()}
    state.update({k: torch.randn(shape) for k, shape in PRETRAIN_ONLY.items()})
    return state


def test_official_pretrained_checkpoint_loads(tmp_path: Path) -> None:
    source = make_model(dataclasses.replace(TINY, cls_dim=40), seed=1)  # a ModelNet40-style head to be dropped
    path = tmp_path / "Point-BERT.pth"
    torch.save({"base_model": official_pretrain_state(source), "epoch": 300}, path)
    model = make_model(TINY, seed=2)
    report = load_official_checkpoint(model, path)

    loaded, expected = model.state_dict(), source.state_dict()
    for key in expected:
        if not key.startswith("cls_head_finetune."):
            assert torch.equal(loaded[key], expected[key]), key
    head_keys = sorted(k for k in expected if k.startswith("cls_head_finetune."))
    assert not torch.equal(loaded["cls_head_finetune.0.weight"], expected["cls_head_finetune.0.weight"])
    assert loaded["cls_head_finetune.3.weight"].shape == (9, 256)
    assert report.missing == head_keys and report.unexpected == []
    assert report.dropped == sorted([*PRETRAIN_ONLY, *(f"module.transformer_q.{k}" for k in head_keys)])


def test_head_is_reinitialised_when_class_count_differs(tmp_path: Path) -> None:
    source, model = make_model(dataclasses.replace(TINY, cls_dim=40), seed=1), make_model(TINY, seed=2)
    before = model.cls_head_finetune[0].weight.detach().clone()
    path = tmp_path / "modelnet40.pth"
    torch.save({"base_model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    load_official_checkpoint(model, path)
    after = model.cls_head_finetune[0].weight
    assert not torch.equal(after, before) and not torch.equal(after, source.cls_head_finetune[0].weight)


@pytest.mark.parametrize("wrap", ["base_model", "model", None])
def test_finetuned_checkpoint_with_our_classes_loads_completely(tmp_path: Path, wrap: str | None) -> None:
    source, model = make_model(TINY, seed=1), make_model(TINY, seed=2)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "finetuned.pth"
    torch.save(state if wrap is None else {wrap: state}, path)
    report = load_official_checkpoint(model, path)
    assert (report.missing, report.unexpected, report.dropped) == ([], [], [])
    source.eval(), model.eval()
    points = cloud(2, TINY.num_points)
    with torch.no_grad():
        assert torch.equal(model(points), source(points))


@pytest.mark.parametrize("other", [dataclasses.replace(TINY, trans_dim=48), dataclasses.replace(TINY, depth=3),
                                   dataclasses.replace(TINY, encoder_dims=32)])
def test_checkpoint_of_another_architecture_raises(tmp_path: Path, other: PointBertConfig) -> None:
    path = tmp_path / "other-arch.pth"
    torch.save({"base_model": official_pretrain_state(make_model(other))}, path)
    with pytest.raises(ValueError, match=r"other-arch\.pth.*offending keys: module\.transformer_q\."):
        load_official_checkpoint(make_model(TINY), path)


def test_checkpoint_with_almost_nothing_in_common_raises(tmp_path: Path) -> None:
    path = tmp_path / "dvae.pth"
    dvae_like = {f"module.dvae.{k}": v for k, v in make_model(TINY).state_dict().items()}
    dvae_like["module.transformer_q.norm.weight"] = torch.ones(TINY.trans_dim)
    torch.save({"base_model": dvae_like}, path)
    with pytest.raises(ValueError, match=r"dvae\.pth: only 1 of \d+ Point-BERT backbone tensors"):
        load_official_checkpoint(make_model(TINY), path)


def test_non_state_dict_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match=r"junk\.pth"):
        load_official_checkpoint(make_model(TINY), path)


def test_a_checkpoint_saved_before_patch_width_existed_loads_with_the_official_width(tmp_path: Path) -> None:
    # Checkpoints written before the field carry no `patch_width` in their config: they were all 256 wide.
    model = make_model(CPU_WIDE).eval()
    raw = {"model": model.state_dict(), "config": {k: v for k, v in dataclasses.asdict(CPU_WIDE).items()
                                                   if k != "patch_width"}}
    torch.save(raw, tmp_path / "old.pt")
    loaded, config = load_checkpoint(tmp_path / "old.pt")
    assert config == CPU_WIDE
    points = cloud(2, CPU_WIDE.num_points, seed=1)
    with torch.no_grad():
        assert torch.equal(loaded(points), model(points))

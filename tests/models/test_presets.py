"""Every shipped preset of every model family loads, and every choice offered derives from its registry."""
import inspect
import typing

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from models.affordance_net import PRESETS as AFFORDANCE_PRESETS
from models.affordance_net import AffordanceNet
from models.point_bert import PRESETS as CLASSIFIER_PRESETS
from models.point_bert import PointTransformer
from models.presets import Presets
from tasks.affordance.config import MapTrainConfig
from tasks.grasp.config import PRESETS as GRASP_PRESETS
from tasks.grasp.config import GraspTrainConfig, preset_config
from tasks.pseudo_label.classifier_config import TrainConfig

FAMILIES = {"classifier": CLASSIFIER_PRESETS, "affordance": AFFORDANCE_PRESETS, "grasp": GRASP_PRESETS}
runner = CliRunner()


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", CLASSIFIER_PRESETS.names)
def test_every_classifier_preset_builds_a_model(name):
    config = CLASSIFIER_PRESETS.from_name(name)
    assert _parameters(PointTransformer(config)) > 0
    assert TrainConfig(preset=name).preset == name


@pytest.mark.parametrize("name", AFFORDANCE_PRESETS.names)
def test_every_affordance_preset_builds_a_model(name):
    assert _parameters(AffordanceNet(AFFORDANCE_PRESETS.from_name(name))) > 0
    assert MapTrainConfig(preset=name).preset == name


@pytest.mark.parametrize("name", GRASP_PRESETS.names)
def test_every_grasp_preset_gives_valid_training_settings(name):
    config = preset_config(name)
    assert isinstance(config, GraspTrainConfig) and config.model_config() == GRASP_PRESETS.from_name(name).model
    for field, value in GRASP_PRESETS.from_name(name).train.items():
        assert getattr(config, field) == value, field


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_an_unknown_name_is_refused_with_the_registered_names(family: Presets):
    with pytest.raises(ValueError) as caught:
        family.from_name("huge")
    assert "'huge'" in str(caught.value) and all(name in str(caught.value) for name in family.names)


def test_a_registry_refuses_a_default_it_does_not_hold():
    with pytest.raises(ValueError, match="default preset 'c' is not one of"):
        Presets("toy", {"a": 1, "b": 2}, default="c")


@pytest.mark.parametrize(("command", "option", "family"), [
    (["pseudo-label"], "--preset", CLASSIFIER_PRESETS), (["affordance"], "--preset", AFFORDANCE_PRESETS),
    (["train"], "--preset", GRASP_PRESETS), (["demo"], "--affordance-preset", AFFORDANCE_PRESETS),
    (["demo"], "--classifier-preset", CLASSIFIER_PRESETS)])
def test_cli_help_lists_exactly_the_registered_names(command, option, family):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert option in result.output and family.help() in " ".join(result.output.split())


def test_flow_parameters_offer_exactly_the_registered_names():
    from flows.affordance import affordance
    from flows.annotate import annotate
    from flows.pseudo_label import pseudo_label
    from flows.self_training import self_training
    from flows.train_grasp import train_grasp

    expected = {(annotate, "affordance_preset"): AFFORDANCE_PRESETS,
                (annotate, "classifier_preset"): CLASSIFIER_PRESETS, (affordance, "preset"): AFFORDANCE_PRESETS,
                (self_training, "classifier_preset"): CLASSIFIER_PRESETS,
                (pseudo_label, "preset"): CLASSIFIER_PRESETS, (train_grasp, "preset"): GRASP_PRESETS}
    for (flow, parameter), family in expected.items():
        hint = typing.get_type_hints(flow.fn)[parameter]
        assert typing.get_args(hint) == family.names, (flow.name, parameter)
        assert inspect.signature(flow.fn).parameters[parameter].default == family.default

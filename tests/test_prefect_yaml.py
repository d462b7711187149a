"""Every deployment shipped in prefect.yaml loads, and its parameters fit its flow's signature."""

import inspect
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def test_prefect_yaml_has_deployments():
    assert DEPLOYMENTS, "prefect.yaml lists no deployments"
    names = [d["name"] for d in DEPLOYMENTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_deployment_parameters_match_the_flow(deployment):
    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    params = deployment.get("parameters") or {}
    accepted = inspect.signature(flow.fn).parameters
    assert set(params) <= set(accepted), f"unknown parameters {set(params) - set(accepted)}"
    flow.validate_parameters(params)  # raises on a wrong type
    assert deployment["work_pool"]["name"]


@pytest.mark.parametrize("deployment", [d for d in DEPLOYMENTS if d.get("triggers")], ids=lambda d: d["name"])
def test_trigger_parameters_name_the_flow_parameters(deployment):
    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    accepted = inspect.signature(flow.fn).parameters
    for trigger in deployment["triggers"]:
        # the events this project emits: afford watch's (tasks/ingest/watch.py) and annotate's last step's
        # (tasks/store/published_event.py); the templates read what they carry
        assert trigger["expect"] in (["dataset.changed"], ["annotated.published"])
        assert set(trigger["parameters"]) <= set(accepted), set(trigger["parameters"]) - set(accepted)
        for value in trigger["parameters"].values():
            assert value.startswith("{{ event.") and "}}" in value, value


def test_the_training_trigger_is_off_by_default_and_reads_what_annotate_publishes():
    from tasks.store.published_event import EVENT, RESOURCE_PREFIX

    [trigger] = next(d for d in DEPLOYMENTS if d["name"] == "train-grasp")["triggers"]
    assert trigger["enabled"] is False  # one line to turn on
    assert trigger["expect"] == [EVENT] and trigger["match"]["prefect.resource.id"] == f"{RESOURCE_PREFIX}*"
    assert trigger["parameters"]["annotated_version"] == "{{ event.payload.version }}"

import asyncio

import pytest

from flows.demo import demo
from tasks.store.read import open_table

pytestmark = pytest.mark.server


def test_demo_flow_writes_tables_and_an_artifact(prefect_harness, tmp_path):
    report = demo(data_root=str(tmp_path), seed=1, num_points=128, categories=["knife"],
                  labelled_objects_per_category=1, labelled_grasps_per_part=1, epochs=1, instructions="template",
                  affordance_preset="tiny", affordance_steps=2)
    # One knife per dataset, one graspable part (the handle), one grasp: 4 inputs, 2 broken on purpose.
    assert "4 inputs = 2 rows + 2 rejects" in report
    assert open_table(tmp_path / "tables" / "oakink").num_rows == 1
    assert (tmp_path / "renders" / "grab.png").is_file()
    assert not (tmp_path / "renders" / "affordpose.png").exists()  # its only input was broken: nothing to draw
    # No labelled row is left to learn from: pseudo-labelling says so instead of failing the run.
    assert "no labelled samples" in report
    assert "Affordance maps skipped" in report and "no training items" in report

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def latest():
        async with get_client() as client:
            only_demo = ArtifactFilter(key=ArtifactFilterKey(any_=["demo-tables"]))
            return await client.read_artifacts(artifact_filter=only_demo)

    artifacts = asyncio.run(latest())
    assert artifacts and "2 rows + 2 rejects" in artifacts[-1].data

    # a second demo on the same data root writes its synthetic datasets afresh
    again = demo(data_root=str(tmp_path), seed=1, num_points=128, categories=["knife"],
                 labelled_objects_per_category=1, labelled_grasps_per_part=1, epochs=1, instructions="template",
                 affordance_preset="tiny", affordance_steps=2)
    assert "4 inputs = 2 rows + 2 rejects" in again


def test_demo_refuses_a_datasets_folder_it_did_not_write(tmp_path):
    from flows.demo import clear_synthetic_datasets

    (tmp_path / "datasets" / "oakink").mkdir(parents=True)
    (tmp_path / "datasets" / "oakink" / "real.pkl").write_bytes(b"x")
    with pytest.raises(ValueError, match="holds datasets the demo did not write"):
        clear_synthetic_datasets(tmp_path / "datasets")
    assert (tmp_path / "datasets" / "oakink" / "real.pkl").is_file()

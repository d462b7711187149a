import asyncio

import pytest

from flows.demo import demo
from tasks.table_read import open_table

pytestmark = pytest.mark.server


def test_demo_flow_writes_tables_and_an_artifact(prefect_harness, tmp_path):
    report = demo(data_root=str(tmp_path), n_samples=24, seed=1, rows_per_shard=5)
    assert "24 inputs = 21 rows + 3 rejects" in report
    assert open_table(tmp_path / "tables" / "samples").num_rows == 21

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def latest():
        async with get_client() as client:
            only_demo = ArtifactFilter(key=ArtifactFilterKey(any_=["demo-tables"]))
            return await client.read_artifacts(artifact_filter=only_demo)

    artifacts = asyncio.run(latest())
    assert artifacts and "21 rows + 3 rejects" in artifacts[-1].data

"""The dataset-format registry: built-ins, refusals, and a toy format added without editing any project module.

The toy format is a plugin module the test writes into a temporary folder: one JSON file per grasp holding a
box mesh and MANO parameters. It is registered through AFFORD_FORMAT_PLUGINS, and the real console commands
(`afford ingest`, `afford watch --once`) run on it in fresh processes.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tasks.ingest.formats import FORMATS, DatasetFormat, get_format, labelled_format, register_format
from tasks.store.read import open_table

ROOT = Path(__file__).resolve().parents[3]

PLUGIN = textwrap.dedent('''
    """A toy dataset format: <object>/<n>.json = {"category", "vertices", "faces", "pose", "betas", "trans"}."""
    import json
    from pathlib import Path

    import numpy as np

    from schemas.ids import hash_bytes, make_sample_id
    from tasks.ingest.common import IngestError, RawSample, reject_from, split_for
    from tasks.ingest.meshes import canonical_mesh
    from tasks.ingest.formats import DatasetFormat, register_format


    def read_toy(root, template, frame_step):
        for path in sorted(Path(root).rglob("*.json")):
            relative = path.relative_to(root).as_posix()
            payload = path.read_bytes()
            try:
                data = json.loads(payload)
                mesh = canonical_mesh(np.asarray(data["vertices"], float), np.asarray(data["faces"], np.int64),
                                      None, relative, True, hash_bytes(payload), relative)
            except (KeyError, ValueError) as exc:
                yield reject_from(IngestError(relative, "toy", str(exc)), "toy")
                continue
            except IngestError as exc:
                yield reject_from(exc, "toy")
                continue
            object_id = path.parent.name
            yield RawSample(sample_id=make_sample_id("toy", relative), dataset="toy", split=split_for(object_id),
                            source_path=relative, source_index=0, content_hash=hash_bytes(payload),
                            object_id=object_id, object_category=data["category"], object_vertices=mesh.vertices,
                            object_faces=mesh.faces, hand_pose=np.asarray(data["pose"], np.float32),
                            hand_betas=np.asarray(data["betas"], np.float32),
                            hand_trans=np.asarray(data["trans"], np.float32))


    register_format(DatasetFormat("toy", read_toy, description="a toy format registered by a plugin"))
''')


def _box(size: float = 0.05) -> tuple[list, list]:
    corners = [[x, y, z] for x in (0, size) for y in (0, size) for z in (0, size)]
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
             [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return corners, faces


def _write_toy_dataset(root: Path, grasps: int) -> None:
    vertices, faces = _box()
    rng = np.random.default_rng(0)
    for n in range(grasps):
        folder = root / f"box{n % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        grasp = {"category": "bottle", "vertices": vertices, "faces": faces,
                 "pose": rng.normal(0, 0.1, 48).tolist(), "betas": [0.0] * 10, "trans": [0.0, 0.0, 0.1]}
        (folder / f"{n}.json").write_text(json.dumps(grasp))
    (root / "box0" / "broken.json").write_text('{"category": "bottle"}')  # no mesh: one reject, the run goes on


def _afford(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path / "plugins"), str(ROOT)]),
                        "AFFORD_FORMAT_PLUGINS": "toy_format", "AFFORD_DATA_ROOT": str(tmp_path / "data"),
                        "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_built_in_formats_and_which_carries_labels():
    assert tuple(FORMATS)[:4] == ("affordpose", "oakink", "grab", "ho3d")
    assert labelled_format() == "affordpose"
    assert [name for name in ("affordpose", "oakink", "grab", "ho3d") if FORMATS[name].labelled] == ["affordpose"]
    assert all(FORMATS[name].write is not None for name in ("affordpose", "oakink", "grab", "ho3d"))


def test_an_unknown_format_is_refused_with_the_registered_names():
    with pytest.raises(ValueError) as caught:
        get_format("coco")
    assert "'coco'" in str(caught.value) and "affordpose, oakink, grab, ho3d" in str(caught.value)


def test_a_taken_or_unsafe_name_is_refused():
    with pytest.raises(ValueError, match="'oakink' is already registered"):
        register_format(DatasetFormat("oakink", lambda root, template, step: iter(())))
    with pytest.raises(ValueError, match="names a folder"):
        register_format(DatasetFormat("../up", lambda root, template, step: iter(())))
    assert "../up" not in FORMATS


@pytest.mark.slow
def test_a_toy_format_plugin_ingests_and_is_watched_through_the_real_cli(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_format.py").write_text(PLUGIN)
    datasets = tmp_path / "datasets"
    _write_toy_dataset(datasets / "toy", grasps=4)

    result = _afford(["ingest", "--format", "toy", "--root", str(datasets / "toy"), "--out",
                      str(tmp_path / "data" / "tables" / "toy"), "--num-points", "64"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    table = open_table(tmp_path / "data" / "tables" / "toy")
    assert table.num_rows == 4 and set(table.read().column("dataset").to_pylist()) == {"toy"}
    rejects = open_table(tmp_path / "data" / "tables" / "rejects").read().to_pylist()
    assert [r["dataset"] for r in rejects] == ["toy"] and "broken.json" in rejects[0]["reason"]

    result = _afford(["watch", str(datasets), "--once", "--state", str(tmp_path / "watch")], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "toy: baseline recorded (5 files)" in result.stdout

    help_text = _afford(["ingest", "--help"], tmp_path).stdout
    assert "toy" in help_text  # the --format choices come from the registry, plugins included

"""The data-root layout: every sub-path named once, and no flow, task or command joining them by hand."""
import re
from pathlib import Path

import pytest

from schemas.data_root import CURRENT_STAGES, DataRoot

ROOT = Path(__file__).resolve().parents[2]


def test_paths_of_a_data_root():
    layout = DataRoot("afford-data")
    assert layout.table("oakink") == Path("afford-data/tables/oakink")
    assert layout.annotated == Path("afford-data/tables/annotated")
    assert layout.rejects == Path("afford-data/tables/rejects")
    assert layout.review_store == Path("afford-data/review/review.sqlite")
    assert layout.instruction_cache == Path("afford-data/cache/instructions.sqlite")
    assert layout.current("classifier") == Path("afford-data/current/classifier.json")
    assert DataRoot.beside("x/tables/oakink", "rejects") == Path("x/tables/rejects")


def test_the_data_root_of_a_table_is_two_folders_up(tmp_path):
    assert DataRoot.of_table(tmp_path / "tables" / "annotated").path == tmp_path


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_a_table_name_that_is_not_a_plain_folder_is_refused(name):
    with pytest.raises(ValueError, match="table name"):
        DataRoot("r").table(name)


def test_a_stage_without_a_current_checkpoint_is_refused_by_name():
    with pytest.raises(ValueError, match="stage 'grasp' records no current checkpoint; stages that do: "
                                         + ", ".join(CURRENT_STAGES)):
        DataRoot("r").current("grasp")


def test_no_production_module_builds_a_data_root_path_by_hand():
    """The layout's folder names appear as path parts only in schemas/data_root.py (and the demo's synth code)."""
    pattern = re.compile(r'/ "(tables|review|cache|models|current|self_training|watch|renders|datasets)"'
                         r'|"(review\.sqlite|instructions\.sqlite|classifier\.json)"')
    offenders = []
    for package in ("flows", "tasks", "cli", "review"):
        for path in (ROOT / package).rglob("*.py"):
            if "synth" in path.relative_to(ROOT).parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []

"""The layering the code promises, checked on the code itself:

- production code imports nothing from tasks/synth (only the demo, the synth command and tests do);
- models/ and ops/ import nothing from tasks/, flows/ or cli/ (ops sit below models, models below tasks);
- sampling, map inference, evaluation and re-annotation load no trainer module;
- no production module is over 400 lines.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ("cli", "flows", "models", "ops", "review", "schemas", "tasks")
SYNTH_ALLOWED = {"flows/demo.py", "cli/demo_cmd.py", "cli/synth_cmd.py"}
TRAINERS = {"tasks.grasp.train", "tasks.affordance.train", "tasks.pseudo_label.classifier_train"}
INFERENCE = ("tasks.grasp.sample", "tasks.grasp.evaluation.evaluate", "tasks.grasp.evaluation.inputs",
             "tasks.affordance.inference", "tasks.affordance.maps", "flows.reannotate", "cli.sample_cmd")
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for package in PRODUCTION for p in (ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_production_code_imports_nothing_from_synth():
    offenders = [f"{_rel(p)} imports {name}" for p in _modules()
                 if not _rel(p).startswith("tasks/synth/") and _rel(p) not in SYNTH_ALLOWED
                 for name in _imports(p) if name == "tasks.synth" or name.startswith("tasks.synth.")]
    assert offenders == []


@pytest.mark.parametrize("package", ["models", "ops"])
def test_lower_layers_import_nothing_above_them(package):
    above = ("tasks", "flows", "cli", "review") + (("models",) if package == "ops" else ())
    offenders = [f"{_rel(p)} imports {name}" for p in (ROOT / package).rglob("*.py")
                 for name in _imports(p) if name.split(".")[0] in above]
    assert offenders == []


def test_inference_loads_no_trainer():
    code = (f"import sys\nfor m in {INFERENCE!r}: __import__(m)\n"
            f"print(sorted(set(sys.modules) & {TRAINERS!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_production_module_is_over_400_lines():
    long = {_rel(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}

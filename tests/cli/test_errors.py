"""Expected errors end in one `error:` line naming the variable, option or file, exit code 2 and no traceback;
`--debug` shows the traceback. Each case runs the real `afford` entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tasks.ingest.pipeline import ingest
from tasks.synth.datasets import synthesize_datasets

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # one interpreter start per case


def afford(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AFFORD_")}
    environment |= {"PYTHONPATH": str(ROOT), "COLUMNS": "200", "AFFORD_DATA_ROOT": str(cwd / "data"), **env}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=300)


def assert_one_error_line(result: subprocess.CompletedProcess, *names: str) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert errors, result.stderr[-2000:]
    for name in names:
        assert name in errors[0], (name, errors)
    return errors[0]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    """A small OakInk dataset, ingested: tables/oakink and tables/rejects (of another row model)."""
    root = tmp_path_factory.mktemp("cli-errors")
    summary = synthesize_datasets(root / "datasets", datasets=("oakink",), categories=("mug",), steps=5)
    ingest("oakink", root / "datasets" / "oakink", root / "tables" / "oakink", summary.mano_root, num_points=64)
    return root


@pytest.mark.parametrize(("variable", "value"), [("AFFORD_ROWS_PER_SHARD", "0"), ("AFFORD_LLM_TIMEOUT_S", "nan")])
def test_a_bad_setting_is_named_by_its_variable(tmp_path, variable, value):
    line = assert_one_error_line(afford(["inspect", str(tmp_path)], tmp_path, **{variable: value}), variable)
    assert repr(value) in line


def test_synth_into_a_file_names_the_option(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert_one_error_line(afford(["synth", "--out", "afile"], tmp_path), "--out", "afile")


def test_a_review_store_that_is_not_sqlite_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("not a database\n")
    for command in (["review", "serve", "--port", "0"], ["review", "resume", "0"]):
        assert_one_error_line(afford([*command, "--store", "notes.txt"], tmp_path), "notes.txt", "not an SQLite")
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"


def test_a_negative_cycle_is_refused_by_its_bound(tmp_path):
    result = afford(["review", "resume", "-1"], tmp_path)
    assert result.returncode == 2 and "No such option" not in result.stderr
    assert "greater than or equal to 0" in result.stderr and "cycle" in result.stderr, result.stderr


def test_instruct_on_a_rejects_table_names_its_manifest(tables):
    line = assert_one_error_line(afford(["instruct", "--table", str(tables / "tables" / "rejects"), "--out", "i"],
                                        tables), "rejects", "row_model")
    assert "Reject" in line and "Sample" in line


def test_the_openai_generator_without_an_endpoint_names_the_variables(tables):
    assert_one_error_line(afford(["instruct", "--table", str(tables / "tables" / "oakink"), "--out", "i",
                                  "--generator", "openai"], tables), "AFFORD_LLM_BASE_URL", "AFFORD_LLM_MODEL")


class _Refuses(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "invalid api key", "type": "invalid_request_error"}}')

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_an_endpoint_refusing_the_key_is_one_line_before_any_work(tables):
    server = HTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        result = afford(["instruct", "--table", str(tables / "tables" / "oakink"), "--out", "i", "--generator",
                         "openai"], tables, AFFORD_LLM_BASE_URL=url, AFFORD_LLM_MODEL="m", AFFORD_LLM_API_KEY="bad")
    finally:
        server.shutdown()
    assert_one_error_line(result, "AFFORD_LLM_API_KEY", "401")
    assert "bad" not in result.stderr.replace("bad input", "")  # the key is never printed
    assert not (tables / "i").exists()


def test_a_folder_without_inputs_of_the_format_names_it_and_the_layout(tables):
    result = afford(["ingest", "--format", "ho3d", "--root", str(tables / "datasets" / "oakink"), "--out", "h"],
                    tables)
    assert_one_error_line(result, "datasets/oakink", "no ho3d input found", "<split>/<sequence>/meta/<frame>.pkl")
    assert not (tables / "h").exists()


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = afford(["--debug", "review", "resume", "0", "--store", "afile"], tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "not an SQLite" in result.stderr
    assert "Traceback" in afford(["review", "resume", "0", "--store", "afile"], tmp_path, AFFORD_DEBUG="1").stderr

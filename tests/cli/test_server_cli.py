"""`afford server up/down` start and stop a real Prefect server by recorded PID; `afford deploy` needs an API."""

import os
import urllib.request

import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.instruct.endpoint import free_port

runner = CliRunner()


def test_deploy_without_an_api_url_names_the_variable(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = runner.invoke(app, ["deploy"])
    assert result.exit_code == 2 and "PREFECT_API_URL is not set" in result.output


def test_down_with_nothing_started_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    result = runner.invoke(app, ["server", "down"])
    assert result.exit_code == 0 and "nothing to stop" in result.output


@pytest.mark.server
@pytest.mark.slow
def test_up_then_down_starts_and_stops_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    port = free_port()
    result = runner.invoke(app, ["server", "up", "--port", str(port), "--no-worker", "--timeout", "180"])
    try:
        assert result.exit_code == 0, result.output
        assert f"export PREFECT_API_URL=http://127.0.0.1:{port}/api" in result.output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as response:
            assert response.status == 200
        pid = int((tmp_path / "server.pid").read_text())
        again = runner.invoke(app, ["server", "up", "--port", str(port)])
        assert again.exit_code == 1 and "server.pid exists" in again.output  # one server per PREFECT_HOME
    finally:
        down = runner.invoke(app, ["server", "down"])
    assert down.exit_code == 0 and f"server (pid {pid}) stopped" in down.output
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "server.pid").exists()

"""Ctrl-C during the instruct stage stops every process the command started.

The embedded LLM endpoint runs in a session of its own, so a terminal's SIGINT never reaches it: the command must
stop it on the way out. The temporary Prefect server must go too. The test sends SIGINT to the command's process
group, as a terminal does, once the endpoint is serving. It then checks that none of the processes it found under
the command is still alive, and that the command says it was interrupted.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from schemas.rows import Sample
from tasks.instruct.endpoint import ensure_model_dir
from tasks.store.write import write_table
from tests.factories import sample_dicts

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process now running, from /proc/<pid>/stat."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        # the command name sits in parentheses and may hold spaces: the fields after the last ')' are fixed
        found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _descendants(pid: int) -> dict[int, str]:
    """{pid: command line} of every process below `pid`."""
    parents = _parents()
    found, frontier = {}, [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        for child in children:
            try:
                found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
        frontier = children
    return found


def _still_running(pid: int, command: str) -> bool:
    """The same process (same command line: a pid may be reused) is alive and not a zombie."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        now = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return state != "Z" and now == command


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def test_ctrl_c_during_instruct_leaves_no_child_process(tmp_path):
    data_root = tmp_path / "data"
    ensure_model_dir(data_root)  # converted before the clock starts (~30 s)
    table = tmp_path / "tables" / "affordpose"
    write_table(table, sample_dicts(12, num_points=16), Sample)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORD_LLM_")}
    env |= {"AFFORD_DATA_ROOT": str(data_root), "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    afford = Path(sys.executable).with_name("afford")
    process = subprocess.Popen([str(afford), "instruct", "--table", str(table), "--out",
                                str(tmp_path / "tables" / "instructions")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + 600
        while not any("embedded endpoint" in line and "serving" in line for line in output):
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            assert line is not None, "the command ended before the endpoint started:\n" + "".join(output)
            output.append(line)
        time.sleep(2)  # a request in flight
        children = _descendants(process.pid)
        assert any(" serve " in command for command in children.values()), children
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        code = process.wait(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    while (line := lines.get(timeout=30)) is not None:
        output.append(line)
    text = "".join(output)
    left = {pid: command for pid, command in children.items() if _still_running(pid, command)}
    assert left == {}, f"still running after Ctrl-C: {left}\n{text}"
    assert code == 130, text
    assert "stopped" in text and "interrupted (Ctrl-C)" in text, text


# Ctrl-C as a terminal delivers it: a test run started in the background (`make test &`, a CI job) passes SIGINT
# down ignored, and Python then keeps ignoring it (the `afford` CLI installs its own handler; this bare script does
# not).
WARMING = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from schemas.settings import AffordSettings
from tasks.instruct.warm_endpoint import warm_endpoint
root = sys.argv[1]
with warm_endpoint(root, AffordSettings(data_root=root, llm_base_url=None), "auto"):
    print("earlier stages running", flush=True)
    time.sleep(600)
"""


def test_ctrl_c_while_the_endpoint_warms_up_ahead_leaves_no_child_process(tmp_path):
    """A run starts the embedded endpoint ahead of the instruct stage (tasks/instruct/warm_endpoint.py) and is
    interrupted in an earlier stage, while the server is still starting: the server must not outlive it."""
    data_root = tmp_path / "data"
    ensure_model_dir(data_root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORD_LLM_")}
    process = subprocess.Popen([sys.executable, "-c", WARMING, str(data_root)], env=env,
                               cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, children = time.monotonic() + 120, {}
        while not any(" serve " in command for command in children.values()):
            assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
            time.sleep(0.2)
            children = _descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # the server is spawned and loading: not yet answering
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    left = {pid: command for pid, command in children.items() if _still_running(pid, command)}
    assert left == {}, f"still running after Ctrl-C: {left}\n{output}"
    assert process.returncode != 0 and "KeyboardInterrupt" in output, output

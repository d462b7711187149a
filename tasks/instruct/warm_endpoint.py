"""Start the embedded LLM endpoint ahead of the instruct stage, so its one-time costs overlap earlier stages.

Converting the GGUF model (first run on a data root) and starting `transformers serve` take about a minute of
one core on a 2-core machine, and the instruct stage used to wait for both before its first request. A run that
will need the model (`wanted`) starts them in a background thread at its beginning, while synthesis, ingest and
self-training run; the instruct stage's embedded generator adopts the running endpoint (`adopt`) instead of
starting its own and stops it when the stage ends (`release`: later stages need the cores); the run stops it when
it ends, if no stage did, on error or Ctrl-C included.

    with warm_endpoint(data_root, settings, kind):   # no-op unless the embedded model will be asked
        ... stages ...; instruct adopts it

The endpoint is found by its model folder, so a demo that warms it up and the annotate flow it runs share one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.settings import AffordSettings
    from tasks.instruct.endpoint import Endpoint

_LOCK = threading.Lock()
_WARMING: dict[Path, _Warmup] = {}  # model folder -> its warm-up, while a run holds it


class _Warmup:
    """One background start: ensure_model_dir, spawn, wait until it answers; `endpoint()` waits for it and
    re-raises its error."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self._done = threading.Event()
        self._endpoint: Endpoint | None = None
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="warm-llm-endpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from tasks.instruct.endpoint import ensure_model_dir, spawn_endpoint, wait_ready

        try:
            model_dir = ensure_model_dir(self.data_root)
            with _LOCK:
                if self._stopped:  # the run ended during the conversion: start nothing
                    return
                # Held from the moment the child exists, so a run that ends now (Ctrl-C) stops it: the server
                # runs in its own session and would not get the terminal's signal.
                self._endpoint = endpoint = spawn_endpoint(model_dir)
            wait_ready(endpoint)
            print(f"embedded endpoint {endpoint.base_url} ready ahead of the instruct stage "
                  f"(log {endpoint.log_path})")
        except BaseException as error:  # kept for the stage that adopts it, which reports it
            self._error = error
        finally:
            self._done.set()

    def endpoint(self) -> Endpoint:
        self._done.wait()
        if self._error is not None:
            with _LOCK:
                self._endpoint = None  # wait_ready stopped it
            raise self._error  # as the stage would have raised it starting the server itself (a missing model...)
        if self._endpoint is None:
            raise RuntimeError("the embedded endpoint started ahead was stopped before it was used")
        return self._endpoint

    def stop(self) -> None:
        from tasks.instruct.endpoint import stop_endpoint

        with _LOCK:
            self._stopped = True
            endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            stop_endpoint(endpoint)
            print(f"embedded endpoint {endpoint.base_url} stopped")


def wanted(kind: str, settings: AffordSettings) -> bool:
    """Whether a run with instruction generator `kind` will ask the embedded model: `auto` without a configured
    endpoint, unless the data root's cache already holds answers of the embedded model (a re-run: the keys it
    needs are most likely there, and a server started for nothing would only slow the stages it overlaps)."""
    if kind != "auto" or settings.llm_base_url:
        return False
    from schemas.data_root import DataRoot
    from tasks.instruct.cache import InstructionCache
    from tasks.instruct.endpoint import EMBEDDED_MODEL
    from tasks.instruct.generators import OpenAIGenerator

    cache = InstructionCache(DataRoot(settings.data_root).instruction_cache)
    return not cache.holds_model(EMBEDDED_MODEL, OpenAIGenerator.prompt_version)


@contextmanager
def warm_endpoint(data_root: str | Path, settings: AffordSettings, kind: str) -> Iterator[None]:
    """Warm the embedded endpoint for the body when `wanted`; stop it after (a body nested in another warm-up of
    the same data root leaves it to the outer one)."""
    from tasks.instruct.endpoint import model_dir_path

    folder = model_dir_path(Path(data_root)).resolve()
    with _LOCK:
        mine = folder not in _WARMING and wanted(kind, settings)
        if mine:
            _WARMING[folder] = _Warmup(Path(data_root).resolve())
    try:
        yield
    finally:
        if mine:
            with _LOCK:
                warmup = _WARMING.pop(folder)
            warmup.stop()


def adopt(model_dir: Path) -> Endpoint | None:
    """The endpoint warmed up for `model_dir` (waiting for it to be ready), or None when nothing warms it."""
    with _LOCK:
        warmup = _WARMING.get(Path(model_dir).resolve())
    return warmup.endpoint() if warmup is not None else None


def release(model_dir: Path) -> None:
    """Stop the endpoint warmed up for `model_dir` now (the stage that used it is done); the run's own exit then
    has nothing left to stop."""
    with _LOCK:
        warmup = _WARMING.get(Path(model_dir).resolve())
    if warmup is not None:
        warmup.stop()

"""The reviewer web app: a JSON API over the review store (under /api) and the page people review with (/).

Every state change goes through `review.store.ReviewStore`, which commits each decision to SQLite before the
request answers, so killing the server never loses an acknowledged decision. Text from the store (object classes,
comments) leaves as JSON only; the page inserts it with `textContent`, and a Content-Security-Policy forbids inline
scripts as a second line of defence.
"""

from __future__ import annotations

import html
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import BackgroundTasks, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from review.agreement import agreement_report
from review.export import trail_parquet_bytes
from review.geometry import geometry_path
from review.guard import RequestGuard, allowed_host_names, quiet_access_log, validation_error
from review.images import cycle_images_dir, image_path, skip_note_path
from review.pace import reviewer_pace
from review.store import RelabelledToPredictedError, ReviewStore
from schemas.affordance import AFFORDANCES
from schemas.review import REVIEWER_PATTERN, DecisionIn, DecisionRecord, ItemState, Progress, ReviewResult

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
OnComplete = Callable[[int, ReviewResult], None]
T = TypeVar("T")

# The page loads only its own script, style and pictures (blob: URLs of pictures fetched with the token).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page URL may carry ?token=
}
# SQLite holds 64-bit integers: a larger cycle or position overflowed into a 500. No queue comes near 2**31.
MAX_INDEX = 2**31 - 1
Cycle = Annotated[int, PathParam(ge=0, le=MAX_INDEX, description="Self-training cycle.")]
Position = Annotated[int, PathParam(ge=0, le=MAX_INDEX, description="0-based position in the cycle's queue.")]
After = Annotated[int, Query(ge=-1, le=MAX_INDEX, description="Start after this position (-1: from the start).")]
ForReviewer = Annotated[str | None, Query(pattern=REVIEWER_PATTERN,
                                          description="Leave out items this reviewer already decided.")]


class UndoIn(BaseModel):
    """Undo the latest decision of this reviewer in the cycle."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str = Field(pattern=REVIEWER_PATTERN)


class CycleSummary(BaseModel):
    cycle: int
    progress: Progress


class DecisionOut(BaseModel):
    """The item a decision (or an undo) touched, None when an undo found nothing, and the cycle's progress."""

    state: ItemState | None
    progress: Progress


class CompletionGuard:
    """Calls `on_complete(cycle, result)` once per cycle in this process, however many requests complete it.

    Two requests can both see a queue complete (each decides, then reads progress); the lock and the set of
    notified cycles make the second one a no-op. The set lives in memory: a restarted server, or a second server
    on the same store, may call again, so `on_complete` must be safe to repeat (`resume_review_flow` is: Prefect
    refuses to resume a run that is no longer paused). A failing call is logged and forgotten, so the next
    decision that completes the queue tries again.
    """

    def __init__(self, store: ReviewStore, on_complete: OnComplete | None) -> None:
        self._store = store
        self._on_complete = on_complete
        self._lock = threading.Lock()
        self._notified: set[int] = set()

    def notify(self, cycle: int) -> None:
        if self._on_complete is None:
            return
        with self._lock:  # held during the call: a concurrent completer waits, then sees the cycle notified
            if cycle in self._notified:
                return
            self._notified.add(cycle)
            try:
                self._on_complete(cycle, self._store.result(cycle))
            except Exception:
                self._notified.discard(cycle)
                log.exception("on_complete failed for cycle %d; the next completing decision retries", cycle)


def _found(call: Callable[..., T], *args: object) -> T:
    """The store's KeyError (unknown cycle, position or sample) as a 404 whose detail names the missing key."""
    try:
        return call(*args)
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0]) if exc.args else "not found") from None


def _token_ok(request: Request, token: str) -> bool:
    """Bearer header or ?token= query, compared in constant time."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    supplied = [value.strip()] if scheme.lower() == "bearer" else []
    supplied.append(request.query_params.get("token", ""))
    return any(secrets.compare_digest(s.encode(), token.encode()) for s in supplied if s)


def create_app(store_path: Path, images_dir: Path, token: str | None = None,
               on_complete: OnComplete | None = None, allowed_hosts: Iterable[str] = ()) -> FastAPI:
    """The review app over the store at `store_path`, serving pictures from `images_dir/<cycle>/<position>.png`.

    token: when set, every request but /healthz and /static/vendor/ needs `Authorization: Bearer <token>` or
    `?token=<token>`.
    on_complete(cycle, result): called when a decision completes a cycle's queue (see CompletionGuard).
    allowed_hosts: Host header names answered besides 127.0.0.1, localhost, [::1] and the bound address (any
    port); other hosts get 400. Request bodies over 64 KiB get 413; a 422 names fields, never echoes input.
    """
    if token is not None and not token:
        raise ValueError("token must be a non-empty string or None")
    store = ReviewStore(store_path)
    guard = CompletionGuard(store, on_complete)
    app = FastAPI(title="AffordGrasp review", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store = store
    app.state.completion = guard
    _add_middleware(app, token)
    app.add_middleware(RequestGuard, allowed=allowed_host_names(allowed_hosts), headers=SECURITY_HEADERS)
    app.add_exception_handler(RequestValidationError, validation_error)
    quiet_access_log()
    _add_page_routes(app, token)
    _add_item_routes(app, store, Path(images_dir))
    _add_decision_routes(app, store, guard)
    return app


def _public(path: str) -> bool:
    """What needs no token: the health check, and the vendored library code (three.js), which holds no data and
    which the 3-D view's module imports by relative URL, without the page's ?token= query."""
    return path == "/healthz" or (path.startswith("/static/vendor/") and ".." not in path)


def _add_middleware(app: FastAPI, token: str | None) -> None:
    @app.middleware("http")
    async def guard_and_headers(request: Request, call_next: Callable) -> Response:
        if token is not None and not _public(request.url.path) and not _token_ok(request, token):
            response: Response = JSONResponse(
                {"detail": "missing or wrong token: send 'Authorization: Bearer <token>' or ?token=<token>"},
                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def _add_page_routes(app: FastAPI, token: str | None) -> None:
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    # A browser loads the script and style without our header, so their URLs carry the token the page came with.
    asset_query = html.escape("?token=" + quote(token, safe="")) if token else ""
    page = page.replace("{{ASSET_QUERY}}", asset_query)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/classes")
    def classes() -> list[str]:
        """The affordance classes in classifier order; the page maps keys 1-9 to them."""
        return list(AFFORDANCES)


def _add_item_routes(app: FastAPI, store: ReviewStore, images_dir: Path) -> None:
    @app.get("/api/cycles")
    def cycles() -> list[CycleSummary]:
        return [CycleSummary(cycle=c, progress=store.progress(c)) for c in store.cycles()]

    @app.get("/api/cycles/{cycle}/next")
    def next_item(cycle: Cycle, after: After = -1, reviewer: ForReviewer = None) -> ItemState:
        """The next open item (pending, or disputed and waiting for a further decision) after `after`."""
        state = _found(store.next_pending, cycle, after, reviewer)
        if state is None:
            whose = f" for reviewer {reviewer}" if reviewer else ""
            raise HTTPException(status_code=404, detail=f"no open item left in cycle {cycle}{whose}")
        return state

    @app.get("/api/cycles/{cycle}/items/{position}")
    def item(cycle: Cycle, position: Position) -> ItemState:
        return _found(store.item, cycle, position)

    @app.get("/api/cycles/{cycle}/items/{position}/image", response_class=FileResponse)
    def image(cycle: Cycle, position: Position) -> FileResponse:
        _found(store.item, cycle, position)
        path = image_path(cycle_images_dir(images_dir, cycle), position)
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"no picture rendered for item {position} of cycle {cycle}")
        return FileResponse(path, media_type="image/png")

    @app.get("/api/cycles/{cycle}/items/{position}/geometry", response_class=FileResponse)
    def geometry(cycle: Cycle, position: Position) -> FileResponse:
        """The item's hand and object meshes for the 3-D view (review/geometry.py), by (cycle, position) only.
        A position outside the cycle's queue is refused with 422 naming `position` and the valid range."""
        total = _found(store.progress, cycle).total
        if position >= total:
            raise RequestValidationError([{"loc": ("path", "position"), "type": "value_error",
                                           "msg": f"position {position} is outside the queue of cycle {cycle} "
                                                  f"(positions 0..{total - 1})"}])
        folder = cycle_images_dir(images_dir, cycle)
        path = geometry_path(folder, position)
        if not path.is_file():
            note = skip_note_path(folder, position)
            reason = note.read_text()[:300] if note.is_file() else "no 3-D geometry was written for this item"
            raise HTTPException(status_code=404, detail=f"{reason}; the static views stand")
        return FileResponse(path, media_type="application/json")

    @app.get("/api/cycles/{cycle}/progress")
    def progress(cycle: Cycle) -> Progress:
        return _found(store.progress, cycle)

    @app.get("/api/cycles/{cycle}/trail")
    def trail(cycle: Cycle) -> list[DecisionRecord]:
        return _found(store.trail, cycle)

    @app.get("/api/cycles/{cycle}/trail.parquet", response_class=Response)
    def trail_parquet(cycle: Cycle) -> Response:
        """The cycle's audit trail as a Parquet file (review/export.py), for analysis outside the app."""
        data = _found(trail_parquet_bytes, store, cycle)
        return Response(data, media_type="application/vnd.apache.parquet",
                        headers={"Content-Disposition": f'attachment; filename="review-trail-cycle-{cycle}.parquet"'})

    @app.get("/api/cycles/{cycle}/pace")
    def pace(cycle: Cycle) -> list[dict]:
        """Seconds per decision per reviewer (median, p90) from the trail (review/pace.py)."""
        return [asdict(row) for row in reviewer_pace(_found(store.trail, cycle))]

    @app.get("/api/cycles/{cycle}/agreement")
    def agreement(cycle: Cycle) -> dict:
        """Reviewer agreement on the items two or more reviewers decided (review/agreement.py)."""
        report = agreement_report(_found(store.reviewer_labels, cycle))
        return {"overlapping": report.overlapping, "disputed": report.disputed,
                "reviewers": [{"reviewer": r.reviewer, "items": r.items, "agreed": r.agreed, "share": r.share}
                              for r in report.reviewers],
                "pairs": [{"reviewers": list(p.reviewers), "items": p.items, "kappa": p.kappa}
                          for p in report.pairs],
                "markdown": report.markdown()}


def _add_decision_routes(app: FastAPI, store: ReviewStore, guard: CompletionGuard) -> None:
    @app.post("/api/cycles/{cycle}/decisions")
    def decide(cycle: Cycle, decision: DecisionIn, background: BackgroundTasks) -> DecisionOut:
        """Store one decision. A relabel to the item's predicted class is refused with 422 naming `label`
        (it would count as a wrong prediction at the quality gate); confirm a prediction with `accepted`."""
        try:
            state = _found(store.decide, cycle, decision)
        except RelabelledToPredictedError as exc:
            raise RequestValidationError([{"loc": ("body", exc.field), "msg": str(exc), "type": "value_error"}]) \
                from None
        progress = store.progress(cycle)
        if progress.complete:
            # After the response: the reviewer does not wait for on_complete (a Prefect API call).
            background.add_task(guard.notify, cycle)
        return DecisionOut(state=state, progress=progress)

    @app.post("/api/cycles/{cycle}/undo")
    def undo(cycle: Cycle, body: UndoIn) -> DecisionOut:
        state = _found(store.undo, cycle, body.reviewer)
        return DecisionOut(state=state, progress=store.progress(cycle))

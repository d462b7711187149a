import io
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.review_cmd import app as review_cli
from cli.review_cmd import is_loopback
from review.app import STATIC_DIR, create_app
from review.images import cycle_images_dir
from review.resume import is_paused_for_review, prefect_api_url, resume_review_flow, review_pause_key
from review.simulated import review_queue_over_http, start_review_server, stop_review_server
from review.store import ReviewStore
from schemas.affordance import AFFORDANCES
from schemas.review import DecisionIn, QueueItem, ReviewResult

SCRIPT = "<script>alert('x')</script>"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # served as bytes; the app never decodes it


def _items(cycle: int, n: int) -> list[QueueItem]:
    return [QueueItem(cycle=cycle, position=i, sample_id=f"toy-{cycle:04x}{i:012x}", dataset="toy",
                      object_category=SCRIPT if i == 0 else "mug", predicted=AFFORDANCES[1 + i % 8],
                      confidence=0.5 + i / (2 * n)) for i in range(n)]


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    """(store, images) with cycle 0 (4 items, pictures for all but the last) and cycle 1 (2 items)."""
    store_path, images = tmp_path / "review.sqlite", tmp_path / "images"
    store = ReviewStore(store_path)
    store.create_queue(0, _items(0, 4))
    store.create_queue(1, _items(1, 2))
    folder = cycle_images_dir(images, 0)
    folder.mkdir(parents=True)
    for position in range(3):
        (folder / f"{position}.png").write_bytes(PNG)
    return store_path, images


def _client(paths: tuple[Path, Path], **options) -> TestClient:
    return TestClient(create_app(*paths, **options), base_url="http://127.0.0.1")


def _decide(client: TestClient, sample_id: str, decision: str, label: str | None = None, reviewer: str = "ann",
            comment: str = "", cycle: int = 0) -> httpx.Response:
    body = {"sample_id": sample_id, "decision": decision, "reviewer": reviewer, "comment": comment}
    if label:
        body["label"] = label
    return client.post(f"/api/cycles/{cycle}/decisions", json=body)


# ------------------------------------------------------------------------------------------ API, in-process


def test_decisions_progress_next_and_trail(paths):
    client = _client(paths)
    cycles = client.get("/api/cycles").json()
    assert [(c["cycle"], c["progress"]["total"], c["progress"]["decided"]) for c in cycles] == [(0, 4, 0), (1, 2, 0)]
    first = client.get("/api/cycles/0/next").json()
    assert first["item"]["position"] == 0 and first["state"] == "pending"

    out = _decide(client, first["item"]["sample_id"], "accepted")
    assert out.status_code == 200
    assert out.json()["state"]["state"] == "accepted" and out.json()["state"]["label"] == first["item"]["predicted"]
    assert out.json()["progress"]["decided"] == 1
    second = client.get("/api/cycles/0/next", params={"after": 0}).json()
    assert second["item"]["position"] == 1
    out = _decide(client, second["item"]["sample_id"], "relabelled", label="lever", comment="the lever part")
    assert out.json()["state"] | {"decided_at": None} == {
        "item": second["item"], "state": "relabelled", "label": "lever", "reviewer": "ann",
        "comment": "the lever part", "decided_at": None, "reviewers": ["ann"]}

    progress = client.get("/api/cycles/0/progress").json()
    assert progress["decided"] == 2
    assert progress["by_state"] == {"pending": 2, "accepted": 1, "rejected": 0, "relabelled": 1, "skipped": 0,
                                    "disputed": 0}
    assert client.get("/api/cycles/0/items/1").json()["label"] == "lever"
    assert [r["kind"] for r in client.get("/api/cycles/0/trail").json()] == ["accepted", "relabelled"]
    assert client.get("/api/cycles/0/next", params={"after": 3}).json()["item"]["position"] == 2  # wraps around


def test_next_leaves_out_what_the_reviewer_decided_and_the_trail_exports_as_parquet(tmp_path):
    store_path = tmp_path / "review.sqlite"
    ReviewStore(store_path).create_queue(0, [i.model_copy(update={"reviews": 2 if i.position == 1 else 1})
                                             for i in _items(0, 3)])
    client = _client((store_path, tmp_path / "images"))
    for position in range(3):
        assert _decide(client, f"toy-0000{position:012x}", "accepted").status_code == 200
    assert client.get("/api/cycles/0/next", params={"reviewer": "ann"}).status_code == 404
    served = client.get("/api/cycles/0/next", params={"reviewer": "bob"}).json()
    assert (served["item"]["position"], served["item"]["reviews"], served["reviewers"]) == (1, 2, ["ann"])
    out = _decide(client, served["item"]["sample_id"], "rejected", reviewer="bob").json()
    assert out["state"]["state"] == "disputed" and not out["progress"]["by_state"]["pending"]
    assert out["progress"]["by_state"]["disputed"] == 1 and out["progress"]["decided"] == 2
    assert client.get("/api/cycles/0/next", params={"reviewer": "cat"}).json()["state"] == "disputed"
    bad = client.get("/api/cycles/0/next", params={"reviewer": "<b>"})
    assert bad.status_code == 422 and "reviewer" in bad.text and "<b>" not in bad.text

    response = client.get("/api/cycles/0/trail.parquet")
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column("reviewer").to_pylist() == ["ann", "ann", "ann", "bob"]
    assert client.get("/api/cycles/9/trail.parquet").status_code == 404


def test_bad_requests_are_named(paths):
    client = _client(paths)
    sample_id = _items(0, 4)[0].sample_id
    assert _decide(client, sample_id, "relabelled").status_code == 422  # relabel needs a label
    assert _decide(client, sample_id, "accepted", label="press").status_code == 422
    assert _decide(client, sample_id, "maybe").status_code == 422
    assert _decide(client, sample_id, "relabelled", label="juggle").status_code == 422
    assert _decide(client, sample_id, "accepted", reviewer="<b>bob</b>").status_code == 422
    missing = _decide(client, "toy-0000ffffffffffff", "accepted")
    assert missing.status_code == 404 and "toy-0000ffffffffffff" in missing.json()["detail"]
    assert client.get("/api/cycles/7/progress").status_code == 404
    assert "cycle 7" in client.get("/api/cycles/7/next").json()["detail"]
    assert client.get("/api/cycles/0/items/99").status_code == 404
    assert client.get("/api/cycles/0/items/-1").status_code == 422
    assert client.get("/api/cycles/0/progress").json()["decided"] == 0  # nothing bad was stored


def test_undo_brings_back_the_item(paths):
    client = _client(paths)
    items = _items(0, 4)
    _decide(client, items[0].sample_id, "accepted")
    _decide(client, items[1].sample_id, "rejected")
    _decide(client, items[2].sample_id, "skipped", reviewer="bob")
    out = client.post("/api/cycles/0/undo", json={"reviewer": "ann"}).json()
    assert out["state"]["item"]["position"] == 1 and out["state"]["state"] == "pending"
    assert out["progress"]["decided"] == 2
    assert client.post("/api/cycles/0/undo", json={"reviewer": "ann"}).json()["state"]["item"]["position"] == 0
    assert client.post("/api/cycles/0/undo", json={"reviewer": "ann"}).json()["state"] is None
    assert client.post("/api/cycles/0/undo", json={"reviewer": "no body"}).status_code == 422
    assert [r["kind"] for r in client.get("/api/cycles/0/trail").json()] == [
        "accepted", "rejected", "skipped", "undo", "undo"]


def test_images_are_served_or_404(paths):
    client = _client(paths)
    response = client.get("/api/cycles/0/items/2/image")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == PNG
    assert "no picture" in client.get("/api/cycles/0/items/3/image").json()["detail"]  # item exists, PNG not
    assert client.get("/api/cycles/0/items/4/image").status_code == 404
    assert client.get("/api/cycles/1/items/0/image").status_code == 404


def test_on_complete_is_called_once(paths):
    calls: list[tuple[int, ReviewResult]] = []
    client = _client(paths, on_complete=lambda cycle, result: calls.append((cycle, result)))
    for i, item in enumerate(_items(1, 2)):
        assert not calls
        out = _decide(client, item.sample_id, "accepted", cycle=1).json()
        assert out["progress"]["decided"] == i + 1
    assert len(calls) == 1 and calls[0][0] == 1
    assert [s.state for s in calls[0][1].items] == ["accepted", "accepted"]
    # Still complete after more decisions (a changed mind, an undo and a redo): no second call.
    _decide(client, _items(1, 2)[0].sample_id, "rejected", cycle=1)
    client.post("/api/cycles/1/undo", json={"reviewer": "ann"})
    _decide(client, _items(1, 2)[0].sample_id, "rejected", cycle=1)
    assert len(calls) == 1


def test_on_complete_once_when_requests_complete_it_concurrently(paths):
    calls: list[int] = []
    entered = threading.Event()

    def slow_on_complete(cycle: int, result: ReviewResult) -> None:
        entered.set()
        threading.Event().wait(0.2)  # long enough for the other requests to arrive meanwhile
        calls.append(cycle)

    app = create_app(*paths, on_complete=slow_on_complete)
    items = _items(0, 4)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for item in items[:3]:
            _decide(client, item.sample_id, "accepted")
    start = threading.Barrier(4)

    def complete(sample_id: str) -> None:
        # one client per thread: its own connection, like separate reviewers
        with TestClient(app, base_url="http://127.0.0.1") as client:
            start.wait()
            assert _decide(client, sample_id, "rejected").status_code == 200

    threads = [threading.Thread(target=complete, args=(items[i].sample_id,)) for i in (3, 3, 0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert entered.is_set() and calls == [0]


def test_a_failing_on_complete_is_retried_by_the_next_completion(paths):
    calls: list[int] = []

    def flaky(cycle: int, result: ReviewResult) -> None:
        calls.append(cycle)
        if len(calls) == 1:
            raise RuntimeError("Prefect API unreachable")

    client = _client(paths, on_complete=flaky)
    for item in _items(1, 2):
        _decide(client, item.sample_id, "accepted", cycle=1)
    _decide(client, _items(1, 2)[1].sample_id, "accepted", cycle=1)
    assert calls == [1, 1]


def test_resume_without_a_flow_run_only_reports(paths):
    store = ReviewStore(paths[0])
    assert resume_review_flow(paths[0], 1, store.result(1)) is False  # no flow run recorded: nothing to resume
    with pytest.raises(ValueError, match="cycle 0"):
        resume_review_flow(paths[0], 1, store.result(0))


def _wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.server
@pytest.mark.slow
def test_a_finished_review_resumes_the_flow_paused_for_its_cycle(tmp_path, prefect_harness):
    from prefect import flow
    from prefect.context import get_run_context
    from prefect.flow_runs import pause_flow_run

    store_path = tmp_path / "review.sqlite"
    store = ReviewStore(store_path)
    items = [_items(cycle, 2) for cycle in range(2)]
    received: dict[int, dict] = {}

    @flow
    def two_cycles() -> None:  # what the self-training flow does per cycle: queue, pause, read the review
        flow_run_id = str(get_run_context().flow_run.id)
        for cycle in range(2):
            ReviewStore(store_path).create_queue(cycle, items[cycle], flow_run_id=flow_run_id)
            answer = pause_flow_run(wait_for_input=ReviewResult, key=review_pause_key(cycle), timeout=120)
            received[cycle] = answer.model_dump(include={"cycle", "items"})

    def paused_for(cycle: int) -> bool:
        return cycle in store.cycles() and is_paused_for_review(store.flow_run_id(cycle), cycle)

    api_url = prefect_api_url()
    runner = threading.Thread(target=two_cycles)
    runner.start()
    server = None
    try:
        # Cycle 0, decided the moment the queue exists: the resume waits for the flow to reach its pause.
        _wait_for(lambda: 0 in store.cycles())
        for item in items[0]:
            store.decide(0, DecisionIn(sample_id=item.sample_id, decision="accepted", reviewer="ann"))
        assert resume_review_flow(store_path, 0, store.result(0)) is True
        _wait_for(lambda: paused_for(1))
        assert resume_review_flow(store_path, 0, store.result(0)) is False  # paused for cycle 1: left alone
        # Cycle 1, through the real server: its on_complete resumes the run on the same Prefect API.
        server, base_url = start_review_server(store_path, tmp_path / "images", api_url=api_url)
        truth = {items[1][0].sample_id: items[1][0].predicted, items[1][1].sample_id: "lift"}
        review_queue_over_http(base_url, 1, truth)
        _wait_for(lambda: 1 in received)
    finally:
        runner.join(60)
        if server is not None:
            stop_review_server(server)
    assert resume_review_flow(store_path, 1, store.result(1)) is False  # finished: not paused any more
    assert received[0]["cycle"] == 0 and [s["state"] for s in received[0]["items"]] == ["accepted", "accepted"]
    assert [s["label"] for s in received[1]["items"]] == [items[1][0].predicted, "lift"]


# --------------------------------------------------------------------------------------- token and markup


def test_token_is_required_when_set(paths):
    client = _client(paths, token="s3cret/+token")
    for url in ("/", "/api/cycles", "/api/cycles/0/next", "/static/review.js", "/api/cycles/0/items/0/image"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/cycles", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/cycles", params={"token": "s3cret"}).status_code == 401
    assert _decide(client, _items(0, 4)[0].sample_id, "accepted").status_code == 401
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/api/cycles", headers={"Authorization": "Bearer s3cret/+token"}).status_code == 200
    assert client.get("/api/cycles", params={"token": "s3cret/+token"}).status_code == 200
    page = client.get("/", params={"token": "s3cret/+token"})
    # The page's own script and style URLs carry the token, so the browser can load them.
    assert 'src="static/review.js?token=s3cret%2F%2Btoken"' in page.text
    assert client.get("/static/review.js", params={"token": "s3cret/+token"}).status_code == 200
    assert client.get("/api/cycles/0/progress").status_code == 401
    assert ReviewStore(paths[0]).trail(0) == []  # the refused decision was not stored
    # The 3-D view: its module carries the token, its geometry needs it, the vendored library (no data) does not.
    assert 'src="static/view3d.js?token=s3cret%2F%2Btoken"' in page.text
    assert client.get("/api/cycles/0/items/0/geometry").status_code == 401
    assert client.get("/static/view3d.js").status_code == 401
    assert client.get("/static/vendor/three.module.js").status_code == 200
    assert client.get("/static/vendor/../review.js").status_code == 401


def test_markup_in_data_comes_back_as_text(paths):
    client = _client(paths)
    item = client.get("/api/cycles/0/items/0").json()
    assert item["item"]["object_category"] == SCRIPT
    _decide(client, item["item"]["sample_id"], "rejected", comment=SCRIPT + " & <img src=x onerror=alert(1)>")
    assert client.get("/api/cycles/0/trail").json()[0]["comment"].startswith(SCRIPT)
    assert client.get("/api/cycles/0/items/0").json()["comment"].startswith(SCRIPT)
    page = client.get("/")
    assert SCRIPT not in page.text and "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_page_inserts_text_only_and_has_the_stable_ids():
    script = (STATIC_DIR / "review.js").read_text()
    page = (STATIC_DIR / "index.html").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script
    assert "<script>" not in page.replace('<script src="static/review.js{{ASSET_QUERY}}" defer></script>', "")
    ids = set(re.findall(r'id="([^"]+)"', page))
    assert {"image", "category", "predicted", "confidence", "progress", "comment", "reviewer", "status",
            "accept", "reject", "skip", "undo", "cycle"} <= ids
    assert 'button.id = "relabel-" + name' in script  # one #relabel-<class> button per class from /api/classes
    for key in ('"a"', '"r"', '"s"', '"u"', '"ArrowLeft"', '"ArrowRight"', "[1-9]"):
        assert key in script, key


def test_classes_in_key_order(paths):
    assert _client(paths).get("/api/classes").json() == list(AFFORDANCES)  # key 1 -> the first class, ...


# ------------------------------------------------------------------------------------------------ the CLI


def test_serve_refuses_a_public_host_without_a_token(tmp_path):
    result = CliRunner().invoke(review_cli, ["serve", "--host", "0.0.0.0", "--store", str(tmp_path / "s.sqlite"),
                                             "--images", str(tmp_path)], env={"AFFORD_REVIEW_TOKEN": ""})
    assert result.exit_code == 2
    assert "--host 0.0.0.0" in result.output and "--token" in result.output
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything was opened


def test_resume_command_needs_a_finished_review(paths):
    store_path = str(paths[0])
    unfinished = CliRunner().invoke(review_cli, ["resume", "1", "--store", store_path])
    assert unfinished.exit_code == 1 and "0 of 2 decided" in unfinished.output
    for item in _items(1, 2):
        ReviewStore(paths[0]).decide(1, DecisionIn(sample_id=item.sample_id, decision="accepted", reviewer="ann"))
    finished = CliRunner().invoke(review_cli, ["resume", "1", "--store", store_path])
    assert finished.exit_code == 1 and "not resumed" in finished.output  # no flow run recorded for cycle 1
    assert CliRunner().invoke(review_cli, ["resume", "5", "--store", store_path]).exit_code == 1


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                                ("10.0.0.5", False), ("review.example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


# ------------------------------------------------------------------------------------ a real server process


@pytest.mark.server
def test_review_through_a_real_server(paths):
    store_path, images = paths
    process, base_url = start_review_server(store_path, images, token="tok3n")
    try:
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{base_url}/api/cycles").status_code == 401
        assert httpx.get(f"{base_url}/healthz").json() == {"ok": True}
        page = httpx.get(f"{base_url}/", params={"token": "tok3n"})
        assert page.status_code == 200 and 'id="accept"' in page.text
        truth = {item.sample_id: AFFORDANCES[1 + item.position % 8] for item in _items(0, 4)}
        truth[_items(0, 4)[1].sample_id] = "lift"  # one wrong prediction to relabel
        counts = review_queue_over_http(base_url, 0, truth, token="tok3n")
        assert counts == {"accepted": 3, "rejected": 0, "relabelled": 1, "skipped": 0}
        headers = {"Authorization": "Bearer tok3n"}
        progress = httpx.get(f"{base_url}/api/cycles/0/progress", headers=headers).json()
        assert progress["decided"] == progress["total"] == 4
        assert httpx.get(f"{base_url}/api/cycles/0/next", headers=headers).status_code == 404
        image = httpx.get(f"{base_url}/api/cycles/0/items/0/image", headers=headers)
        assert image.content == PNG
    finally:
        stop_review_server(process)
    assert process.poll() is not None
    assert {s.item.sample_id: s.label for s in ReviewStore(store_path).items(0)} == truth


@pytest.mark.server
def test_killing_the_server_mid_review_loses_no_decision(paths):
    store_path, images = paths
    items = _items(0, 4)
    process, base_url = start_review_server(store_path, images)
    try:
        acknowledged = []
        for item, decision in zip(items[:3], ("accepted", "rejected", "skipped"), strict=True):
            response = httpx.post(f"{base_url}/api/cycles/0/decisions", json={
                "sample_id": item.sample_id, "decision": decision, "reviewer": "ann", "comment": "c"})
            assert response.status_code == 200
            acknowledged.append((item.sample_id, decision))
        os.kill(process.pid, signal.SIGKILL)  # our own child, by PID: no clean shutdown, no checkpoint
        process.wait(timeout=10)
    finally:
        stop_review_server(process)
    assert process.returncode == -signal.SIGKILL

    process, base_url = start_review_server(store_path, images)
    try:
        trail = httpx.get(f"{base_url}/api/cycles/0/trail").json()
        assert [(r["sample_id"], r["kind"]) for r in trail] == acknowledged
        assert httpx.get(f"{base_url}/api/cycles/0/progress").json()["decided"] == 3
        assert httpx.get(f"{base_url}/api/cycles/0/next").json()["item"]["sample_id"] == items[3].sample_id
    finally:
        stop_review_server(process)


# ------------------------------------------------------------------------- hostile requests, real server


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """A real server process over a fresh store (cycle 0: 4 items, cycle 1: 2): (base_url, store_path)."""
    root = tmp_path_factory.mktemp("hardened")
    store = ReviewStore(root / "review.sqlite")
    store.create_queue(0, _items(0, 4))
    store.create_queue(1, _items(1, 2))
    process, base_url = start_review_server(root / "review.sqlite", root / "images")
    yield base_url, root / "review.sqlite"
    stop_review_server(process)


HUGE = 2**63


@pytest.mark.parametrize(("method", "url"), [
    ("GET", f"/api/cycles/{HUGE}/next"), ("GET", "/api/cycles/0/next?after=" + str(HUGE)),
    ("GET", f"/api/cycles/{HUGE}/items/0"), ("GET", f"/api/cycles/0/items/{HUGE}"),
    ("GET", f"/api/cycles/0/items/{HUGE}/image"), ("GET", f"/api/cycles/{HUGE}/progress"),
    ("GET", f"/api/cycles/{HUGE}/trail"), ("POST", f"/api/cycles/{HUGE}/decisions"),
    ("POST", f"/api/cycles/{HUGE}/undo"), ("GET", f"/api/cycles/{2**31}/progress"),
])
def test_huge_integers_in_the_path_are_422_not_500(hardened, method, url):
    base_url, _ = hardened
    body = {"sample_id": _items(0, 4)[0].sample_id, "decision": "accepted", "reviewer": "ann"}
    response = httpx.request(method, base_url + url, json=body if method == "POST" else None)
    assert response.status_code == 422, (url, response.text)
    assert "Traceback" not in response.text and "Internal Server Error" not in response.text
    assert {tuple(e["loc"])[-1] for e in response.json()["detail"]} & {"cycle", "position", "after"}


def test_a_422_names_the_field_and_never_echoes_the_input(hardened):
    base_url, store_path = hardened
    comment = "ECHO" * 10_000  # 40 KB: under the body limit, over the comment's 2000 characters
    response = httpx.post(f"{base_url}/api/cycles/0/decisions", json={
        "sample_id": _items(0, 4)[0].sample_id, "decision": "accepted", "reviewer": "ann", "comment": comment,
        "ECHO" * 100: 1})
    assert response.status_code == 422 and len(response.content) < 2000
    detail = response.json()["detail"]
    assert ["body", "comment"] in [e["loc"] for e in detail] and all("input" not in e for e in detail)
    assert "ECHO" * 30 not in response.text  # neither the comment nor the long unexpected key comes back
    assert ReviewStore(store_path).trail(0) == []


def test_bodies_over_64_kib_are_413_by_length_or_by_stream(hardened):
    base_url, store_path = hardened
    url = f"{base_url}/api/cycles/0/decisions"
    big = json.dumps({"sample_id": _items(0, 4)[0].sample_id, "decision": "rejected", "reviewer": "ann",
                      "comment": "x" * 70_000}).encode()
    response = httpx.post(url, content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "65536 bytes" in response.json()["detail"]
    chunked = httpx.post(url, content=iter([big[i:i + 8192] for i in range(0, len(big), 8192)]),
                         headers={"Content-Type": "application/json"})  # no Content-Length: counted as it streams
    assert "content-length" not in chunked.request.headers and chunked.status_code == 413
    assert len(chunked.content) < 500
    ok = httpx.post(url, json={"sample_id": _items(0, 4)[3].sample_id, "decision": "skipped", "reviewer": "ann",
                               "comment": "y" * 2000})
    assert ok.status_code == 200
    assert [r.kind for r in ReviewStore(store_path).trail(0)] == ["skipped"]


def test_only_loopback_and_bound_host_names_are_answered(hardened):
    base_url, _ = hardened
    port = base_url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert httpx.get(f"{base_url}/api/cycles", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "", "[::2]:80"):
        response = httpx.get(f"{base_url}/api/cycles", headers={"Host": host})
        assert response.status_code == 400, host
        assert "is not served here" in response.json()["detail"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_more_host_names_can_be_allowed(paths):
    app = create_app(*paths, allowed_hosts=["review.lan", "fd00::5"])
    assert TestClient(app, base_url="http://review.lan:8765").get("/api/cycles").status_code == 200
    assert TestClient(app, base_url="http://[fd00::5]:80").get("/api/cycles").status_code == 200
    other = TestClient(app, base_url="http://review.lan").get("/api/cycles", headers={"Host": "other.lan"})
    assert other.status_code == 400 and "'other.lan' is not served here" in other.json()["detail"]


def test_relabelling_to_the_predicted_class_is_refused_by_field(hardened):
    base_url, store_path = hardened
    item = _items(1, 2)[0]
    response = httpx.post(f"{base_url}/api/cycles/1/decisions", json={
        "sample_id": item.sample_id, "decision": "relabelled", "label": item.predicted, "reviewer": "ann"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "label"] and "is the predicted class" in error["msg"] and "accepted" in error["msg"]
    assert ReviewStore(store_path).trail(1) == []
    other = next(name for name in AFFORDANCES if name != item.predicted)
    assert httpx.post(f"{base_url}/api/cycles/1/decisions", json={
        "sample_id": item.sample_id, "decision": "relabelled", "label": other, "reviewer": "ann"}).status_code == 200


def test_the_access_log_never_holds_the_token(paths):
    store_path, images = paths
    log_path = store_path.parent / "access.log"
    process, base_url = start_review_server(store_path, images, token="tok3n-s3cret", log_path=log_path)
    try:
        assert httpx.get(f"{base_url}/", params={"token": "tok3n-s3cret"}).status_code == 200
        assert httpx.get(f"{base_url}/api/cycles", params={"token": "tok3n-s3cret", "x": "1"}).status_code == 200
        assert httpx.get(f"{base_url}/api/cycles", params={"token": "wrong-guess"}).status_code == 401
    finally:
        stop_review_server(process)  # a clean stop flushes the log
    log = log_path.read_text()
    assert '"GET /api/cycles HTTP/1.1" 200' in log and '"GET / HTTP/1.1" 200' in log  # the log still works
    assert "tok3n-s3cret" not in log and "wrong-guess" not in log, log


def test_agreement_of_reviewers_on_shared_items(paths):
    """Each reviewer's own latest decision counts (undone ones do not, skips are no label); kappa as scikit-learn."""
    from sklearn.metrics import cohen_kappa_score

    client = _client(paths)
    ids = [item.sample_id for item in _items(0, 4)]
    other = next(a for a in AFFORDANCES if a != _items(0, 4)[3].predicted)
    for sample_id in ids:
        assert _decide(client, sample_id, "accepted", reviewer="ann").status_code == 200
    _decide(client, ids[0], "rejected", reviewer="bob")
    _decide(client, ids[0], "accepted", reviewer="bob")  # bob changes his mind: his later decision counts
    _decide(client, ids[1], "rejected", reviewer="bob")
    _decide(client, ids[2], "accepted", reviewer="bob")
    _decide(client, ids[3], "relabelled", label=other, reviewer="bob")
    _decide(client, ids[1], "accepted", reviewer="cat")
    assert client.post("/api/cycles/0/undo", json={"reviewer": "cat"}).status_code == 200  # cat's accept is undone
    _decide(client, ids[2], "skipped", reviewer="cat")  # a skip is no label
    report = client.get("/api/cycles/0/agreement").json()
    assert report["overlapping"] == 4 and report["disputed"] == sorted([ids[1], ids[3]])
    assert [(r["reviewer"], r["items"], r["agreed"]) for r in report["reviewers"]] == [("ann", 2, 2), ("bob", 2, 2)]
    [pair] = report["pairs"]
    expected = cohen_kappa_score(["accept"] * 4, ["accept", "reject", "accept", other])
    assert pair["reviewers"] == ["ann", "bob"] and pair["items"] == 4 and pair["kappa"] == pytest.approx(expected)
    assert "| ann / bob | 4 |" in report["markdown"]
    assert client.get("/api/cycles/7/agreement").status_code == 404


def test_pace_per_reviewer(paths):
    client = _client(paths)
    for item in _items(0, 3):
        _decide(client, item.sample_id, "accepted", reviewer="ann")
    [ann] = client.get("/api/cycles/0/pace").json()
    assert ann["reviewer"] == "ann" and ann["decisions"] == 3 and ann["timed"] == 2 and ann["median_s"] >= 0
    assert client.get("/api/cycles/9/pace").status_code == 404

"""The review page in a real browser: headless Chromium reviews a queue with the keyboard only, and the paused
flow waiting for that cycle is resumed with exactly the decisions taken on the page."""

import threading
import time
from pathlib import Path
from uuid import UUID

import httpx
import numpy as np
import pytest

from review.images import cycle_images_dir, image_path
from review.resume import is_paused_for_review, prefect_api_url, resume_review_flow, review_pause_key
from review.simulated import start_review_server, stop_review_server
from review.store import ReviewStore
from schemas.affordance import AFFORDANCES
from schemas.review import QueueItem

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                       reason="needs Debian's Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver): "
                              "sudo apt-get install chromium chromium-driver, or `make browser-deps`"),
]

CYCLE = 3
SCRIPT_CATEGORY = "<script>alert(1)</script>mug"
# (object_category, predicted) per position; item 0 carries markup that must show as text.
QUEUE = [(SCRIPT_CATEGORY, "wrap-grasp"), ("mug", "handle-grasp"), ("knife", "handle-grasp"),
         ("scissors", "press"), ("laptop", "support")]
COMMENT = "a r s u 1 9: the hand holds the lid"  # shortcut letters and digits, typed into the comment box
RELABEL_TO = "lever"
REVIEWER = "ann"


def _items() -> list[QueueItem]:
    return [QueueItem(cycle=CYCLE, position=i, sample_id=f"browser-{i:04d}", dataset="synthetic",
                      object_category=category, predicted=predicted, confidence=0.41 + 0.1 * i)
            for i, (category, predicted) in enumerate(QUEUE)]


def _write_pictures(images_dir: Path, count: int) -> None:
    """Real synthetic grasps (a mug and the generated MANO hand) for positions 0 and 1, tiny PNGs for the rest."""
    from matplotlib.image import imsave

    from models.mano import ManoLayer
    from models.synthetic_hand import build_synthetic_hand
    from ops.render import render_pair
    from tasks.synth.grasps import synthesize_grasps
    from tasks.synth.objects import make_object

    folder = cycle_images_dir(images_dir, CYCLE)
    folder.mkdir(parents=True)
    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(5)
    mug = make_object("mug", rng, "mug-browser")
    grasps = synthesize_grasps(mug, params, layer, per_part=1, rng=rng, steps=20)
    for position, grasp in enumerate(grasps[:2]):
        render_pair(image_path(folder, position), mug.vertices, mug.faces, grasp.verts, params.f,
                    object_vertex_labels=mug.vertex_labels, title=f"#{position}  synthetic  mug", size_px=360)
    for position in range(2, count):
        pixels = np.random.default_rng(position).uniform(size=(16, 24, 3))
        imsave(image_path(folder, position), pixels, format="png")


def _chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(argument)
    # The driver's path is given, so Selenium Manager never looks for (or downloads) one.
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


# Everything the test waits on, read in one go.
PAGE_STATE = """
const $ = (id) => document.getElementById(id);
const image = $("image");
return {
  position: $("position").textContent, state: $("state").textContent, progress: $("progress").textContent,
  category: $("category").textContent, predicted: $("predicted").textContent, status: $("status").textContent,
  caption: $("image-caption").textContent, comment: $("comment").value,
  reviewing: !$("review").hidden, complete: !$("complete").hidden, busy: $("accept").disabled,
  picture: image.complete && image.naturalWidth > 0,
  active: document.activeElement ? document.activeElement.tagName : null,
};
"""


def _wait_until(condition, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_review_a_queue_with_the_keyboard_resumes_the_paused_flow(tmp_path, prefect_harness):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import pause_flow_run
    from prefect.runtime import flow_run
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions

    from tasks.pseudo_label.self_training_loop import ReviewInput

    store_path, images_dir = tmp_path / "review.sqlite", tmp_path / "images"
    items = _items()
    _write_pictures(images_dir, len(items))
    store = ReviewStore(store_path)
    received: dict[int, ReviewInput] = {}

    @flow
    def wait_for_review() -> None:  # what the self-training flow does for a cycle: queue, pause, read the review
        ReviewStore(store_path).create_queue(CYCLE, items, flow_run_id=str(flow_run.id))
        received[CYCLE] = pause_flow_run(wait_for_input=ReviewInput, key=review_pause_key(CYCLE), timeout=300,
                                         poll_interval=1)

    def paused() -> bool:
        return CYCLE in store.cycles() and is_paused_for_review(store.flow_run_id(CYCLE), CYCLE)

    api_url = prefect_api_url()
    runner = threading.Thread(target=wait_for_review, daemon=True)
    runner.start()
    server = driver = None
    try:
        _wait_until(paused, "the flow to pause for the review", timeout_s=60)
        server, base_url = start_review_server(store_path, images_dir, api_url=api_url)
        driver = _chrome(tmp_path / "chromium-profile")
        driver.get(base_url + "/")
        page = lambda: driver.execute_script(PAGE_STATE)  # noqa: E731
        body = driver.find_element(By.TAG_NAME, "body")

        def shown(position: int, decided: int) -> dict:
            """Wait for item `position` on screen, `decided` items decided, and the buttons enabled again."""
            return _wait_until(lambda: (s := page())["reviewing"] and not s["busy"]
                               and s["position"] == f"{position + 1} / {len(items)}"
                               and s["progress"] == f"{decided} of {len(items)}" and s, f"item {position}")

        def press(key: str) -> None:
            assert page()["active"] == "BODY", "a shortcut must go to the page, not to a text box"
            body.send_keys(key)

        # Item 0 shows; its markup is text, and nothing ran.
        state = shown(0, 0)
        assert "<script>" in state["category"] and state["category"] == SCRIPT_CATEGORY
        assert driver.execute_script("return document.querySelectorAll('#category *').length") == 0
        assert expected_conditions.alert_is_present()(driver) is False

        # The page asks for the reviewer once: type the name, press Enter.
        assert page()["active"] == "INPUT" and driver.find_element(By.ID, "ask-reviewer").is_displayed()
        driver.find_element(By.ID, "reviewer").send_keys(REVIEWER + Keys.ENTER)
        _wait_until(lambda: page()["status"] == f"Reviewing as {REVIEWER}.", "the reviewer name to be saved")
        assert not driver.find_element(By.ID, "ask-reviewer").is_displayed()

        press("a")  # item 0: accept
        shown(1, 1)
        # Item 1: a comment whose letters and digits are shortcuts elsewhere; in the box they are only text.
        comment = driver.find_element(By.ID, "comment")
        comment.click()
        comment.send_keys(COMMENT)
        time.sleep(0.3)  # room for a wrongly triggered shortcut's request to land
        state = page()
        assert state["comment"] == COMMENT and state["active"] == "TEXTAREA"
        assert state["position"] == f"2 / {len(items)}" and state["progress"] == f"1 of {len(items)}"
        assert [r.kind for r in store.trail(CYCLE)] == ["accepted"]
        state = _wait_until(lambda: (s := page())["picture"] and s["caption"].startswith("Left and right") and s,
                            "item 1's picture")
        screenshot = driver.get_screenshot_as_png()  # mid-review: a real grasp picture, progress, the comment
        (tmp_path / "review-page.png").write_bytes(screenshot)
        assert screenshot.startswith(b"\x89PNG\r\n\x1a\n") and len(screenshot) > 10_000
        comment.send_keys(Keys.ESCAPE)  # leave the box: shortcuts work again
        press("r")  # item 1: reject, with the comment
        shown(2, 2)

        press("r")  # item 2: a wrong decision ...
        shown(3, 3)
        press("u")  # ... undone: item 2 is back, pending
        state = shown(2, 2)
        assert state["state"] == "not decided yet" and state["status"].startswith("Undone: item 3")
        press("a")  # ... and decided again, differently
        state = shown(3, 3)

        assert state["predicted"] == "press" != RELABEL_TO
        press(str(AFFORDANCES.index(RELABEL_TO) + 1))  # item 3: relabel with its digit key
        shown(4, 4)
        press("s")  # item 4: skip

        _wait_until(lambda: page()["complete"], "the queue-complete screen")
        assert driver.find_element(By.CSS_SELECTOR, "#complete h2").text == "Queue complete"
        assert page()["progress"] == f"{len(items)} of {len(items)}"
        assert expected_conditions.alert_is_present()(driver) is False
        runner.join(60)  # the server's on_complete resumes the paused run; the flow then returns
        assert not runner.is_alive(), "the paused flow was not resumed"
        progress = httpx.get(f"{base_url}/api/cycles/{CYCLE}/progress").json()
    finally:
        if driver is not None:
            driver.quit()
        if server is not None:
            stop_review_server(server)
        if runner.is_alive() and CYCLE in store.cycles():  # a failed test must not leave the flow paused
            resume_review_flow(store_path, CYCLE, store.result(CYCLE), wait_for_pause_s=0)
            runner.join(30)

    expected = {items[0].sample_id: ("accepted", "wrap-grasp"), items[1].sample_id: ("rejected", None),
                items[2].sample_id: ("accepted", "handle-grasp"), items[3].sample_id: ("relabelled", RELABEL_TO),
                items[4].sample_id: ("skipped", None)}
    answer = received[CYCLE]
    assert isinstance(answer, ReviewInput) and answer.cycle == CYCLE
    assert {s.item.sample_id: (s.state, s.label) for s in answer.items} == expected
    assert {s.reviewer for s in answer.items} == {REVIEWER}
    assert [s.comment for s in answer.items] == ["", COMMENT, "", "", ""]

    trail = store.trail(CYCLE)
    assert [(r.sample_id, r.kind) for r in trail] == [
        (items[0].sample_id, "accepted"), (items[1].sample_id, "rejected"), (items[2].sample_id, "rejected"),
        (items[2].sample_id, "undo"), (items[2].sample_id, "accepted"), (items[3].sample_id, "relabelled"),
        (items[4].sample_id, "skipped")]
    assert trail[3].undoes == trail[2].id and trail[3].reviewer == REVIEWER
    assert progress["decided"] == progress["total"] == len(items)
    assert store.progress(CYCLE).complete
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(UUID(store.flow_run_id(CYCLE))).state.is_completed()


"""The 3-D view in a real browser (headless Chromium, WebGL on SwiftShader): it loads the item's meshes, turns
with the keyboard, shows the contact region on a key, and the decision keys still decide items into the store."""

from __future__ import annotations

import math
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from review.geometry import geometry_body, write_body
from review.images import cycle_images_dir, image_path
from review.simulated import start_review_server, stop_review_server
from review.store import ReviewStore
from schemas.review import QueueItem

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CYCLE = 0
STEP = math.pi / 12  # view3d.js turns 15 degrees a key press

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                       reason="needs Debian's Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]

# Pixels of the WebGL canvas in the contact colour (#e5003a), counted through a 2-D canvas copy.
CONTACT_PIXELS = """
const source = document.querySelector("#view3d-canvas canvas");
const copy = document.createElement("canvas");
copy.width = source.width; copy.height = source.height;
const context = copy.getContext("2d");
context.drawImage(source, 0, 0);
const data = context.getImageData(0, 0, copy.width, copy.height).data;
let count = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i] > 150 && data[i + 1] < 60 && data[i + 2] < 110 && data[i] - data[i + 2] > 100) count++;
}
return count;
"""


def _queue(store_path: Path, images_dir: Path, reviews: tuple[int, int] = (1, 1)) -> list[QueueItem]:
    """Two synthetic mug grasps with the generated MANO hand: their meshes for the 3-D view, tiny pictures;
    `reviews`: how many reviewers each asks for."""
    from matplotlib.image import imsave

    from models.mano import ManoLayer
    from models.synthetic_hand import build_synthetic_hand
    from tasks.synth.grasps import synthesize_grasps
    from tasks.synth.objects import make_object

    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(5)
    mug = make_object("mug", rng, "mug-3d")
    grasps = synthesize_grasps(mug, params, layer, per_part=1, rng=rng, steps=20)[:2]
    folder = cycle_images_dir(images_dir, CYCLE)
    folder.mkdir(parents=True)
    items = []
    for position, grasp in enumerate(grasps):
        items.append(QueueItem(cycle=CYCLE, position=position, sample_id=f"threed-{position:04d}", dataset="synthetic",
                               object_category="mug", predicted=grasp.affordance, confidence=0.6,
                               reviews=reviews[position]))
        body = geometry_body(grasp.affordance, grasp.verts, params.f, mug.vertices, mug.faces, mug.vertex_labels)
        assert body["contact"], "the synthetic grasp touches the mug"
        write_body(body, folder, position, f"item {position}")
        imsave(image_path(folder, position), np.random.default_rng(position).uniform(size=(16, 24, 3)), format="png")
    ReviewStore(store_path).create_queue(CYCLE, items)
    return items


# Whether the page has fetched item 1's geometry (while item 0 is on screen: ahead of the reviewer).
PREFETCHED = """
return performance.getEntriesByType("resource").some((e) => e.name.includes("/items/1/geometry"));
"""


def _chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # WebGL without a GPU: ANGLE on SwiftShader, the software renderer Chromium ships.
    for argument in ("--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     f"--user-data-dir={profile}", "--window-size=1280,1100"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _wait(condition, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.mark.parametrize("token", [None, "tok3n/+"], ids=["no-token", "token"])
def test_rotate_toggle_contact_and_decide_in_the_3d_view(tmp_path, token):
    """With a token too: the module, the geometry and the decisions go with it; the vendored library needs none."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    store_path, images_dir = tmp_path / "review.sqlite", tmp_path / "images"
    items = _queue(store_path, images_dir)
    server, base_url = start_review_server(store_path, images_dir, token=token)
    driver = None
    try:
        driver = _chrome(tmp_path / "profile")
        driver.get(base_url + "/" + (f"?token={quote(token, safe='')}" if token else ""))
        view = lambda: driver.execute_script("return {...document.getElementById('view3d').dataset, "  # noqa: E731
                                             "note: document.getElementById('view3d-note').textContent};")
        state = _wait(lambda: (v := view())["loaded"] == "true" and v.get("position") == "0" and v,
                      "item 0's meshes in the 3-D view")
        _wait(lambda: driver.execute_script(PREFETCHED), "item 1's geometry fetched ahead")
        driver.find_element(By.ID, "reviewer").send_keys("ann" + Keys.ENTER)
        body = driver.find_element(By.TAG_NAME, "body")
        before = float(state["azimuth"])
        body.send_keys("l")  # turn right by one step
        turned = _wait(lambda: abs(float(view()["azimuth"]) - before) > 1e-3 and view(), "the view to turn")
        change = (float(turned["azimuth"]) - before + math.pi) % (2 * math.pi) - math.pi
        assert abs(abs(change) - STEP) < 1e-3, change
        assert state["contact"] == "false" and driver.execute_script(CONTACT_PIXELS) == 0
        body.send_keys("c")  # show the contact region
        _wait(lambda: view()["contact"] == "true", "the contact toggle")
        shown = _wait(lambda: driver.execute_script(CONTACT_PIXELS), "contact pixels on the canvas")
        assert shown > 20
        (tmp_path / "view3d.png").write_bytes(driver.find_element(By.ID, "view3d").screenshot_as_png)
        body.send_keys("0")  # reset: back where it started
        _wait(lambda: abs(float(view()["azimuth"]) - before) < 1e-3, "the view to reset")
        body.send_keys("a")  # the decision keys still work beside the 3-D view
        _wait(lambda: (v := view())["loaded"] == "true" and v.get("position") == "1", "item 1 in the 3-D view")
        trail = ReviewStore(store_path).trail(CYCLE)
        assert [(r.sample_id, r.kind, r.reviewer) for r in trail] == [(items[0].sample_id, "accepted", "ann")]
    finally:
        if driver is not None:
            driver.quit()
        stop_review_server(server)


def test_an_overlap_item_goes_to_a_second_reviewer_and_the_page_shows_their_agreement(tmp_path):
    """ann decides both items; item 1 asks for two reviewers, so it waits for bob. bob disagrees: the item is
    disputed and the queue stays open until carol decides. The reviewers' panel shows pace and agreement."""
    from selenium.webdriver.common.by import By

    store_path, images_dir = tmp_path / "review.sqlite", tmp_path / "images"
    items = _queue(store_path, images_dir, reviews=(1, 2))
    server, base_url = start_review_server(store_path, images_dir)
    driver = None
    try:
        driver = _chrome(tmp_path / "profile")
        text = lambda element_id: driver.find_element(By.ID, element_id).text  # noqa: E731

        def review_as(name: str, key: str) -> None:
            driver.execute_script("localStorage.setItem('afford-review-reviewer', arguments[0]);", name)
            driver.get(base_url + "/")
            _wait(lambda: not driver.find_element(By.ID, "review").get_attribute("hidden") and text("reviews"),
                  f"an item for {name}")
            driver.find_element(By.TAG_NAME, "body").send_keys(key)

        driver.get(base_url + "/")
        review_as("ann", "a")
        _wait(lambda: text("position").startswith("2"), "item 2 for ann")
        assert "second opinion: 0 of 2" in text("reviews")
        driver.find_element(By.TAG_NAME, "body").send_keys("a")
        _wait(lambda: "Nothing left for you" in text("status"), "ann's queue to run out")
        assert "1 item wait" in text("status")

        review_as("bob", "r")  # bob is served item 1 only, and rejects what ann accepted
        _wait(lambda: "Nothing left for you" in text("status"), "bob's queue to run out")
        store = ReviewStore(store_path)
        assert store.item(CYCLE, 1).state == "disputed" and not store.progress(CYCLE).complete

        review_as("carol", "r")  # the third decision makes a majority
        _wait(lambda: not driver.find_element(By.ID, "complete").get_attribute("hidden"), "the queue to complete")
        assert store.progress(CYCLE).complete and store.item(CYCLE, 1).state == "rejected"
        assert store.item(CYCLE, 1).reviewer == "bob, carol"
        trail = [(r.sample_id, r.kind, r.reviewer) for r in store.trail(CYCLE)]
        assert trail == [(items[0].sample_id, "accepted", "ann"), (items[1].sample_id, "accepted", "ann"),
                         (items[1].sample_id, "rejected", "bob"), (items[1].sample_id, "rejected", "carol")]

        driver.find_element(By.CSS_SELECTOR, "#reviewers-panel summary").click()
        _wait(lambda: "1 disputed" not in text("reviewer-summary") and text("reviewer-summary"), "the panel")
        rows = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#reviewer-rows tr")]
        assert [row.split()[:2] for row in rows] == [["ann", "2"], ["bob", "1"], ["carol", "1"]]
        assert text("reviewer-summary") == "1 item decided by two or more reviewers; 0 disputed."
        assert "0.0 % of 1" in rows[0] and "100.0 % of 1" in rows[1]  # ann is outvoted on item 1
        assert "bob and carol: Cohen's kappa" in text("reviewer-pairs")
    finally:
        if driver is not None:
            driver.quit()
        stop_review_server(server)

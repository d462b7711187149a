"""Regenerate docs/review/review_page.png (the review page mid-review, in headless Chromium at 1280x1400) and
docs/review/review_3d.png (the 3-D view of that item with the contact region shown).

    .venv/bin/python docs/screenshot_review.py

Builds a queue of six real synthetic grasps (one object per category, the generated MANO hand), renders their
pictures as the self-training flow does, serves them with the real web app, and has the browser set a reviewer
name, decide two items with the keyboard and type a comment on the third before the screenshot.
Needs Debian's Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from review.geometry import geometry_body, write_body  # noqa: E402
from review.images import cycle_images_dir, image_path  # noqa: E402
from review.simulated import start_review_server, stop_review_server  # noqa: E402
from review.store import ReviewStore  # noqa: E402
from schemas.affordance import AFFORDANCES  # noqa: E402
from schemas.review import QueueItem  # noqa: E402

OUT = Path(__file__).parent / "review" / "review_page.png"
OUT_3D = Path(__file__).parent / "review" / "review_3d.png"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CATEGORIES = ("mug", "bottle", "faucet", "knife", "pot", "scissors")
CYCLE = 1
WRONG = {2: "lift"}  # position -> a wrong prediction, so the page shows one to relabel


def build_queue(store_path: Path, images_dir: Path, seed: int = 7) -> list[QueueItem]:
    """One synthetic grasp per category as a cycle's review queue, with its pictures."""
    from models.mano import ManoLayer
    from models.mano_pickle import load_mano_pickle
    from models.synthetic_hand import write_synthetic_mano
    from ops.render import render_pair
    from tasks.synth.grasps import synthesize_grasps
    from tasks.synth.objects import make_object

    write_synthetic_mano(images_dir.parent / "mano")
    params = load_mano_pickle(images_dir.parent / "mano" / "MANO_RIGHT.pkl")
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(seed)
    folder = cycle_images_dir(images_dir, CYCLE)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for position, category in enumerate(CATEGORIES):
        obj = make_object(category, rng, f"{category}-review")
        grasp = synthesize_grasps(obj, params, layer, per_part=1, rng=rng, steps=40)[0]
        sample_id = f"synthetic-{position:04d}{obj.object_id}"
        items.append(QueueItem(cycle=CYCLE, position=position, sample_id=sample_id, dataset="synthetic",
                               object_category=category, predicted=WRONG.get(position, grasp.affordance),
                               confidence=round(float(rng.uniform(0.38, 0.62)), 3)))
        render_pair(image_path(folder, position), obj.vertices, obj.faces, grasp.verts, params.f,
                    object_vertex_labels=obj.vertex_labels, title=f"#{position}  synthetic  {category}")
        write_body(geometry_body(items[-1].predicted, grasp.verts, params.f, obj.vertices, obj.faces,
                                 obj.vertex_labels), folder, position, f"item {position}")
        print(f"item {position}: {category}, grasp {grasp.affordance} on the {grasp.part}")
    ReviewStore(store_path).create_queue(CYCLE, items)
    return items


def chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # WebGL without a GPU (the 3-D view): ANGLE on SwiftShader, the software renderer Chromium ships.
    for argument in ("--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                     "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no Selenium Manager download


def wait_for(driver, script: str, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError(f"page did not show {what} within {timeout_s:.0f} s")
        time.sleep(0.05)


def item_shown(position: int, decided: int, total: int) -> str:
    return (f'return document.getElementById("position").textContent === "{position + 1} / {total}" && '
            f'document.getElementById("progress").textContent === "{decided} of {total}" && '
            f'!document.getElementById("accept").disabled;')


def main() -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store_path, images_dir = root / "review.sqlite", root / "images"
        items = build_queue(store_path, images_dir)
        server, base_url = start_review_server(store_path, images_dir)
        driver = None
        try:
            driver = chrome(root / "profile")
            # --window-size counts the window, not the page: make the page itself 1280x1400.
            extra_w, extra_h = driver.execute_script(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
            driver.set_window_size(1280 + extra_w, 1400 + extra_h)
            driver.get(base_url + "/")
            total = len(items)
            wait_for(driver, item_shown(0, 0, total), "the first item")
            driver.find_element(By.ID, "reviewer").send_keys("maria" + Keys.ENTER)
            body = driver.find_element(By.TAG_NAME, "body")
            body.send_keys("a")  # item 0: accept
            wait_for(driver, item_shown(1, 1, total), "the second item")
            body.send_keys("a")  # item 1: accept
            wait_for(driver, item_shown(2, 2, total), "the third item")
            comment = driver.find_element(By.ID, "comment")
            comment.click()
            comment.send_keys(f"The hand pushes the faucet's lever: not {items[2].predicted}")
            wait_for(driver, 'const i = document.getElementById("image"); return i.complete && i.naturalWidth > 0 '
                             '&& document.getElementById("image-caption").textContent.startsWith("Left");',
                     "the picture")
            wait_for(driver, 'const v = document.getElementById("view3d").dataset; '
                             'return v.loaded === "true" && v.position === "2";', "the 3-D view of item 2")
            OUT.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(OUT))
            comment.send_keys(Keys.ESCAPE)
            body.send_keys("c")  # the contact region on
            wait_for(driver, 'return document.getElementById("view3d").dataset.contact === "true";', "contact")
            time.sleep(0.5)
            OUT_3D.write_bytes(driver.find_element(By.ID, "view3d").screenshot_as_png)
        finally:
            if driver is not None:
                driver.quit()
            stop_review_server(server)
    print(f"wrote {OUT} and {OUT_3D}; item 2 is predicted {items[2].predicted}, classes {', '.join(AFFORDANCES)}")


if __name__ == "__main__":
    main()

"""The review page a run writes (out/index.html), opened in headless Chromium as a
person would open it: every image on it loads, and the failed look shows why."""

import os
import shutil
from pathlib import Path

import pytest
from tryon_local.driver import SAMPLES, run

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; .ci/run installs it
# No connection may leave this machine, and nothing may be downloaded at start.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
NOT_A_PHOTO = b"Care instructions: wash at 30 degrees. (A text file, not the garment's photo.)\n"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium and Playwright's driver for it; in CI their absence is a
    failure (the test would silently stop checking the page), elsewhere a skip.
    Session-scoped so that it is decided before the stack starts."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (it is in the dev extras: make test installs it)"
    if not CHROMIUM.is_file():
        missing = (f"{CHROMIUM} is missing: install Debian's chromium package "
                   "(apt-get install chromium), as .ci/run does")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the review page cannot be checked: {missing}")
        pytest.skip(missing)
    return CHROMIUM


def send_batch(driver) -> list[str]:
    """One batch manifest: two looks that succeed and one whose garment is a text file."""
    person = driver.upload_image(SAMPLES / "person.jpg")
    return [driver.put_manifest("review-batch", {
        "version": 1,
        "attributes": {"campaign": "review"},
        "looks": [
            {"id": "top-and-bottom", "person": person,
             "top": driver.upload_image(SAMPLES / "top.jpg"),
             "bottom": driver.upload_image(SAMPLES / "bottom.jpg")},
            {"id": "dress", "person": person, "dress": driver.upload_image(SAMPLES / "dress.jpg")},
            {"id": "not-a-photo", "person": person,
             "top": driver.put("inputs/care-label.jpg", NOT_A_PHOTO)},
        ]})]


def test_the_review_page_loads_every_image_and_shows_the_failed_looks_error(
        chromium, stack, out_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    report = run(stack, send_batch, out_dir, timeout=120, progress=lambda line: None)
    statuses = {job["look_id"]: job["status"] for job in report["jobs"]}
    assert statuses == {"top-and-bottom": "SUCCEEDED", "dress": "SUCCEEDED",
                        "not-a-photo": "FAILED"}
    [failed] = [job for job in report["jobs"] if job["status"] == "FAILED"]
    assert failed["error"]["code"] == "NotAnImage"
    page_path = out_dir / "index.html"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(chromium), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1100, "height": 900})
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri(), wait_until="load")  # load: every image has settled
            images = page.evaluate("""Array.from(document.images).map(image => ({
                src: image.getAttribute("src"), alt: image.alt, width: image.naturalWidth}))""")
            looks = page.locator("article.look")
            error = page.locator('article[data-status="FAILED"] .error')
            error_text = error.inner_text()
            error_visible = error.is_visible()
            failed_placeholders = page.locator(
                'article[data-status="FAILED"] .placeholder').all_inner_texts()
            summary = page.locator(".summary").inner_text()
            look_count = looks.count()
            screenshot = out_dir / "review.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    if os.environ.get("REVIEW_SCREENSHOT"):  # for a person to look at
        target = Path(os.environ["REVIEW_SCREENSHOT"])
        shutil.copy(screenshot, target / screenshot.name if target.is_dir() else target)

    assert look_count == 3
    assert summary == "3 looks: 2 succeeded, 1 failed"
    # person + top + bottom + result, person + dress + result, and the failed look's
    # person: its garment is no image a browser could show, and it has no result.
    assert len(images) == 8, images
    broken = [image for image in images if image["width"] == 0]
    assert not broken, f"images that did not load: {broken}"
    assert all(not image["src"].startswith(("/", "http", "file:")) for image in images)
    assert sorted(image["alt"].split(":")[0] for image in images) == [
        "bottom", "dress", "person", "person", "person", "result", "result", "top"]
    assert error_visible
    assert error_text.startswith("NotAnImage: ")
    assert failed["error"]["message"] in error_text
    assert "the file is not an image" in error_text
    assert failed_placeholders == ["no preview", "no result"]
    assert screenshot.stat().st_size > 0

"""The review page of a large batch (issue 21 §3), as a browser shows it: --rows looks
sent through POST /v1/batches on the local stack (one in --fail-every naming an image
that was never uploaded), then GET /v1/batches/{id}/review and ?failed=true opened in
headless Chromium (Debian's, /usr/bin/chromium) with the integration's key.

    .venv/bin/python bench/review_page.py [--rows 250] [--fail-every 10] [--speedup 100]
                                          [--screenshot docs/images/review-large-batch.png]

Prints what each page holds (looks, images loaded, the next page's URL, the HTML's
size and how long the API took to answer it) and writes the first page's screenshot.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from support import ROOT, start_stack
from tryon_local.driver import SAMPLES

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--fail-every", type=int, default=10)
    parser.add_argument("--speedup", type=float, default=100.0)
    parser.add_argument("--screenshot", type=Path,
                        default=ROOT / "docs" / "images" / "review-large-batch.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-review-") as workdir:
        stack = start_stack(args.speedup, 5, Path(workdir), {
            "ModelLimits": "aitryon-plus=50/50", "DailyImageBudget": str(args.rows * 2),
            "IntegrationDailyQuota": str(args.rows * 2)})
        try:
            api = httpx.Client(base_url=stack.api_url, timeout=60, headers={
                "Authorization": f"Bearer {stack.create_api_key('lookbook', args.rows * 2)}"})
            person, top = upload(api, "person.jpg", "top.jpg")
            lines = ["id,person,top,attr.sku"] + [
                f"look-{i:04d},{person},"
                f"{f'uploads/lookbook/none/{i}.jpg' if i % args.fail_every == 0 else top},"
                f"SKU-{i:04d}" for i in range(args.rows)]
            body = ("\n".join(lines) + "\n").encode()
            made = api.post("/batches", json={"file": {
                "name": "lookbook.csv", "content_type": "text/csv", "size": len(body)}})
            made.raise_for_status()
            batch_id, form = made.json()["batch_id"], made.json()["upload"]
            httpx.post(form["url"], data=form["fields"],
                       files={"file": ("lookbook.csv", body, "text/csv")}).raise_for_status()
            started = time.monotonic()
            while True:
                view = api.get(f"/batches/{batch_id}")
                if view.status_code == 200 and view.json()["status"] != "OPEN":
                    break
                time.sleep(2)
            print(f"batch {batch_id}: {view.json()['counts']} in "
                  f"{time.monotonic() - started:.0f} s", flush=True)
            pages = {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                context = browser.new_context(
                    viewport={"width": 1200, "height": 1400},
                    extra_http_headers=dict(api.headers))
                for name, query in (("first", ""), ("failed", "?failed=true")):
                    url = f"{stack.api_url}/batches/{batch_id}/review{query}"
                    began = time.monotonic()
                    html = api.get(f"/batches/{batch_id}/review{query}")
                    answered = time.monotonic() - began
                    page = context.new_page()
                    page.goto(url, wait_until="load")
                    images = page.evaluate(
                        "Array.from(document.images).map(i => i.naturalWidth > 0)")
                    pages[name] = {
                        "looks": page.locator("article.look").count(),
                        "images": len(images), "images_loaded": sum(images),
                        "summary": page.locator(".summary").inner_text(),
                        "html_bytes": len(html.content), "answered_seconds": round(answered, 2),
                        "next": next((line for line in html.text.splitlines()
                                      if "More looks of this batch" in line), None)}
                    if name == "first":
                        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(args.screenshot), full_page=False)
                browser.close()
            print(json.dumps(pages, indent=2))
            print(f"screenshot: {args.screenshot}")
        finally:
            stack.stop()
    return 0


def upload(api: httpx.Client, *names: str) -> list[str]:
    files = [{"name": name, "content_type": "image/jpeg", "size": (SAMPLES / name).stat().st_size}
             for name in names]
    keys = []
    for form, name in zip(api.post("/uploads", json={"files": files}).json()["uploads"], names,
                          strict=True):
        httpx.post(form["url"], data=form["fields"], files={
            "file": (name, (SAMPLES / name).read_bytes(), "image/jpeg")}).raise_for_status()
        keys.append(form["key"])
    return keys


if __name__ == "__main__":
    sys.exit(main())

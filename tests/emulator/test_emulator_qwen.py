"""The Qwen Image models: sync answers, async tasks, inputs and the composite."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import httpx
import pytest
from emulator_support import (
    DAY,
    SAMPLES,
    Api,
    data_url,
    error_body,
    fetch_png,
    result_images,
)
from PIL import Image, ImageChops, ImageOps, ImageStat
from tryon_local.emulator.images import FACE_REGION, TORSO_REGION

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
RESOLVE = {"X-DashScope-OssResourceResolve": "enable"}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/top.jpg"


def _statuses_until_end(api: Api, task_id: str) -> tuple[list[str], dict[str, Any]]:
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = api.query(task_id)
        status = body["output"]["task_status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("SUCCEEDED", "FAILED", "CANCELED"):
            return seen, body
        time.sleep(0.01)
    raise AssertionError(f"task never ended: {seen}")


# --- sync -----------------------------------------------------------------------------


def test_sync_call_answers_a_png_of_the_requested_size(api: Api) -> None:
    response = api.generate(model="qwen-image-2.0", size="512*768")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"output", "usage", "request_id"}
    assert set(body["output"]) == {"choices"}  # no rewrite_status on 2.0
    assert body["usage"] == {"width": 512, "height": 768, "image_count": 1}
    [url] = result_images(body["output"])
    assert url.startswith(api.server.root_url + "/results/")
    assert "Expires=" in url and "Signature=" in url
    assert fetch_png(url).size == (512, 768)

    stats = api.stats()
    assert stats["generations"] == 1 and stats["generation_requests"] == 1
    assert stats["submits"] == 0 and stats["results"] == 1
    assert stats["by_model"]["qwen-image-2.0"] == {
        "submits": 0, "generations": 1, "images": 1, "throttled": 0, "running": 0,
        "peak_running": 1, "peak_pending": 0, "queue_full": 0,
    }
    # Signed and expiring like every result URL.
    api.advance(DAY)
    expired = httpx.get(url)
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text


def test_sync_3_0_answers_the_3_0_usage_shape(api: Api) -> None:
    response = api.generate(model="qwen-image-3.0-pro", size="640*640", prompt_extend=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"] == {"output_width": 640, "output_height": 640, "output_image_count": 1}
    assert body["output"]["rewrite_status"] == "succeeded"
    assert fetch_png(result_images(body["output"])[0]).size == (640, 640)


def test_n_images_come_back_in_one_choice(api: Api) -> None:
    response = api.generate(n=2)
    assert response.status_code == 200, response.text
    body = response.json()
    urls = result_images(body["output"])
    assert len(urls) == 2 and len(set(urls)) == 2
    assert body["usage"]["image_count"] == 2
    assert api.stats()["by_model"]["qwen-image-2.0"]["images"] == 2


# --- async ----------------------------------------------------------------------------


def test_async_task_runs_pending_running_succeeded(api: Api) -> None:
    api.fault(target="hold", count=1)
    response = api.submit_generation(model="qwen-image-3.0")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"output", "request_id"}
    assert body["output"]["task_status"] == "PENDING" and len(body["output"]["task_id"]) == 36
    task_id = body["output"]["task_id"]

    running = api.wait(task_id, "RUNNING")["output"]
    assert TIMESTAMP.match(running["scheduled_time"]) and "choices" not in running
    api.hold(task_id, False)
    seen, done = _statuses_until_end(api, task_id)
    assert set(seen) <= {"PENDING", "RUNNING", "SUCCEEDED"}  # no PRE-/POST-PROCESSING
    output = done["output"]
    assert output["task_status"] == "SUCCEEDED"
    for name in ("submit_time", "scheduled_time", "end_time"):
        assert TIMESTAMP.match(output[name])
    assert output["rewrite_status"] == "skipped" and "image_url" not in output
    assert done["usage"] == {
        "output_width": 512, "output_height": 768, "output_image_count": 1,
    }
    assert fetch_png(result_images(output)[0]).size == (512, 768)

    stats = api.stats()
    assert stats["submits"] == 1 and stats["generations"] == 0
    model = stats["by_model"]["qwen-image-3.0"]
    assert (model["submits"], model["images"], model["running"]) == (1, 1, 0)
    timeline = api.timelines()[0]
    assert timeline["model"] == "qwen-image-3.0" and timeline["status"] == "SUCCEEDED"


def test_3_0_task_without_size_picks_1024_square(api: Api) -> None:
    body = api.qwen_body(model="qwen-image-3.0")
    del body["parameters"]["size"]
    done = api.wait(api.create_generation(body=body))
    assert done["output"]["task_status"] == "SUCCEEDED", done
    assert done["usage"]["output_width"] == done["usage"]["output_height"] == 1024


def test_pending_task_can_be_canceled_and_tasks_are_listed(api: Api) -> None:
    api.fault(target="hold", count=10)
    running = [api.create_generation() for _ in range(10)]  # the model's 10 slots
    queued = api.create_generation()
    api.wait_until(lambda: all(api.statuses()[t] == "RUNNING" for t in running))
    assert api.query(queued)["output"]["task_status"] == "PENDING"

    assert api.http.post(f"/tasks/{queued}/cancel").status_code == 200
    assert api.query(queued)["output"]["task_status"] == "CANCELED"
    refused = error_body(api.http.post(f"/tasks/{running[0]}/cancel"), 400,
                         "UnsupportedOperation")
    assert "RUNNING" in refused["message"]

    listed = api.http.get("/tasks", params={"model_name": "qwen-image-3.0",
                                            "page_size": 20}).json()
    assert listed["total"] == 11
    assert {item["model_name"] for item in listed["data"]} == {"qwen-image-3.0"}
    assert {item["task_id"] for item in listed["data"]} == {*running, queued}
    by_status = api.http.get("/tasks", params={"status": "RUNNING"}).json()
    assert {item["task_id"] for item in by_status["data"]} == set(running)
    assert api.stats()["tasks"]["RUNNING"] == 10 and api.stats()["cancels"] == 1


def test_task_fault_fails_a_qwen_task(api: Api) -> None:
    api.fault(target="task", code="DataInspectionFailed", message="flagged")
    output = api.wait(api.create_generation())["output"]
    assert output["task_status"] == "FAILED"
    assert (output["code"], output["message"]) == ("DataInspectionFailed", "flagged")
    assert "choices" not in output


def test_qwen_and_try_on_slots_are_separate_pools(api: Api) -> None:
    api.fault(target="hold", count=15)
    tryon = [api.create() for _ in range(5)]  # aitryon-plus's 5 slots, all held
    qwen = [api.create_generation() for _ in range(10)]  # qwen-image-3.0's 10, held
    api.wait_until(lambda: all(api.statuses()[t] == "RUNNING" for t in (*tryon, *qwen)))
    # Each model's pool is its own: aitryon, another Qwen model and 2.0 still run.
    basic = api.create(body={**api.body(), "model": "aitryon"})
    pro = api.create_generation(model="qwen-image-3.0-pro")
    assert api.wait(basic)["output"]["task_status"] == "SUCCEEDED"
    assert api.wait(pro)["output"]["task_status"] == "SUCCEEDED"
    assert api.generate(model="qwen-image-2.0").status_code == 200
    # Sync 3.0 calls are unlimited in number: a full task pool does not refuse one.
    assert api.generate(model="qwen-image-3.0").status_code == 200
    queued, queued_tryon = api.create_generation(), api.create()
    assert api.query(queued)["output"]["task_status"] == "PENDING"
    assert api.query(queued_tryon)["output"]["task_status"] == "PENDING"

    api.hold(qwen[0], False)
    api.hold(tryon[0], False)
    assert api.wait(queued)["output"]["task_status"] == "SUCCEEDED"
    assert api.wait(queued_tryon)["output"]["task_status"] == "SUCCEEDED"
    stats = api.stats()
    assert stats["peak_running"] == 10  # the most of any one model
    assert stats["by_model"]["aitryon-plus"]["peak_running"] == 5
    assert stats["by_model"]["qwen-image-3.0"]["peak_running"] == 10
    assert stats["by_model"]["qwen-image-3.0"]["peak_pending"] == 1
    assert stats["throttled"]["generation"] == 0


# --- inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("small-300px.png", ["image 2", "300x300", "384"]),
        ("big-11mb.jpg", ["image 2", "10 MB"]),
        ("not-an-image.jpg", ["image 2", "not a decodable image", "GIF"]),
        ("/home/me/top.jpg", ["image 2", "http"]),
        ("data:image/png,abc", ["image 2", "base64"]),
        ("data:image/png;base64,!!!", ["image 2", "base64"]),
    ],
)
def test_inputs_that_break_the_rules_are_invalid_parameter(
    api: Api, image: str, words: list[str]
) -> None:
    images = ("person.jpg", image)
    sync = api.generate(model="qwen-image-3.0", images=images)
    message = error_body(sync, 400, "InvalidParameter")["message"]
    for word in words:
        assert word in message, message
    # As a task: FAILED with the same code and message.
    output = api.wait(api.create_generation(images=images))["output"]
    assert output["task_status"] == "FAILED"
    assert (output["code"], output["message"]) == ("InvalidParameter", message)
    assert api.stats()["generations"] == 0


@pytest.mark.parametrize("where", ["missing", "closed port"])
def test_input_that_cannot_be_fetched_is_415_or_a_failed_task(api: Api, where: str) -> None:
    url = api.inputs("no-such-file.jpg") if where == "missing" else _closed_port_url()
    images = ("person.jpg", url)
    body = error_body(api.generate(images=images), 415, "BadRequest.InputDownloadFailed")
    assert "image 2" in body["message"]
    output = api.wait(api.create_generation(images=images))["output"]
    assert output["task_status"] == "FAILED"
    assert output["code"] == "BadRequest.InputDownloadFailed" and "image 2" in output["message"]


def test_side_limits_differ_by_family(api: Api) -> None:
    wide = data_url(Image.new("RGB", (3000, 400), (200, 80, 60)))
    response = api.generate(model="qwen-image-2.0", images=("person.jpg", wide))
    assert response.status_code == 200, response.text  # 2.0: sides up to 3072
    rejected = api.generate(model="qwen-image-3.0", images=("person.jpg", wide))
    message = error_body(rejected, 400, "InvalidParameter")["message"]
    assert "image 2" in message and "2048" in message


def test_data_urls_are_accepted_gif_by_its_first_frame(api: Api) -> None:
    person = Image.open(SAMPLES / "person.jpg")
    frames = [Image.new("RGB", (400, 600), colour) for colour in ("teal", "orange")]
    gif = data_url(frames[0], "GIF", save_all=True, append_images=frames[1:])
    response = api.generate(
        images=(data_url(person, "JPEG"), gif), text="Dress image 1 in the top from image 2."
    )
    assert response.status_code == 200, response.text
    tiff = data_url(Image.new("RGB", (400, 400), "navy"), "TIFF")
    assert api.generate(images=("person.jpg", tiff)).status_code == 200


def test_oss_uploads_are_accepted_with_the_resolve_header(api: Api) -> None:
    policy = api.policy("qwen-image-2.0")
    upload = api.upload(policy, "person.jpg", (SAMPLES / "person.jpg").read_bytes())
    assert upload.status_code == 200, upload.text
    key = f"oss://{policy['upload_dir']}/person.jpg"

    response = api.generate(images=(key, "top.jpg"), headers=RESOLVE)
    assert response.status_code == 200, response.text
    # Without the header the key is no URL the model takes...
    no_header = error_body(api.generate(images=(key, "top.jpg")), 400, "InvalidParameter")
    assert "image 1" in no_header["message"]
    # ...and another model cannot read the file.
    other = api.generate(model="qwen-image-2.0-pro", images=(key, "top.jpg"), headers=RESOLVE)
    assert "image 1" in error_body(other, 415, "BadRequest.InputDownloadFailed")["message"]


# --- the composite ----------------------------------------------------------------------


def _region_difference(a: Image.Image, b: Image.Image, region: tuple[float, ...]) -> float:
    width, height = a.size
    box = (round(region[0] * width), round(region[1] * height),
           round(region[2] * width), round(region[3] * height))
    diff = ImageChops.difference(a.convert("RGB").crop(box), b.convert("RGB").crop(box))
    return sum(ImageStat.Stat(diff).mean) / 3


def test_composite_places_the_garments_the_instruction_names(api: Api) -> None:
    # The person's own size: the base is the person image as is.
    person = ImageOps.exif_transpose(Image.open(SAMPLES / "person.jpg")).convert("RGB")
    plain_response = api.generate(
        images=("person.jpg", "top.jpg"), text="Keep image 1 as it is.", size="512*1024"
    )
    dressed_response = api.generate(
        images=("person.jpg", "top.jpg"),
        text="Dress the person in image 1 in THE TOP FROM IMAGE 2. The face may change.",
        size="512*1024",
    )
    plain = fetch_png(result_images(plain_response.json()["output"])[0])
    dressed = fetch_png(result_images(dressed_response.json()["output"])[0])
    assert plain.size == dressed.size == (512, 1024)
    # Not placed: the torso is the person's own (image 2 is only a thumbnail)...
    assert _region_difference(plain, person, TORSO_REGION) < 6
    # ...placed: the top covers it, and the face is marked as new.
    assert _region_difference(dressed, person, TORSO_REGION) > 20
    assert _region_difference(dressed, plain, FACE_REGION) > 10
    assert _region_difference(plain, person, FACE_REGION) < 6

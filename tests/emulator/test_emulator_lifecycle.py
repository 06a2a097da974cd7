"""Task lifecycle: success, input validation failures, queueing, cancel, purge."""

from __future__ import annotations

import io
import re
import socket
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from emulator_support import DAY, SPEEDUP, Api, InputSite
from PIL import Image
from tryon_local.emulator import EmulatorConfig, serve_in_thread

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
CST = timezone(timedelta(hours=8))
LIVE = {"PENDING", "PRE-PROCESSING", "RUNNING", "POST-PROCESSING"}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/person.jpg"


@pytest.mark.parametrize(
    ("resolution", "size"), [(-1, (512, 1024)), (1024, (576, 1024)), (1280, (720, 1280))]
)
def test_task_succeeds_with_timestamps_and_a_result_image(api: Api, resolution, size) -> None:
    task_id = api.create(parameters={"resolution": resolution, "restore_face": False})
    body = api.wait(task_id)
    output = body["output"]
    assert output["task_status"] == "SUCCEEDED", body
    assert body["usage"] == {"image_count": 1}
    times = [output["submit_time"], output["scheduled_time"], output["end_time"]]
    assert all(TIMESTAMP.match(t) for t in times), times
    assert times == sorted(times)
    # China Standard Time, like the real service.
    submitted = datetime.strptime(times[0], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=CST)
    assert abs((datetime.now(CST) - submitted).total_seconds()) < 30
    # Generation took 1-2 provider seconds, divided by the speed-up.
    scheduled, ended = (datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f") for t in times[1:])
    assert (ended - scheduled).total_seconds() >= 1.0 / SPEEDUP

    url = output["image_url"]
    assert url.startswith(api.server.root_url + "/results/")
    assert "Expires=" in url and "Signature=" in url
    image = httpx.get(url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert _jpeg_size(image.content) == size


def test_dress_as_top_without_bottom_succeeds(api: Api) -> None:
    task_id = api.create(top_garment_url=api.inputs("dress.jpg"), bottom_garment_url=None)
    assert api.wait(task_id)["output"]["task_status"] == "SUCCEEDED"


def test_image_url_follows_the_host_the_client_used(api: Api) -> None:
    task_id = api.create()
    api.wait(task_id)
    localhost = api.server.base_url.replace("127.0.0.1", "localhost")
    response = httpx.get(
        f"{localhost}/tasks/{task_id}", headers=api.http.headers
    )
    url = response.json()["output"]["image_url"]
    assert url.startswith(localhost.removesuffix("/api/v1") + "/results/")
    assert httpx.get(url).status_code == 200


def _failed(api: Api, **input_fields) -> dict:
    task_id = api.create(**input_fields)
    output = api.wait(task_id)["output"]
    assert output["task_status"] == "FAILED", output
    assert TIMESTAMP.match(output["end_time"])
    return output


def test_unreachable_input_fails_invalid_url(api: Api) -> None:
    output = _failed(api, person_image_url=_closed_port_url())
    assert output["code"] == "InvalidURL"
    assert "person_image_url" in output["message"]


def test_missing_input_fails_invalid_url(api: Api) -> None:
    output = _failed(api, bottom_garment_url=api.inputs("no-such-file.jpg"))
    assert output["code"] == "InvalidURL"
    assert "bottom_garment_url" in output["message"] and "404" in output["message"]


def test_local_path_fails_invalid_url(api: Api) -> None:
    output = _failed(api, person_image_url="/home/me/person.jpg")
    assert output["code"] == "InvalidURL"


def test_file_that_is_not_an_image_fails_invalid_url(api: Api) -> None:
    output = _failed(api, top_garment_url=api.inputs("not-an-image.jpg"))
    assert output["code"] == "InvalidURL"
    assert "top_garment_url" in output["message"]
    assert "JPEG" in output["message"]


def test_image_with_a_short_side_fails_invalid_input_length(api: Api) -> None:
    output = _failed(api, top_garment_url=api.inputs("small-100px.png"))
    assert output["code"] == "InvalidInputLength"
    assert "top_garment_url" in output["message"] and "100x100" in output["message"]


def test_image_under_5kb_fails_invalid_input_length(api: Api) -> None:
    output = _failed(api, person_image_url=api.inputs("tiny-1kb.jpg"))
    assert output["code"] == "InvalidInputLength"
    assert "person_image_url" in output["message"] and "5 KB" in output["message"]


def test_image_over_5mb_fails_invalid_input_length(api: Api) -> None:
    output = _failed(api, bottom_garment_url=api.inputs("big-6mb.jpg"))
    assert output["code"] == "InvalidInputLength"
    assert "bottom_garment_url" in output["message"] and "5 MB" in output["message"]


def test_download_timeout_fails_invalid_parameter(inputs: InputSite) -> None:
    config = EmulatorConfig(
        api_keys=frozenset({"sk-test"}), gen_time=(1, 1), speedup=SPEEDUP, download_timeout=0.3
    )
    with serve_in_thread(config) as server:
        api = Api(server, inputs)
        try:
            output = _failed(api, person_image_url=inputs("slow/person.jpg"))
        finally:
            api.close()
    assert output["code"] == "InvalidParameter"
    assert output["message"].startswith("Download the media resource timed out")


def test_at_most_five_tasks_run_and_the_sixth_waits(api: Api) -> None:
    api.fault(target="hold", count=6)
    ids = [api.create() for _ in range(6)]
    api.wait_until(lambda: [api.statuses()[i] for i in ids[:5]] == ["RUNNING"] * 5)
    sixth = api.query(ids[5])["output"]
    assert sixth["task_status"] == "PENDING"
    assert "scheduled_time" not in sixth
    stats = api.stats()
    assert stats["running"] == 5 and stats["peak_running"] == 5

    # Releasing one frees a slot: it finishes, and the queued task starts.
    api.hold(ids[0], False)
    assert api.wait(ids[0])["output"]["task_status"] == "SUCCEEDED"
    api.wait_until(lambda: api.statuses()[ids[5]] == "RUNNING")
    assert "scheduled_time" in api.query(ids[5])["output"]
    assert api.stats()["peak_running"] == 5


def test_pending_task_can_be_canceled_running_cannot(api: Api) -> None:
    api.fault(target="hold", count=6)
    ids = [api.create() for _ in range(6)]
    api.wait_until(lambda: api.statuses()[ids[0]] == "RUNNING")

    response = api.http.post(f"/tasks/{ids[5]}/cancel")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"request_id"}
    output = api.query(ids[5])["output"]
    assert output["task_status"] == "CANCELED"
    assert TIMESTAMP.match(output["end_time"])

    refused = api.http.post(f"/tasks/{ids[0]}/cancel")
    assert refused.status_code == 400
    assert refused.json()["code"] == "UnsupportedOperation"
    assert "RUNNING" in refused.json()["message"]
    # Canceling twice is refused too: it is no longer PENDING.
    assert api.http.post(f"/tasks/{ids[5]}/cancel").status_code == 400
    assert api.stats()["cancels"] == 1


def test_task_and_result_url_are_gone_after_24_hours(api: Api) -> None:
    task_id = api.create()
    url = api.wait(task_id)["output"]["image_url"]
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    denied = httpx.get(tampered)
    assert denied.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in denied.text

    api.advance(DAY)
    assert api.query(task_id)["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert expired.headers["content-type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in expired.text and "expired" in expired.text
    assert api.stats()["tasks"]["SUCCEEDED"] == 0


def test_task_with_no_result_in_3_hours_times_out(api: Api) -> None:
    api.fault(target="hold", count=1)
    task_id = api.create()
    api.wait(task_id, "RUNNING")
    api.advance(3 * 3600 / SPEEDUP)  # the 3 h limit, scaled like every duration
    output = api.query(task_id)["output"]
    assert output["task_status"] == "FAILED"
    assert output["code"] == "InternalError.Timeout"


def test_task_list_filters_and_pages(api: Api) -> None:
    first = api.create()
    second = api.create(parameters={"resolution": 1024})
    api.wait(first)
    api.wait(second)
    # Held, so it cannot reach SUCCEEDED before the status filter below runs.
    api.fault(target="hold", count=1)
    api.submit(body={**api.body(), "model": "aitryon"})
    listing = api.http.get("/tasks", params={"model_name": "aitryon-plus"}).json()
    assert listing["total"] == 2 and listing["page_no"] == 1 and listing["page_size"] == 10
    assert [t["task_id"] for t in listing["data"]] == [second, first]  # newest first
    assert all(t["model_name"] == "aitryon-plus" for t in listing["data"])

    page = api.http.get("/tasks", params={"page_size": 1, "page_no": 2}).json()
    assert page["total"] == 3 and len(page["data"]) == 1

    now = datetime.now(CST)
    window = {
        "start_time": (now - timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"),
        "end_time": (now + timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"),
        "status": "SUCCEEDED",
    }
    found = api.http.get("/tasks", params=window).json()
    assert {t["task_id"] for t in found["data"]} == {first, second}
    earlier = {"end_time": (now - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")}
    assert api.http.get("/tasks", params=earlier).json()["total"] == 0
    assert api.http.get("/tasks", params={"start_time": "yesterday"}).status_code == 400

"""Parsing (garment segmentation): the synchronous endpoint, its crops and knobs."""

from __future__ import annotations

import io
import socket

import httpx
import pytest
from emulator_support import DAY, Api, burst
from PIL import Image
from tryon_local.emulator import images

PARSE = "/services/vision/image-process/process"


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"] and body["request_id"]
    return body


def _output(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"] == {"image_count": 1} and body["request_id"]
    return body["output"]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/person.jpg"


def test_upper_and_lower_of_the_sample_person_are_cropped(api: Api) -> None:
    output = _output(api.parse(clothes_type=["upper", "lower"]))
    assert set(output) == {"parsing_img_url", "crop_img_url", "bbox"}
    assert all(len(values) == 2 for values in output.values())
    for crop_url, preview_url, bbox in zip(
        output["crop_img_url"], output["parsing_img_url"], output["bbox"], strict=True
    ):
        assert crop_url.startswith(api.server.root_url + "/results/")
        assert "Expires=" in crop_url and "Signature=" in crop_url
        crop = httpx.get(crop_url)
        assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
        # Valid as a try-on input: JPEG, 5 KB-5 MB, every side 150-4096 px.
        checked = images.check_image("bottom_garment_url", crop.content)
        assert checked.format == "JPEG" and min(checked.width, checked.height) >= 150
        with Image.open(io.BytesIO(crop.content)) as image:
            assert image.mode == "RGB"

        preview = httpx.get(preview_url)
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(preview.content)) as image:
            assert image.format == "PNG" and image.mode == "RGBA"
            # The backdrop around the garment is transparent, the garment is not.
            low, high = image.getchannel("A").getextrema()
            assert low < 128 < high

        x1, y1, x2, y2 = bbox
        assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 1024  # the sample is 512x1024
    upper, lower = output["bbox"]
    assert upper[1] < lower[1] and upper[3] < lower[3]  # the top sits above the bottom


@pytest.mark.parametrize("clothes_type", [["lower"], ["upper"], ["dress"]])
def test_one_garment_gives_arrays_of_one(api: Api, clothes_type: list[str]) -> None:
    output = _output(api.parse(clothes_type=clothes_type))
    assert [len(v) for v in output.values()] == [1, 1, 1]
    assert output["crop_img_url"][0] is not None


def test_a_plain_picture_has_no_garment(api: Api) -> None:
    output = _output(api.parse(api.inputs("plain.bmp"), ["upper", "lower"]))
    assert output == {
        "parsing_img_url": [None, None], "crop_img_url": [None, None], "bbox": [None, None],
    }
    assert _output(api.parse(api.inputs("plain.bmp"), ["dress"]))["bbox"] == [None]


@pytest.mark.parametrize(
    "clothes_type",
    [["lower", "upper"], ["upper", "dress"], ["shoes"], [], "upper", None, [["upper"]]],
)
def test_other_clothes_types_are_refused(api: Api, clothes_type) -> None:
    _error(api.parse(clothes_type=clothes_type), 400, "InvalidParameter.ClothesType")


def test_keys_header_body_and_model_are_checked(api: Api) -> None:
    body = {
        "model": "aitryon-parsing-v1",
        "input": {"image_url": api.inputs("person.jpg")},
        "parameters": {"clothes_type": ["upper"]},
    }
    base = api.server.base_url + PARSE
    missing = _error(httpx.post(base, json=body), 401, "InvalidApiKey")
    assert missing["message"] == "No API-key provided."
    wrong = httpx.post(base, json=body, headers={"Authorization": "Bearer sk-no"})
    _error(wrong, 401, "InvalidApiKey")

    asynchronous = api.http.post(PARSE, json=body, headers={"X-DashScope-Async": "enable"})
    refused = _error(asynchronous, 403, "AccessDenied")
    assert refused["message"] == "current user api does not support asynchronous calls"
    unknown = api.http.post(PARSE, json={**body, "model": "aitryon-plus"})
    assert _error(unknown, 400, "InvalidParameter")["message"] == "Model not exist."
    for bad_input in ({}, {"image_url": 5}, {"image_url": ""}):
        response = api.http.post(PARSE, json={**body, "input": bad_input})
        _error(response, 400, "InvalidParameter")
    _error(api.http.post(PARSE, content=b"{nope"), 400, "InvalidParameter")
    # No async header is needed, and the trailing slash is accepted.
    assert api.http.post(PARSE + "/", json=body).status_code == 200


def test_unreachable_image_is_400_invalid_url(api: Api) -> None:
    body = _error(api.parse(_closed_port_url()), 400, "InvalidURL")
    assert "image_url" in body["message"]
    _error(api.parse(api.inputs("no-such-file.jpg")), 400, "InvalidURL")
    _error(api.parse(api.inputs("tiny-1kb.jpg")), 400, "InvalidInputLength")
    _error(api.parse(api.inputs("small-100px.png")), 400, "InvalidInputLength")
    assert api.stats()["parsings"] == 0


def test_fault_knob_hides_a_garment_from_the_next_calls(api: Api) -> None:
    api.fault(target="parsing", garment="lower", count=1)
    assert api.knobs.get("/faults").json()["armed"]["parsing"] == [
        {"garment": "lower", "remaining": 1}
    ]
    # A call that does not ask for the garment leaves the knob armed.
    assert _output(api.parse(clothes_type=["upper"]))["bbox"][0] is not None
    output = _output(api.parse(clothes_type=["upper", "lower"]))
    assert output["crop_img_url"][0] is not None
    assert output["crop_img_url"][1] is None and output["bbox"][1] is None
    assert _output(api.parse(clothes_type=["lower"]))["bbox"][0] is not None
    bad = api.knobs.post("/faults", json={"target": "parsing", "garment": "hat"})
    assert bad.status_code == 400


def test_a_crop_is_a_valid_garment_for_try_on(api: Api) -> None:
    """Keep my own bottom: segment it, then pass its crop with a new top."""
    crop_url = _output(api.parse(clothes_type=["lower"]))["crop_img_url"][0]
    task_id = api.create(top_garment_url=api.inputs("top.jpg"), bottom_garment_url=crop_url)
    output = api.wait(task_id)["output"]
    assert output["task_status"] == "SUCCEEDED", output
    assert httpx.get(output["image_url"]).status_code == 200


def test_parsing_has_its_own_rate_window(api: Api) -> None:
    unreachable = _closed_port_url()  # admitted calls answer fast with 400
    assert burst(lambda: api.parse(unreachable), 11) == [400] * 10 + [429]
    _error(api.parse(unreachable), 429, "Throttling.RateQuota")
    assert api.submit().status_code == 200  # the try-on window is untouched
    stats = api.stats()
    assert stats["throttled"]["parsing"] == 2 and stats["throttled"]["submit"] == 0
    assert stats["parsing_requests"] == 12 and stats["parsings"] == 0


def test_crops_expire_with_result_urls_and_calls_are_counted(api: Api) -> None:
    output = _output(api.parse())
    _output(api.parse(api.inputs("plain.bmp")))
    stats = api.stats()
    assert stats["parsings"] == 2 and stats["results"] == 4  # two crops, two previews
    api.advance(DAY)
    expired = httpx.get(output["crop_img_url"][0])
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text
    assert api.stats()["results"] == 0

"""The official DashScope SDK (2.0.2), unmodified, drives the Qwen Image endpoints.

`ImageGeneration.call` posts to .../multimodal-generation/generation;
`async_call` posts to .../image-generation/generation with the async header
and adds `parameters.is_async: true`, which the emulator ignores. The SDK also
sends its own `x-dashscope-sdk-*` headers.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import dashscope
import httpx
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from emulator_support import API_KEY, SAMPLES, Api, fetch_png

TEXT = "Dress the person in image 1 in the top from image 2 and the bottoms from image 3."


@pytest.fixture(autouse=True)
def _sdk_on_the_emulator(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", api.server.base_url)


def _messages(*images: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*({"image": i} for i in images), {"text": TEXT}]}]


def _image(response: Any) -> str:
    [choice] = response.output.choices
    assert choice.finish_reason == "stop"
    [item] = choice.message.content
    return item["image"]


def test_sdk_sync_call_returns_the_image(api: Api) -> None:
    response = ImageGeneration.call(
        model="qwen-image-2.0",
        messages=_messages(api.inputs("person.jpg"), api.inputs("top.jpg"),
                           api.inputs("bottom.jpg")),
        size="512*768",
        n=1,
        prompt_extend=False,
        watermark=False,
        api_key=API_KEY,
    )
    assert response.status_code == HTTPStatus.OK, response
    assert response.usage["width"] == 512 and response.usage["image_count"] == 1
    assert fetch_png(_image(response)).size == (512, 768)


def test_sdk_async_call_and_wait_see_the_choices(api: Api) -> None:
    created = ImageGeneration.async_call(
        model="qwen-image-3.0",
        messages=_messages(api.inputs("person.jpg"), api.inputs("dress.jpg")),
        size="576*1024",
        n=1,
        prompt_extend=False,
        watermark=False,
        api_key=API_KEY,
    )
    assert created.status_code == HTTPStatus.OK, created
    assert created.output["task_status"] == "PENDING"

    result = ImageGeneration.wait(created, api_key=API_KEY, wait_timeout=30)
    assert result.status_code == HTTPStatus.OK, result
    assert result.output["task_status"] == "SUCCEEDED"
    assert result.usage["output_width"] == 576 and result.usage["output_image_count"] == 1
    assert fetch_png(_image(result)).size == (576, 1024)


def test_sdk_uploads_a_local_file_and_sends_it_as_oss(api: Api) -> None:
    # A local path makes the SDK fetch a policy, upload the file and send
    # oss://... with X-DashScope-OssResourceResolve: enable.
    response = ImageGeneration.call(
        model="qwen-image-2.0",
        messages=_messages(str(SAMPLES / "person.jpg"), api.inputs("top.jpg")),
        size="512*768",
        prompt_extend=False,
        api_key=API_KEY,
    )
    assert response.status_code == HTTPStatus.OK, response
    stats = api.stats()
    assert stats["upload_policies"] == 1 and stats["uploads"] == 1
    assert httpx.get(_image(response)).status_code == 200


def test_sdk_sees_provider_errors(api: Api) -> None:
    person = api.inputs("person.jpg")
    response = ImageGeneration.call(
        model="qwen-image-2.0", messages=_messages(*[person] * 4), api_key=API_KEY
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.code == "InvalidParameter" and "4 image items" in response.message
    no_tasks = ImageGeneration.async_call(
        model="qwen-image-2.0", messages=_messages(person), api_key=API_KEY
    )
    assert no_tasks.status_code == HTTPStatus.BAD_REQUEST and no_tasks.request_id
    api.retire("qwen-image-3.0")
    retired = ImageGeneration.async_call(
        model="qwen-image-3.0", messages=_messages(person), api_key=API_KEY
    )
    assert retired.status_code == HTTPStatus.BAD_REQUEST
    assert (retired.code, retired.message) == ("InvalidParameter", "Model not exist.")

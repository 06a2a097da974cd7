"""The official DashScope SDK (2.0.2), unmodified, drives the emulator."""

from __future__ import annotations

from http import HTTPStatus

import dashscope
import httpx
import pytest
from dashscope.client.base_api import BaseAsyncApi
from emulator_support import API_KEY, Api


def test_sdk_async_call_and_wait_see_a_succeeded_task(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", api.server.base_url)
    created = BaseAsyncApi.async_call(
        model="aitryon-plus",
        input={
            "person_image_url": api.inputs("person.jpg"),
            "top_garment_url": api.inputs("top.jpg"),
            "bottom_garment_url": api.inputs("bottom.jpg"),
        },
        task_group="aigc",
        task="image2image",
        function="image-synthesis",
        resolution=-1,
        restore_face=True,
        api_key=API_KEY,
    )
    assert created.status_code == HTTPStatus.OK, created
    assert created.output["task_status"] == "PENDING"

    result = BaseAsyncApi.wait(created, api_key=API_KEY, wait_timeout=30)
    assert result.status_code == HTTPStatus.OK, result
    assert result.output["task_status"] == "SUCCEEDED"
    assert result.usage["image_count"] == 1
    image = httpx.get(result.output["image_url"])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"


def test_sdk_sees_provider_errors(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", api.server.base_url)
    response = BaseAsyncApi.async_call(
        model="aitryon-plus",
        input={"person_image_url": api.inputs("person.jpg")},
        task_group="aigc",
        task="image2image",
        function="image-synthesis",
        api_key=API_KEY,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.code == "InvalidGarment"
    assert response.request_id

import io

import httpx
import pytest
from fakes import FakeStack
from moto_stages import moto_stages  # noqa: F401  (the fixture, for the tests here)
from PIL import Image
from tryon.adapters import result_download
from tryon.stages import completion


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (576, 1024), (200, 120, 80)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def fake(monkeypatch) -> FakeStack:
    """The stages on in-memory fakes, on a clock the test moves. Result images are
    fetched and checked by the real download code, from a transport that answers
    every allowed URL with a PNG."""
    image = png()
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, content=image, headers={"Content-Type": "image/png"}))
    monkeypatch.setattr(completion, "download_result", lambda url, policy: (
        result_download.download_result(url, policy, transport=transport)))
    return FakeStack()

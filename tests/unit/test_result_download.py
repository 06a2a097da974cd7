"""Result URLs are hostile: only allowed https hosts, no cross-host redirect, a
size cap, and an image decoded before it is stored."""

import io

import httpx
import pytest
from PIL import Image
from tryon.adapters.result_download import (
    MAX_RESULT_BYTES,
    InvalidResult,
    ResultDownloadError,
    ResultPolicy,
    download_result,
)

POLICY = ResultPolicy(https_hosts=("*.aliyuncs.com",))
URL = "https://dashscope-result-sz.oss-cn-shenzhen.aliyuncs.com/x.png?Expires=1&Signature=s"


def png(size=(64, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def serving(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def test_an_image_from_an_allowed_host_is_decoded_and_typed():
    image = download_result(URL, POLICY, serving(lambda r: httpx.Response(200, content=png())))
    assert (image.content_type, image.extension, image.width, image.height) == (
        "image/png", "png", 64, 96)


@pytest.mark.parametrize("url", [
    "http://dashscope-result-sz.oss-cn-shenzhen.aliyuncs.com/x.png",  # plain http
    "https://evil.example/x.png",
    "https://aliyuncs.com.evil.example/x.png",
    "file:///etc/passwd",
    "https://169.254.169.254/latest/meta-data/",
])
def test_other_hosts_and_schemes_are_refused_before_any_request(url):
    def never(request):
        raise AssertionError("no request may be made")

    with pytest.raises(InvalidResult, match="not an allowed result host") as err:
        download_result(url, POLICY, serving(never))
    assert "Signature" not in str(err.value)


def test_the_local_stack_may_allow_its_loopback_provider_over_http():
    local = ResultPolicy(https_hosts=("*.aliyuncs.com",), http_hosts=("127.0.0.1",))
    image = download_result("http://127.0.0.1:8080/results/x.png", local,
                            serving(lambda r: httpx.Response(200, content=png())))
    assert image.extension == "png"


def test_a_redirect_is_followed_on_the_same_host_only():
    def answer(request):
        if request.url.path == "/x.png":
            return httpx.Response(302, headers={"location": "/y.png"})
        if request.url.path == "/y.png":
            return httpx.Response(302, headers={"location": "https://evil.example/z.png"})
        raise AssertionError(request.url)

    with pytest.raises(InvalidResult, match="redirects to another host"):
        download_result(URL, POLICY, serving(answer))


def test_an_oversized_result_is_refused_declared_or_streamed():
    big = b"\xff\xd8\xff\xe0" + bytes(MAX_RESULT_BYTES)
    with pytest.raises(InvalidResult, match="bytes"):
        download_result(URL, POLICY, serving(lambda r: httpx.Response(200, content=big)))

    def streamed(request):  # no Content-Length
        return httpx.Response(200, content=iter([big[i:i + 1 << 20]
                                                 for i in range(0, len(big), 1 << 20)]))

    with pytest.raises(InvalidResult, match="refused unread"):
        download_result(URL, POLICY, serving(streamed))


@pytest.mark.parametrize("body", [
    b"<html>denied</html>",
    b"\xff\xd8\xff\xe0" + bytes(5000),  # a JPEG signature and nothing behind it
    png((400, 400))[:-40],  # truncated (its end is cut)
])
def test_what_does_not_decode_is_not_a_result(body):
    with pytest.raises(InvalidResult, match="not a decodable"):
        download_result(URL, POLICY, serving(lambda r: httpx.Response(200, content=body)))


def test_http_errors_and_network_failures_are_worth_a_retry():
    with pytest.raises(ResultDownloadError, match="HTTP 503"):
        download_result(URL, POLICY, serving(lambda r: httpx.Response(503)))

    def broken(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ResultDownloadError, match="ConnectError") as err:
        download_result(URL, POLICY, serving(broken))
    assert "Signature" not in str(err.value)

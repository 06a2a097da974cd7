"""Fetching a result image from the provider's signed URL, treated as hostile:
only https from the provider's result hosts, no redirect to another host, a
size cap and an overall deadline, and the bytes decoded as an image before
anything is stored. The URL's query string is a credential: errors name the
host and the rule, never the URL."""

from __future__ import annotations

import fnmatch
import io
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

MAX_RESULT_BYTES = 20 * 1000 * 1000
DOWNLOAD_DEADLINE_SECONDS = 60.0
MAX_REDIRECTS = 3
# What the providers return: JPEG (try-on) and PNG (Qwen); WEBP for safety.
RESULT_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"),
                  "WEBP": ("image/webp", "webp")}
MAX_RESULT_SIDE = 8192
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)


class InvalidResult(ValueError):
    """The provider's result URL or what it serves is refused: retrying will not help.
    (The class name is the job's error code.)"""


class ResultDownloadError(Exception):
    """The result could not be fetched (network, HTTP error): worth retrying."""


@dataclass(frozen=True)
class ResultImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True)
class ResultPolicy:
    """Where results may come from: host patterns served over https, and hosts
    allowed over plain http (only the local stack's own loopback provider)."""

    https_hosts: tuple[str, ...]
    http_hosts: tuple[str, ...] = ()

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        patterns = {"https": self.https_hosts, "http": self.http_hosts}.get(parts.scheme, ())
        if not any(fnmatch.fnmatchcase(host, p.lower()) for p in patterns):
            raise InvalidResult(f"the result URL ({parts.scheme}://{host or '?'}) is not an "
                                "allowed result host; allowed: https "
                                f"{', '.join(self.https_hosts) or 'none'} (ResultUrlHosts)")


def download_result(url: str, policy: ResultPolicy,
                    transport: httpx.BaseTransport | None = None) -> ResultImage:
    """The checked result image, or InvalidResult / ResultDownloadError."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_SECONDS
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=transport,
                          trust_env=False) as client:
            data = _fetch(client, url, policy, deadline)
    except httpx.HTTPError as exc:
        raise ResultDownloadError(f"result download failed: {type(exc).__name__}") from None
    return _decoded(data)


def _fetch(client: httpx.Client, url: str, policy: ResultPolicy, deadline: float) -> bytes:
    policy.check(url)
    first_host = urlsplit(url).hostname
    for _ in range(MAX_REDIRECTS + 1):
        with client.stream("GET", url) as response:
            if response.is_redirect:
                target = urljoin(url, response.headers.get("location", ""))
                if urlsplit(target).hostname != first_host:
                    raise InvalidResult("the result URL redirects to another host "
                                        f"({urlsplit(target).hostname}); refused")
                policy.check(target)
                url = target
                continue
            if response.is_error:
                raise ResultDownloadError(
                    f"result download answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_RESULT_BYTES:
                raise InvalidResult(f"the result is {int(declared)} bytes; at most "
                                    f"{MAX_RESULT_BYTES} are taken")
            data = bytearray()
            for chunk in response.iter_bytes(chunk_size=256 * 1024):
                data += chunk
                if len(data) > MAX_RESULT_BYTES:
                    raise InvalidResult(f"the result is over {MAX_RESULT_BYTES} bytes; "
                                        "refused unread")
                if time.monotonic() > deadline:
                    raise ResultDownloadError("result download took longer than "
                                              f"{DOWNLOAD_DEADLINE_SECONDS:.0f} s")
            return bytes(data)
    raise InvalidResult(f"the result URL redirects more than {MAX_REDIRECTS} times")


def _decoded(data: bytes) -> ResultImage:
    """Decode the image fully (bounded in size first), so what is stored is one."""
    from PIL import Image  # here: of the functions that import this module, only finalize decodes

    try:
        with Image.open(io.BytesIO(data), formats=list(RESULT_FORMATS)) as image:
            width, height = image.size
            if not (0 < width <= MAX_RESULT_SIDE and 0 < height <= MAX_RESULT_SIDE):
                raise InvalidResult(f"the result is {width}x{height} px; at most "
                                    f"{MAX_RESULT_SIDE} px a side is taken")
            image.load()
            fmt = image.format or ""
    except InvalidResult:
        raise
    except Exception as exc:  # unidentified, truncated, damaged
        raise InvalidResult(f"the provider's result is not a decodable JPEG, PNG or WEBP "
                            f"image ({type(exc).__name__}; starts with {data[:8]!r})") from None
    content_type, extension = RESULT_FORMATS[fmt]
    return ResultImage(data, content_type, extension, width, height)

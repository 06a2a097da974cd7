"""The provider's file host, which answers like OSS (XML errors, no DashScope
key): the upload endpoint getPolicy points at, and the result images that
`image_url` and the other result URLs point at."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..results import Access
from ..state import ResultFault
from ..uploads import FORM_OVERHEAD, UploadRejected, parse_form
from .protocol import emulator_state, root_url, route

# Where getPolicy's `upload_host` points: the emulator's stand-in for the OSS bucket.
OSS_UPLOAD_PATH = "/oss"


async def upload_file(request: Request) -> Response:
    """The upload host: an OSS PostObject form, `file` last (no DashScope key)."""
    state = emulator_state(request)
    body = await _read_capped(request, state.uploads.max_file_bytes + FORM_OVERHEAD)
    try:
        if body is None:
            raise UploadRejected(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size "
                f"({state.uploads.max_file_mb} MB).",
            )
        content_type = request.headers.get("content-type", "")
        # The MIME parser is pure Python: keep a multi-megabyte body off the loop.
        form = await asyncio.to_thread(parse_form, content_type, body)
        key = state.uploads.accept(form)
    except UploadRejected as rejected:
        return _oss_error(request, rejected.status, rejected.code, rejected.message)
    state.counters["uploads"] += 1
    assert form.file is not None  # accept() refuses a form without one
    request_id = _oss_request_id()
    headers = {
        # OSS's ETag of a simple upload: the MD5 of the content.
        "ETag": f'"{hashlib.md5(form.file, usedforsecurity=False).hexdigest().upper()}"',
        "x-oss-request-id": request_id,
    }
    # OSS answers 204 unless the form asks for 200 (empty) or 201 (an XML receipt).
    status = form.fields.get("success_action_status")
    if status == "200":
        return Response(b"", status_code=200, headers=headers)
    if status == "201":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>\n'
            f"  <Location>{escape(root_url(request) + OSS_UPLOAD_PATH + '/' + key)}</Location>\n"
            f"  <Key>{escape(key)}</Key>\n  <ETag>{headers['ETag']}</ETag>\n</PostResponse>\n"
        )
        return Response(xml, status_code=201, media_type="application/xml", headers=headers)
    return Response(status_code=204, headers=headers)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes."""
    body = bytearray()
    too_long = False
    async for chunk in request.stream():
        # Keep draining past the limit: answering mid-upload breaks many clients.
        if too_long:
            continue
        body += chunk
        if len(body) > limit:
            too_long = True
            body.clear()
    return None if too_long else bytes(body)


_OSS_ERRORS = {
    Access.MISSING_SIGNATURE: (
        403, "AccessDenied", "You have no right to access this object because of bucket acl."
    ),
    Access.BAD_SIGNATURE: (
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    Access.EXPIRED: (403, "AccessDenied", "Request has expired."),
    Access.NOT_FOUND: (404, "NoSuchKey", "The specified key does not exist."),
}


async def get_result(request: Request) -> Response:
    state = emulator_state(request)
    access, stored = state.results.open(
        request.path_params["name"],
        request.query_params.get("Expires"),
        request.query_params.get("Signature"),
        state.clock.now(),
    )
    if access is Access.OK and stored is not None:
        fault = state.take_result_fault()
        if fault is not None:
            return _faulty_result(fault)
        return Response(stored.data, media_type=stored.media_type)
    status, code, message = _OSS_ERRORS[access]
    return _oss_error(request, status, code, message)


def _faulty_result(fault: ResultFault) -> Response:
    """A result served as a hostile or broken host might (test knob)."""
    if fault.mode == "redirect":
        return Response(status_code=302, headers={"location": "http://example.invalid/r.jpg"})
    if fault.mode == "not_image":
        return Response(b"<html>not an image</html>", media_type="image/jpeg")

    async def filler() -> AsyncIterator[bytes]:
        yield b"\xff\xd8\xff\xe0"
        chunk = bytes(1024 * 1024)
        for start in range(0, fault.size, len(chunk)):
            yield chunk[: min(len(chunk), fault.size - start)]

    # No Content-Length: the client must count for itself.
    return StreamingResponse(filler(), media_type="image/jpeg")


def _oss_request_id() -> str:
    return uuid.uuid4().hex.upper()[:24]


def _oss_error(request: Request, status: int, code: str, message: str) -> Response:
    """The shape of an OSS error: what the provider's result URLs and upload host return."""
    request_id = _oss_request_id()
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        f"  <HostId>{escape(request.url.netloc)}</HostId>\n</Error>\n"
    )
    return Response(
        xml, status_code=status, media_type="application/xml",
        headers={"x-oss-request-id": request_id},
    )


ROUTES = [
    *route(OSS_UPLOAD_PATH, upload_file, ["POST"]),
    *route("/results/{name}", get_result, ["GET"]),
]

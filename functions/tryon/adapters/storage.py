"""S3 adapter: read uploads, hand inputs to the provider, store results."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
from botocore.exceptions import ClientError

# Magic bytes of the formats the provider may return, with their content type.
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"RIFF", "image/webp", "webp"),
    (b"BM", "image/bmp", "bmp"),
)
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)


class NotAnImageError(ValueError):
    """The provider's result is not an image: retrying will not fix it."""


class ResultDownloadError(Exception):
    """The result could not be fetched (network, HTTP error): worth retrying."""


def sniff_image(head: bytes) -> tuple[str, str]:
    """(content type, extension) from the first bytes, or NotAnImageError."""
    for magic, content_type, extension in _IMAGE_SIGNATURES:
        if head.startswith(magic) and (magic != b"RIFF" or head[8:12] == b"WEBP"):
            return content_type, extension
    raise NotAnImageError(f"the provider's result is not an image (starts with {head[:8]!r})")


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks, for upload_fileobj."""

    def __init__(self, first: bytes, rest: Iterator[bytes]) -> None:
        self._buffer = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._rest, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class ObjectStorage:
    def __init__(self, s3: Any = None) -> None:
        self._s3 = s3 or boto3.client("s3")

    def read(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        extra = {"VersionId": version_id} if version_id else {}
        return self._s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()

    def describe(self, bucket: str, key: str) -> dict[str, Any] | None:
        """{"size", "etag"} of an object, or None when there is no such object."""
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return {"size": head["ContentLength"], "etag": head["ETag"].strip('"')}

    def list_keys(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """[{"key", "size"}] of every object under prefix, in key order."""
        found = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix):
            found += [{"key": o["Key"], "size": o["Size"]} for o in page.get("Contents", [])]
        return found

    def write(self, bucket: str, key: str, data: bytes, content_type: str,
              metadata: dict[str, str] | None = None) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type,
                            Metadata=metadata or {})

    def presign_get(self, bucket: str, key: str, expires_in: int) -> str:
        # A presigned URL dies with the signing credentials: in Lambda that is the
        # role session, so `expires_in` beyond the session's life does not help.
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )

    def copy_from_url(
        self, url: str, bucket: str, key_without_extension: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """Stream a URL into S3 without holding it in memory; returns its location."""
        try:
            return self._copy_from_url(url, bucket, key_without_extension, metadata)
        except httpx.HTTPError as exc:
            # The signed URL's query string is a credential: name only the failure.
            raise ResultDownloadError(f"result download failed: {type(exc).__name__}") from None

    def _copy_from_url(
        self, url: str, bucket: str, key_without_extension: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as resp:
            if resp.is_error:
                raise ResultDownloadError(f"result download answered HTTP {resp.status_code}")
            chunks = resp.iter_bytes(chunk_size=256 * 1024)
            first = b""
            for chunk in chunks:  # the first non-empty chunk decides the type
                first += chunk
                if len(first) >= 16:
                    break
            content_type, extension = sniff_image(first)
            key = f"{key_without_extension}.{extension}"
            reader = _ChunkReader(first, chunks)
            self._s3.upload_fileobj(
                io.BufferedReader(reader, buffer_size=1024 * 1024),
                bucket,
                key,
                ExtraArgs={"ContentType": content_type, "Metadata": metadata},
            )
        size = self._s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        return {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}", "bytes": size,
                "content_type": content_type}

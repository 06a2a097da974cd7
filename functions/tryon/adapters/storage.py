"""S3 adapter: read uploads, hand inputs to the provider, store results, tag uploads
and erase every version of an object."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:  # only finalize downloads (and decodes) results
    from tryon.adapters.result_download import ResultImage


class ResultKeyTaken(Exception):
    """A result key already holds another job's object (which is kept)."""


class ErasureFailed(Exception):
    """S3 kept a version it was asked to delete (the caller may try again)."""


def tagging_document(tags: dict[str, str]) -> str:
    """The XML Tagging document an upload form's `tagging` field carries."""
    return "<Tagging><TagSet>" + "".join(
        f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>"
        for k, v in tags.items()) + "</TagSet></Tagging>"


class ObjectStorage:
    def __init__(self, s3: Any = None) -> None:
        self._s3 = s3 or boto3.client("s3")

    def read(self, bucket: str, key: str, version_id: str | None = None,
             max_bytes: int | None = None) -> bytes:
        """The object's bytes; with `max_bytes`, at most max_bytes + 1 of them (enough
        to tell that it is too long without reading it all)."""
        extra: dict[str, str] = {"VersionId": version_id} if version_id else {}
        if max_bytes is not None:
            extra["Range"] = f"bytes=0-{max_bytes}"
        try:
            return self._s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidRange":  # an empty object
                return b""
            raise

    def open_stream(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        """The object's body as a stream, read as it comes (a large file is never held
        whole); the caller closes it."""
        extra: dict[str, str] = {"VersionId": version_id} if version_id else {}
        return self._s3.get_object(Bucket=bucket, Key=key, **extra)["Body"]

    def describe(self, bucket: str, key: str, version_id: str | None = None
                 ) -> dict[str, Any] | None:
        """{"size", "etag", "version_id", "metadata"} of an object (of that version, if
        given; else the current one), or None when there is no such object."""
        extra = {"VersionId": version_id} if version_id else {}
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("400", "404", "NoSuchKey", "NotFound",
                                                 "NoSuchVersion"):
                return None
            raise
        return {"size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                "version_id": head.get("VersionId"), "metadata": head.get("Metadata") or {}}

    def list_keys(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """[{"key", "size"}] of every object under prefix, in key order."""
        found = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix):
            found += [{"key": o["Key"], "size": o["Size"]} for o in page.get("Contents", [])]
        return found

    def write(self, bucket: str, key: str, data: bytes, content_type: str,
              metadata: dict[str, str] | None = None, *, if_absent: bool = False
              ) -> dict[str, str | None] | None:
        """Write the object; returns the {"version_id", "etag"} it was written as.
        With `if_absent`, None (and nothing written) when the key holds an object."""
        try:
            answer = self._s3.put_object(Bucket=bucket, Key=key, Body=data,
                                         ContentType=content_type, Metadata=metadata or {},
                                         **({"IfNoneMatch": "*"} if if_absent else {}))
        except ClientError as exc:
            if if_absent and exc.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                return None
            raise
        return {"version_id": answer.get("VersionId"), "etag": answer["ETag"].strip('"')}

    def presign_post(self, bucket: str, key: str, content_type: str, max_bytes: int,
                     expires_in: int, tags: dict[str, str] | None = None) -> dict[str, Any]:
        """An upload form ({"url", "fields"}) for exactly this key: S3 itself refuses
        another content type, an empty file or one over max_bytes; with `tags`, the
        object is stored with them (and the form refused without them)."""
        fields = {"Content-Type": content_type}
        conditions: list[Any] = [{"Content-Type": content_type},
                                 ["content-length-range", 1, max_bytes]]
        if tags:
            fields["tagging"] = tagging_document(tags)
            conditions.append({"tagging": fields["tagging"]})
        return self._s3.generate_presigned_post(Bucket=bucket, Key=key, Fields=fields,
                                                Conditions=conditions, ExpiresIn=expires_in)

    def tag(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        """Replace the current version's tags (what lifecycle rules filter on)."""
        self._s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={
            "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})

    def versions(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """[{"key", "version_id", "delete_marker"}] of every version and delete marker
        under prefix (a versioned bucket keeps both until deleted by version)."""
        found = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=bucket,
                                                                            Prefix=prefix):
            for kind, marker in (("Versions", False), ("DeleteMarkers", True)):
                found += [{"key": v["Key"], "version_id": v["VersionId"],
                           "delete_marker": marker} for v in page.get(kind, [])]
        return found

    def erase(self, bucket: str, prefix: str, *, exact: bool = True) -> dict[str, int]:
        """Delete every version and delete marker of the key `prefix` (with `exact=False`:
        of every key under it), for good. Returns {key: versions deleted}."""
        doomed = [v for v in self.versions(bucket, prefix) if not exact or v["key"] == prefix]
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes 1000 at a time
            chunk = doomed[start:start + 1000]
            answer = self._s3.delete_objects(Bucket=bucket, Delete={"Quiet": True, "Objects": [
                {"Key": v["key"], "VersionId": v["version_id"]} for v in chunk]})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise ErasureFailed(f"s3://{bucket}/{first['Key']} (version "
                                    f"{first.get('VersionId')}): {first.get('Code')} "
                                    f"{first.get('Message')}")
        counts: dict[str, int] = {}
        for version in doomed:
            counts[version["key"]] = counts.get(version["key"], 0) + 1
        return counts

    def presign_get(self, bucket: str, key: str, expires_in: int,
                    version_id: str | None = None) -> str:
        """A GET URL (for the provider, or a caller's browser), of exactly that version
        when one is given."""
        # A presigned URL dies with the signing credentials: in Lambda that is the
        # role session, so `expires_in` beyond the session's life does not help.
        params = {"Bucket": bucket, "Key": key,
                  **({"VersionId": version_id} if version_id else {})}
        return self._s3.generate_presigned_url("get_object", Params=params,
                                               ExpiresIn=expires_in)

    def store_result(self, bucket: str, key_without_extension: str, image: ResultImage,
                     metadata: dict[str, str]) -> dict[str, Any]:
        """Store a checked result image under its real extension, never over another
        object; returns its location."""
        key = f"{key_without_extension}.{image.extension}"
        self.write_new(bucket, key, image.data, image.content_type, metadata)
        return {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}",
                "bytes": len(image.data), "content_type": image.content_type}

    def write_new(self, bucket: str, key: str, data: bytes, content_type: str,
                  metadata: dict[str, str]) -> None:
        """Write only if the key is free (S3 If-None-Match). A key that holds this
        same job's object already (a retried step) is fine; anyone else's is not
        touched."""
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type,
                                Metadata=metadata, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
            owner = self._s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("job-id")
            if owner != metadata.get("job-id"):
                raise ResultKeyTaken(f"s3://{bucket}/{key} holds another job's result "
                                     f"({owner}); not overwritten") from None

"""In-memory S3, SNS/EventBridge, Step Functions and SQS, as the stages use them
(tryon.ports). Each can be told to fail its next calls, the way a real service
call fails: with an exception, after nothing was done."""

from __future__ import annotations

import copy
import io
import json
from typing import IO, Any

from tryon.adapters.storage import ResultKeyTaken, tagging_document


class Failing:
    """`fail_next(n)`: the next n calls raise, as a throttled or unreachable service."""

    failures = 0

    def fail_next(self, count: int = 1) -> None:
        self.failures = count

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError(f"{type(self).__name__}: unreachable (a test said so)")


class FakeStorage(Failing):
    def __init__(self) -> None:
        # (bucket, key) -> its versions, oldest first
        self.objects: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.forms: list[dict[str, Any]] = []  # upload forms issued: key, max_bytes, tags
        self.streamed: list[str] = []  # keys opened as streams

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """A test's upload; returns its version id."""
        return self.write(bucket, key, data, content_type)["version_id"]

    def _version(self, bucket: str, key: str, version_id: str | None) -> dict[str, Any] | None:
        versions = self.objects.get((bucket, key), [])
        if version_id is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v["version_id"] == version_id), None)

    def read(self, bucket: str, key: str, version_id: str | None = None,
             max_bytes: int | None = None) -> bytes:
        self._maybe_fail()
        found = self._version(bucket, key, version_id)
        if found is None:
            raise KeyError(f"NoSuchKey: s3://{bucket}/{key}")
        return found["data"] if max_bytes is None else found["data"][:max_bytes + 1]

    def open_stream(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        self._maybe_fail()
        found = self._version(bucket, key, version_id)
        if found is None:
            raise KeyError(f"NoSuchKey: s3://{bucket}/{key}")
        self.streamed.append(key)
        return io.BytesIO(found["data"])

    def describe(self, bucket: str, key: str, version_id: str | None = None
                 ) -> dict[str, Any] | None:
        found = self._version(bucket, key, version_id)
        return None if found is None else {"size": len(found["data"]), "etag": found["etag"],
                                           "version_id": found["version_id"],
                                           "metadata": dict(found.get("metadata") or {})}

    def list_keys(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        return [{"key": key, "size": len(versions[-1]["data"])}
                for (b, key), versions in sorted(self.objects.items())
                if b == bucket and key.startswith(prefix)]

    def write(self, bucket: str, key: str, data: bytes, content_type: str,
              metadata: dict[str, str] | None = None, *, if_absent: bool = False
              ) -> dict[str, Any] | None:
        self._maybe_fail()
        versions = self.objects.setdefault((bucket, key), [])
        if if_absent and versions:
            return None
        version = {"data": data, "content_type": content_type, "metadata": metadata or {},
                   "version_id": f"v{sum(map(len, self.objects.values()))}",
                   "etag": f"etag-{len(data)}-{hash(data) & 0xffff:x}"}
        versions.append(version)
        return {"version_id": version["version_id"], "etag": version["etag"]}

    def presign_post(self, bucket: str, key: str, content_type: str, max_bytes: int,
                     expires_in: int, tags: dict[str, str] | None = None) -> dict[str, Any]:
        self.forms.append({"key": key, "max_bytes": max_bytes, "tags": dict(tags or {})})
        return {"url": f"https://{bucket}.s3.fake/", "fields": {
            "key": key, "Content-Type": content_type,
            **({"tagging": tagging_document(tags)} if tags else {})}}

    def post(self, bucket: str, form: dict[str, Any], data: bytes) -> str:
        """A caller's upload through a form: refused (ValueError, as S3's 400) past its
        size range; stored with the form's tags. Returns its version id."""
        key = form["fields"]["key"]
        issued = next(f for f in reversed(self.forms) if f["key"] == key)
        if not 1 <= len(data) <= issued["max_bytes"]:
            raise ValueError(f"EntityTooLarge/TooSmall: {len(data)} bytes for {key}")
        version = self.put(bucket, key, data, form["fields"]["Content-Type"])
        self._version(bucket, key, None)["tags"] = dict(issued["tags"])
        return version

    def tag(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        self._maybe_fail()
        current = self._version(bucket, key, None)
        if current is None:
            raise KeyError(f"NoSuchKey: s3://{bucket}/{key}")
        current["tags"] = dict(tags)

    def tags(self, bucket: str, key: str) -> dict[str, str]:
        return dict((self._version(bucket, key, None) or {}).get("tags", {}))

    def versions(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        return [{"key": key, "version_id": v["version_id"], "delete_marker": False}
                for (b, key), versions in sorted(self.objects.items())
                if b == bucket and key.startswith(prefix) for v in versions]

    def erase(self, bucket: str, prefix: str, *, exact: bool = True) -> dict[str, int]:
        self._maybe_fail()
        counts = {}
        for (b, key) in list(self.objects):
            if b == bucket and (key == prefix if exact else key.startswith(prefix)):
                counts[key] = len(self.objects.pop((b, key)))
        return counts

    def presign_get(self, bucket: str, key: str, expires_in: int,
                    version_id: str | None = None) -> str:
        return f"https://{bucket}.s3.fake/{key}?versionId={version_id}&expires={expires_in}"

    def store_result(self, bucket: str, key_without_extension: str, image: Any,
                     metadata: dict[str, str]) -> dict[str, Any]:
        key = f"{key_without_extension}.{image.extension}"
        self.write_new(bucket, key, image.data, image.content_type, metadata)
        return {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}",
                "bytes": len(image.data), "content_type": image.content_type}

    def write_new(self, bucket: str, key: str, data: bytes, content_type: str,
                  metadata: dict[str, str]) -> None:
        held = self._version(bucket, key, None)
        if held is not None:
            if held["metadata"].get("job-id") != metadata.get("job-id"):
                raise ResultKeyTaken(f"s3://{bucket}/{key} holds another job's result")
            return
        self.write(bucket, key, data, content_type, metadata)


class FakeNotifier(Failing):
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], dict[str, str]]] = []

    def publish(self, body: dict[str, Any], attributes: dict[str, str]) -> str:
        self._maybe_fail()
        self.sent.append((json.loads(json.dumps(body)), dict(attributes)))
        return f"message-{len(self.sent)}"

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [body for body, _ in self.sent if event is None or body["event"] == event]


class FakeWorkflow(Failing):
    """Executions by name: a second start of a name is a no-op, as in Step Functions."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self._maybe_fail()
        self.started.setdefault(name, copy.deepcopy(payload))
        return f"arn:aws:states:us-east-1:000000000000:execution:tryon-job:{name}"


class FakeExpansions(Failing):
    """Batch expansions by name (the batch id): a second start of a name is a no-op,
    as in Step Functions (ExecutionAlreadyExists). `starts` counts every call."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.starts = 0

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self._maybe_fail()
        self.starts += 1
        self.started.setdefault(name, copy.deepcopy(payload))
        return f"arn:aws:states:us-east-1:000000000000:execution:tryon-batches:{name}"


class FakeMessages(Failing):
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, job_ids: list[str]) -> None:
        self._maybe_fail()
        self.sent += job_ids

    def take(self) -> list[str]:
        """The messages sent so far, taken off the queue."""
        taken, self.sent = self.sent, []
        return taken

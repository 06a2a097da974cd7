"""Client for Alibaba Cloud Model Studio (DashScope) OutfitAnyone try-on tasks.

The contract is `shared/CONTRACT.md`. Everything the pipeline knows about the
provider lives here, so another model can be added behind the same interface.
The API key is held privately and never rendered into reprs, errors or logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

SUBMIT_PATH = "/services/aigc/image2image/image-synthesis"
PARSING_PATH = "/services/vision/image-process/process"
PARSING_MODEL = "aitryon-parsing-v1"
TRYON_MODELS = ("aitryon-plus", "aitryon")
# Header that lets a model call read `oss://` keys from the provider's temporary upload.
OSS_RESOLVE_HEADER = {"X-DashScope-OssResourceResolve": "enable"}
RESOLUTIONS = (-1, 1024, 1280)

# Task statuses, as the provider spells them.
PENDING_STATUSES = frozenset({"PENDING", "PRE-PROCESSING", "RUNNING", "POST-PROCESSING"})
FAILED_STATUSES = frozenset({"FAILED", "CANCELED", "UNKNOWN"})
TASK_STATUSES = PENDING_STATUSES | FAILED_STATUSES | {"SUCCEEDED"}

# The provider runs in China (Beijing) and reports wall-clock times without a
# zone; we read them as China Standard Time (not confirmed by the provider).
PROVIDER_TZ = timezone(timedelta(hours=8))
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)


@dataclass(frozen=True)
class TryOnRequest:
    model: str
    person_image_url: str
    top_garment_url: str | None = None
    bottom_garment_url: str | None = None
    resolution: int = -1
    restore_face: bool = True

    def body(self) -> dict[str, Any]:
        garments = {
            "top_garment_url": self.top_garment_url,
            "bottom_garment_url": self.bottom_garment_url,
        }
        return {
            "model": self.model,
            "input": {
                "person_image_url": self.person_image_url,
                **{k: v for k, v in garments.items() if v},
            },
            "parameters": {"resolution": self.resolution, "restore_face": self.restore_face},
        }


@dataclass(frozen=True)
class ParsedGarment:
    """One garment found on a person image by the parsing model (URLs live 24 h)."""

    crop_url: str
    parsing_url: str | None
    bbox: list[int] | None


@dataclass(frozen=True)
class SubmittedTask:
    task_id: str
    status: str
    request_id: str


@dataclass(frozen=True)
class TaskState:
    task_id: str
    status: str
    request_id: str
    submit_time: float | None = None
    scheduled_time: float | None = None
    end_time: float | None = None
    image_url: str | None = None
    code: str | None = None
    message: str | None = None
    image_count: int | None = None

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_STATUSES


class ProviderError(Exception):
    """A provider call that did not succeed: HTTP status, provider code, message, request id.

    `outcome_known` is False when the request may have reached the provider but
    no answer came back (e.g. a read timeout): a submit in that state may have
    created a paid task, so it must never be blindly repeated.
    """

    retryable = False

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
        outcome_known: bool = True,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.outcome_known = outcome_known
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no response"
        rid = f", request_id {self.request_id}" if self.request_id else ""
        return f"{self.code}: {self.message} ({where}{rid})"

    def as_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class RetryableProviderError(ProviderError):
    """Throttling, server errors, timeouts: the same call may succeed later."""

    retryable = True


class PermanentProviderError(ProviderError):
    """Bad input, bad key, no quota: repeating the call will not help."""


def provider_error(status: int | None, code: str, message: str, **kwargs: Any) -> ProviderError:
    cls = RetryableProviderError if is_retryable(status, code) else PermanentProviderError
    return cls(status, code, message, **kwargs)


def is_retryable(status: int | None, code: str) -> bool:
    """429 (except an exhausted quota) and 5xx may succeed later; the rest will not."""
    if status == 429:
        return code != "Throttling.AllocationQuota"
    return status is not None and status >= 500


def parse_provider_time(value: str | None) -> float | None:
    """'2025-06-30 14:37:53.838' (provider time zone) -> epoch seconds."""
    if not value:
        return None
    try:
        parsed = datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    return parsed.replace(tzinfo=PROVIDER_TZ).timestamp()


def _list_time(epoch: float) -> str:
    """Epoch seconds -> the task list's '20230420000000' (provider time zone)."""
    return datetime.fromtimestamp(epoch, PROVIDER_TZ).strftime("%Y%m%d%H%M%S")


class DashScopeClient:
    """Submit, query and cancel try-on tasks over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:  # never show the key
        return f"DashScopeClient(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def submit(self, request: TryOnRequest, *, oss_resolve: bool = False) -> SubmittedTask:
        """Create a try-on task; `oss_resolve` when its URLs are `oss://` upload keys."""
        if request.model not in TRYON_MODELS:
            raise ValueError(f"unknown try-on model {request.model!r}; use one of {TRYON_MODELS}")
        data = self._call(
            "POST",
            SUBMIT_PATH,
            json=request.body(),
            headers={"X-DashScope-Async": "enable", **(OSS_RESOLVE_HEADER if oss_resolve else {})},
            sends_work=True,
        )
        output = data.get("output") or {}
        if not output.get("task_id"):
            raise self._malformed(data, "submit answer carries no output.task_id")
        return SubmittedTask(
            task_id=output["task_id"],
            status=output.get("task_status", "PENDING"),
            request_id=data.get("request_id", ""),
        )

    def query(self, task_id: str) -> TaskState:
        data = self._call("GET", f"/tasks/{task_id}")
        return self._task_state(data.get("output") or {}, data, task_id)

    def recent_tasks(self, model: str, since: float, until: float,
                     max_pages: int = 10) -> list[TaskState]:
        """The account's tasks of `model` submitted between two epoch times (the
        list's answer shape is not confirmed by the provider: `data` is read as
        a list of query outputs)."""
        tasks: list[TaskState] = []
        for page in range(1, max_pages + 1):
            data = self._call("GET", "/tasks", params={
                "model_name": model, "page_no": page, "page_size": 100,
                "start_time": _list_time(since), "end_time": _list_time(until)})
            items = data.get("data")
            if not isinstance(items, list):
                raise self._malformed(data, "task list answer carries no data array")
            tasks += [self._task_state(item, data, item.get("task_id", "")) for item in items
                      if isinstance(item, dict) and item.get("task_id")]
            if len(items) < 100:
                break
        return tasks

    def _task_state(self, output: dict, data: dict, task_id: str) -> TaskState:
        status = output.get("task_status")
        if status not in TASK_STATUSES:
            raise self._malformed(data, f"unexpected task_status {status!r}")
        return TaskState(
            task_id=output.get("task_id", task_id),
            status=status,
            request_id=data.get("request_id", ""),
            submit_time=parse_provider_time(output.get("submit_time")),
            scheduled_time=parse_provider_time(output.get("scheduled_time")),
            end_time=parse_provider_time(output.get("end_time")),
            image_url=output.get("image_url"),
            code=output.get("code"),
            message=output.get("message"),
            image_count=(data.get("usage") or {}).get("image_count"),
        )

    def parse_garment(
        self, image_url: str, clothes_type: str, *, oss_resolve: bool = False
    ) -> ParsedGarment | None:
        """Segment one garment ("upper", "lower" or "dress") on a person image,
        synchronously; None when the person wears no such garment."""
        data = self._call(
            "POST",
            PARSING_PATH,
            json={"model": PARSING_MODEL, "input": {"image_url": image_url},
                  "parameters": {"clothes_type": [clothes_type]}},
            headers=OSS_RESOLVE_HEADER if oss_resolve else {},
        )
        output = data.get("output") or {}
        crops = output.get("crop_img_url")
        if not isinstance(crops, list) or len(crops) != 1:
            raise self._malformed(data, "parsing answer carries no crop_img_url array")
        if crops[0] is None:
            return None
        return ParsedGarment(
            crop_url=crops[0],
            parsing_url=(output.get("parsing_img_url") or [None])[0],
            bbox=(output.get("bbox") or [None])[0],
        )

    def upload(self, model: str, filename: str, data: bytes, content_type: str) -> str:
        """Put a file in the provider's temporary storage (48 h); returns its `oss://` URL."""
        policy = self._call("GET", "/uploads",
                            params={"action": "getPolicy", "model": model}).get("data") or {}
        if not policy.get("upload_host") or not policy.get("upload_dir"):
            raise self._malformed({}, "upload policy answer carries no upload_host/upload_dir")
        key = f"{policy['upload_dir']}/{filename}"
        fields = {
            "OSSAccessKeyId": policy.get("oss_access_key_id", ""),
            "Signature": policy.get("signature", ""),
            "policy": policy.get("policy", ""),
            "key": key,
            "x-oss-object-acl": policy.get("x_oss_object_acl", "private"),
            "x-oss-forbid-overwrite": policy.get("x_oss_forbid_overwrite", "true"),
            "success_action_status": "200",
        }
        try:
            # The upload host is storage, not the API: no Authorization header goes there.
            response = httpx.post(policy["upload_host"], data=fields,
                                  files={"file": (filename, data, content_type)},
                                  timeout=DEFAULT_TIMEOUT)
        except httpx.TransportError as exc:
            raise RetryableProviderError(None, "UploadFailed",
                                         f"temporary upload failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise provider_error(response.status_code, "UploadFailed",
                                 f"temporary upload answered HTTP {response.status_code}")
        return f"oss://{key}"

    def cancel(self, task_id: str) -> str:
        """Cancel a PENDING task; returns the request id."""
        return self._call("POST", f"/tasks/{task_id}/cancel").get("request_id", "")

    def _call(self, method: str, path: str, *, sends_work: bool = False, **kwargs: Any) -> dict:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            # A connect timeout never reached the provider; any later timeout may have.
            unsent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise RetryableProviderError(
                None,
                "RequestTimeout",
                f"{method} {path} timed out ({type(exc).__name__})",
                outcome_known=unsent or not sends_work,
            ) from None
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError)
            raise RetryableProviderError(
                None,
                "ConnectionError",
                f"{method} {path} failed: {type(exc).__name__}",
                outcome_known=unsent or not sends_work,
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.is_success and isinstance(data, dict):
            return data
        if not isinstance(data, dict):
            data = {}
        code = data.get("code") or f"HTTP{response.status_code}"
        raise provider_error(
            response.status_code,
            code,
            data.get("message") or response.reason_phrase,
            request_id=data.get("request_id") or response.headers.get("x-request-id"),
        )

    @staticmethod
    def _malformed(data: dict, why: str) -> ProviderError:
        return PermanentProviderError(
            200, "MalformedResponse", why, request_id=data.get("request_id")
        )

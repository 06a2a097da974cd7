"""The DashScope task protocol: submit with the async header, then query the
task until it ends (OutfitAnyone try-on and the Qwen Image 3.0 family), plus
the task list, cancel, and the synchronous garment parsing of the try-on family.

The contract is `shared/CONTRACT.md`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from tryon.job_record import PROVIDER_PENDING, ProviderStatus
from tryon.providers.http import OSS_RESOLVE_HEADER, DashScopeHttp

PARSING_PATH = "/services/vision/image-process/process"
PARSING_MODEL = "aitryon-parsing-v1"

TASK_STATUSES = frozenset(ProviderStatus)

# The provider runs in China (Beijing) and reports wall-clock times without a
# zone; we read them as China Standard Time (not confirmed by the provider).
PROVIDER_TZ = timezone(timedelta(hours=8))
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class TaskRequest(Protocol):
    model: str
    path: str

    def body(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ParsedGarment:
    """One garment found on a person image by the parsing model (URLs live 24 h)."""

    crop_url: str
    bbox: list[int] | None


@dataclass(frozen=True)
class SubmittedTask:
    task_id: str
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
    width: int | None = None  # of the result, where the answer says (Qwen)
    height: int | None = None

    @property
    def is_pending(self) -> bool:
        return self.status in PROVIDER_PENDING


def parse_provider_time(value: str | None) -> float | None:
    """'2025-06-30 14:37:53.838' (provider time zone) -> epoch seconds."""
    if not value:
        return None
    try:
        parsed = datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    return parsed.replace(tzinfo=PROVIDER_TZ).timestamp()


def _epoch_ms(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value / 1000
    return None


def _list_time(epoch: float) -> str:
    """Epoch seconds -> the task list's '20230420000000' (provider time zone)."""
    return datetime.fromtimestamp(epoch, PROVIDER_TZ).strftime("%Y%m%d%H%M%S")


def result_image(output: dict[str, Any]) -> str | None:
    """The result URL: `output.image_url` (try-on), or the first image of the
    first choice (Qwen Image, sync answers and async tasks alike)."""
    if output.get("image_url"):
        return output["image_url"]
    try:
        for item in output["choices"][0]["message"]["content"]:
            if isinstance(item, dict) and isinstance(item.get("image"), str):
                return item["image"]
    except (KeyError, IndexError, TypeError):
        pass
    return None


def result_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    """`usage` in one shape: Qwen 2.0 says width/height/image_count, the 3.0
    family may say output_width/output_height/output_image_count."""
    usage = usage or {}
    found = {}
    for name in ("width", "height", "image_count"):
        value = usage.get(name, usage.get(f"output_{name}"))
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
    return found


class TaskClient(DashScopeHttp):
    """Submit, query, list and cancel tasks; parse garments (try-on family)."""

    def submit(self, request: TaskRequest, *, oss_resolve: bool = False) -> SubmittedTask:
        """Create a task; `oss_resolve` when its URLs are `oss://` upload keys."""
        data = self._call(
            "POST",
            request.path,
            json=request.body(),
            headers={"X-DashScope-Async": "enable", **(OSS_RESOLVE_HEADER if oss_resolve else {})},
            sends_work=True,
            model=request.model,
        )
        output = data.get("output") or {}
        if not output.get("task_id"):
            raise self._malformed(data, "submit answer carries no output.task_id")
        return SubmittedTask(
            task_id=output["task_id"],
            request_id=data.get("request_id", ""),
        )

    def query(self, task_id: str) -> TaskState:
        data = self._call("GET", f"/tasks/{task_id}")
        return self._task_state(data.get("output") or {}, data, task_id)

    def recent_tasks(self, model: str, since: float, until: float,
                     max_pages: int = 10) -> list[TaskState]:
        """The account's tasks of `model` submitted between two epoch times. Each list
        item says `status` (not `task_status`), with epoch-millisecond times
        (`gmt_create`: the submit) and no result URL (CONTRACT.md, "List")."""
        tasks: list[TaskState] = []
        for page in range(1, max_pages + 1):
            data = self._call("GET", "/tasks", params={
                "model_name": model, "page_no": page, "page_size": 100,
                "start_time": _list_time(since), "end_time": _list_time(until)})
            items = data.get("data")
            if not isinstance(items, list):
                raise self._malformed(data, "task list answer carries no data array")
            tasks += [self._listed_task(item, data) for item in items
                      if isinstance(item, dict) and item.get("task_id")]
            if len(items) < 100:
                break
        return tasks

    def _listed_task(self, item: dict, data: dict) -> TaskState:
        status = item.get("status")
        if status not in TASK_STATUSES:
            raise self._malformed(data, f"unexpected listed task status {status!r}")
        return TaskState(task_id=item["task_id"], status=status,
                         request_id=data.get("request_id", ""),
                         submit_time=_epoch_ms(item.get("gmt_create")),
                         scheduled_time=_epoch_ms(item.get("start_time")),
                         end_time=_epoch_ms(item.get("end_time")))

    def _task_state(self, output: dict, data: dict, task_id: str) -> TaskState:
        status = output.get("task_status")
        if status not in TASK_STATUSES:
            raise self._malformed(data, f"unexpected task_status {status!r}")
        usage = result_usage(data.get("usage"))
        return TaskState(
            task_id=output.get("task_id", task_id),
            status=status,
            request_id=data.get("request_id", ""),
            submit_time=parse_provider_time(output.get("submit_time")),
            scheduled_time=parse_provider_time(output.get("scheduled_time")),
            end_time=parse_provider_time(output.get("end_time")),
            image_url=result_image(output),
            code=output.get("code"),
            message=output.get("message"),
            image_count=usage.get("image_count"),
            width=usage.get("width"),
            height=usage.get("height"),
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
            model=PARSING_MODEL,
        )
        output = data.get("output") or {}
        crops = output.get("crop_img_url")
        if not isinstance(crops, list) or len(crops) != 1:
            raise self._malformed(data, "parsing answer carries no crop_img_url array")
        if crops[0] is None:
            return None
        return ParsedGarment(
            crop_url=crops[0],
            bbox=(output.get("bbox") or [None])[0],
        )

    def cancel(self, task_id: str) -> str:
        """Cancel a PENDING task; returns the request id."""
        return self._call("POST", f"/tasks/{task_id}/cancel").get("request_id", "")

"""Pure domain logic of a try-on job: what a look is, how a manifest names
looks, how a job is identified, how long to wait between polls, and what the
notification says. Nothing here knows about Lambda or AWS."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from tryon.provider import RESOLUTIONS, TRYON_MODELS

MANIFEST_VERSION = 1
MAX_LOOKS_PER_MANIFEST = 50
LOOK_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Expected generation time per model, for the first wait (CONTRACT: 15-30 s,
# plus is slower). Later polls follow the provider's 3-5 s recommendation.
EXPECTED_GENERATION_SECONDS = {"aitryon-plus": 20, "aitryon": 15}
REPOLL_SECONDS = 3


class JobStatus(StrEnum):
    RECEIVED = "RECEIVED"  # recorded, provider not called yet
    SUBMITTING = "SUBMITTING"  # provider call in progress (a crash here is detectable)
    SUBMITTED = "SUBMITTED"  # provider task exists, execution polls it
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT})


@dataclass(frozen=True)
class Look:
    """One try-on: a person and the garments to put on them (S3 keys)."""

    look_id: str
    person: str
    top: str | None = None
    bottom: str | None = None
    model: str = "aitryon-plus"
    resolution: int = -1
    restore_face: bool = True

    def inputs(self) -> dict[str, str]:
        named = {"person": self.person, "top": self.top, "bottom": self.bottom}
        return {role: key for role, key in named.items() if key}

    def parameters(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "restore_face": self.restore_face}


@dataclass(frozen=True)
class Source:
    """The uploaded object that asked for the work."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class ManifestError(ValueError):
    """An unusable manifest: `pointer` is a JSON pointer to the offending part."""

    code = "InvalidManifest"

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{message} (at {pointer or '/'})")
        self.pointer = pointer


_LOOK_FIELDS = {"id", "person", "top", "bottom", "model", "resolution", "restore_face"}
_OPTION_FIELDS = {"model", "resolution", "restore_face"}


def parse_manifest(raw: bytes, default_model: str) -> list[Look]:
    """Read a `jobs/*.json` manifest: one look, or `{"looks": [...]}` with `defaults`."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError("", f"not valid JSON: {exc}; save the file as UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise ManifestError("", "a manifest must be a JSON object")
    version = doc.get("version", MANIFEST_VERSION)
    if version != MANIFEST_VERSION:
        raise ManifestError("/version", f"unsupported version {version!r}; use {MANIFEST_VERSION}")
    if "looks" not in doc:
        unknown = set(doc) - _LOOK_FIELDS - {"version"}
        _reject_unknown(unknown, "")
        return [_parse_look({k: v for k, v in doc.items() if k != "version"}, "", 1, {},
                            default_model)]
    _reject_unknown(set(doc) - {"version", "defaults", "looks"}, "")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ManifestError("/defaults", "defaults must be an object")
    _reject_unknown(set(defaults) - _OPTION_FIELDS, "/defaults")
    looks = doc["looks"]
    if not isinstance(looks, list) or not looks:
        raise ManifestError("/looks", "looks must be a non-empty array")
    if len(looks) > MAX_LOOKS_PER_MANIFEST:
        raise ManifestError(
            "/looks", f"{len(looks)} looks; at most {MAX_LOOKS_PER_MANIFEST} per manifest"
        )
    parsed = [
        _parse_look(look, f"/looks/{i}", i + 1, defaults, default_model)
        for i, look in enumerate(looks)
    ]
    ids = [look.look_id for look in parsed]
    for i, look_id in enumerate(ids):
        if ids.index(look_id) != i:
            raise ManifestError(f"/looks/{i}/id", f"look id {look_id!r} is used twice")
    return parsed


def _reject_unknown(unknown: set[str], pointer: str) -> None:
    if unknown:
        name = sorted(unknown)[0]
        raise ManifestError(f"{pointer}/{name}", f"unknown field {name!r}")


def _parse_look(
    look: Any, pointer: str, number: int, defaults: dict, default_model: str
) -> Look:
    if not isinstance(look, dict):
        raise ManifestError(pointer, "a look must be an object")
    _reject_unknown(set(look) - _LOOK_FIELDS, pointer)
    merged = {"model": default_model, **defaults, **look}
    for name in ("person", "top", "bottom"):
        value = merged.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ManifestError(f"{pointer}/{name}", f"{name} must be an S3 key string")
    if not merged.get("person"):
        raise ManifestError(f"{pointer}/person", "person is required: the key of a person photo")
    if not merged.get("top") and not merged.get("bottom"):
        raise ManifestError(pointer, "give a top and/or a bottom garment (a dress goes in top)")
    look_id = merged.get("id", f"look-{number}")
    if not isinstance(look_id, str) or not LOOK_ID_PATTERN.match(look_id):
        raise ManifestError(
            f"{pointer}/id", "id must be 1-64 letters, digits, '.', '_' or '-', starting alnum"
        )
    if merged["model"] not in TRYON_MODELS:
        raise ManifestError(f"{pointer}/model", f"model must be one of {list(TRYON_MODELS)}")
    resolution = merged.get("resolution", -1)
    if type(resolution) is not int or resolution not in RESOLUTIONS:
        raise ManifestError(f"{pointer}/resolution", f"resolution must be one of {RESOLUTIONS}")
    restore_face = merged.get("restore_face", True)
    if not isinstance(restore_face, bool):
        raise ManifestError(f"{pointer}/restore_face", "restore_face must be true or false")
    return Look(
        look_id=look_id,
        person=merged["person"],
        top=merged.get("top"),
        bottom=merged.get("bottom"),
        model=merged["model"],
        resolution=resolution,
        restore_face=restore_face,
    )


def job_id_for(source: Source, look_id: str) -> str:
    """Stable across redeliveries of the same upload; new for a new version of it.

    (S3's `sequencer` is not used: moto leaves it empty, and the version id or
    ETag already tells uploads apart.)"""
    revision = source.version_id or source.etag
    digest = hashlib.sha256(f"{source.bucket}\n{source.key}\n{revision}\n{look_id}".encode())
    return digest.hexdigest()[:32]


def first_poll_delay(model: str) -> int:
    return EXPECTED_GENERATION_SECONDS.get(model, max(EXPECTED_GENERATION_SECONDS.values()))


def next_poll_delay(now: float, deadline: float) -> int:
    """Seconds until the next query: the provider's recommended pace, never past the deadline."""
    return max(0, min(REPOLL_SECONDS, int(deadline - now)))


def result_key_stem(source: Source, look_id: str, job_id: str) -> str:
    """Where the result goes in the results bucket (the extension follows the
    image's type): by manifest name and look, safe whatever the upload was named."""
    stem = source.key.rsplit("/", 1)[-1].removesuffix(".json")
    safe_stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "manifest"
    return f"looks/{safe_stem}/{look_id}/{job_id}"


NOTIFICATION_EVENTS = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.TIMED_OUT: "job.timed_out",
}


def notification_for(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The SNS message body and the attributes subscribers filter on."""
    status = JobStatus(job["status"])
    event = NOTIFICATION_EVENTS[status]
    body = {
        "schema": "tryon.notification/1",
        "event": event,
        "job_id": job["job_id"],
        "status": status.value,
        "model": job.get("model"),
        "look_id": job.get("look_id"),
        "source": job.get("source"),
        "inputs": job.get("inputs"),
        "parameters": job.get("parameters"),
        "provider_task_id": job.get("provider_task_id"),
        "result": job.get("result"),
        "error": job.get("error"),
        "polls": job.get("polls", 0),
        "timings": job.get("timeline", {}),
    }
    attributes = {"event": event, "status": status.value}
    if job.get("model"):
        attributes["model"] = job["model"]
    return body, attributes

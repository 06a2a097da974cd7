"""The API's request and answer bodies: Pydantic models the resolver validates requests
with and writes the OpenAPI document from."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from tryon.catalogue import MAX_BATCH_BYTES
from tryon.handlers.api.problems import PROBLEM_TYPE
from tryon.image_rules import MAX_INPUT_BYTES
from tryon.manifest import manifest_schema
from tryon.stages.api_requests import CATALOGUE_TYPES, UPLOAD_TYPES


class ProblemDocument(BaseModel):
    """Every refusal (RFC 9457): `code` is stable, `detail` says what to fix."""

    type: str
    status: int
    title: str
    code: str
    detail: str
    request_id: str


def answers(success: Any, *statuses: int, status: int = 200) -> dict[int, Any]:
    """What a route documents: its answer (a model, or a JSON schema), its own refusals
    and those of every route (429: API Gateway's, past the firewall's or the stage's
    request limits)."""
    content = {"model": success} if isinstance(success, type) else {"schema": success}
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {"application/json": content}},
            **{refusal: {"description": HTTPStatus(refusal).phrase,
                         "content": {PROBLEM_TYPE: {"model": ProblemDocument}}}
               for refusal in (401, 422, 429, 500, *statuses)}}


OBJECT = {"type": "object"}  # a job or batch: the fields of its notification (README)


class UploadFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="the file's name")
    content_type: Literal[tuple(sorted(UPLOAD_TYPES | set(CATALOGUE_TYPES)))] = Field(  # type: ignore[valid-type]
        description="an image, or a catalogue file (text/csv, application/jsonl) to name "
                    "in POST /v1/batches")
    size: int = Field(ge=1, le=MAX_BATCH_BYTES, description="the file's size in bytes: the "
                      f"form takes no larger file (an image at most {MAX_INPUT_BYTES}), and "
                      "it counts against the day's quota")

    @model_validator(mode="after")
    def _image_size(self) -> UploadFile:
        if self.content_type in UPLOAD_TYPES and self.size > MAX_INPUT_BYTES:
            raise ValueError(f"an image is at most {MAX_INPUT_BYTES} bytes, not {self.size}")
        return self


class UploadsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[UploadFile] = Field(min_length=1, max_length=20)


class UploadLink(BaseModel):
    key: str = Field(description="name it in a look (person, top, bottom or dress)")
    url: str = Field(description="POST the file here as multipart/form-data")
    fields: dict[str, str] = Field(description="form fields to send before the file")
    expires: int = Field(description="epoch seconds after which the form is refused")


class Uploads(BaseModel):
    uploads: list[UploadLink]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The manifest schema with its local $refs replaced by what they name (an
    OpenAPI document has no room for the file's own definitions)."""
    definitions = schema.get("definitions", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items()
                    if k not in ("$schema", "$id", "definitions")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


class LooksRequest(RootModel[dict[str, Any]]):
    """A manifest, version 1: the same schema as a file under jobs/ (README). Pydantic
    checks only that it is an object: the manifest's one validator is parse_manifest,
    as for a file, and the schema here is that validator's, for the document."""

    model_config = ConfigDict(json_schema_extra=lambda schema: (
        schema.clear(), schema.update(_inlined(manifest_schema())),
        schema["properties"].update(webhook=WEBHOOK_FIELD)))


# The API's one field past the manifest's (tryon.stages.webhooks.with_named_webhook).
WEBHOOK_FIELD = {"type": "string", "maxLength": 2000,
                 "description": "one of your webhook endpoints (its id or url): the looks' "
                                "notifications go there too (as the attribute `webhook`)"}


class AcceptedLook(BaseModel):
    look_id: str
    job_id: str
    status_url: str


class Accepted(BaseModel):
    batch_id: str
    job_ids: list[str]
    looks: list[AcceptedLook]
    batch_url: str


class BatchFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="the file's name: "
                      "<name>.csv or <name>.jsonl")
    content_type: Literal[tuple(sorted(CATALOGUE_TYPES))]  # type: ignore[valid-type]
    size: int = Field(ge=1, description=f"its size in bytes (at most {MAX_BATCH_BYTES}): the "
                      "form takes no larger file")


class BatchRequest(BaseModel):
    """A catalogue file (README: one look per row) as a new batch: a form to upload it
    with (`file`), or one you uploaded with POST /v1/uploads (`key`)."""

    model_config = ConfigDict(extra="forbid")
    file: BatchFile | None = None
    key: str | None = Field(None, min_length=1, max_length=1024,
                            description="an uploaded .csv or .jsonl file of yours")

    @model_validator(mode="after")
    def _one_of(self) -> BatchRequest:
        if (self.file is None) == (self.key is None):
            raise ValueError("send either `file` (for an upload form) or `key` (a file you "
                             "uploaded)")
        return self


class BatchAccepted(BaseModel):
    batch_id: str
    batch_url: str
    upload: UploadLink | None = Field(None, description="with `file`: POST the file here; "
                                      "intake reads it when it arrives")
    rows: int | None = Field(None, description="with `key`: the looks read from it")


class JobList(BaseModel):
    jobs: list[dict[str, Any]]
    next: str | None = Field(description="pass as `after` for the next page; null at the end")

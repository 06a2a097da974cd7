"""Manifests (`jobs/*.json`): one look or a batch of looks, validated against
the shipped JSON Schema (`schemas/manifest-v1.schema.json`). Every rejection
says what is wrong and where, as a JSON pointer into the uploaded file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from tryon.jobs import Look

SCHEMA_PATH = Path(__file__).parent / "schemas" / "manifest-v1.schema.json"
# 50 looks fit in a few KB; a manifest this large is not one.
MAX_MANIFEST_BYTES = 512 * 1024
_MANIFEST_FIELDS = {"version", "defaults", "attributes", "looks"}
_OPTIONS = ("model", "resolution", "restore_face", "instruction")


class ManifestError(ValueError):
    """An unusable manifest: `pointer` is a JSON pointer to the offending part."""

    def __init__(self, pointer: str, message: str, code: str = "InvalidManifest") -> None:
        super().__init__(f"{message} (at {pointer or '/'})")
        self.pointer = pointer
        self.code = code


@dataclass(frozen=True)
class Manifest:
    looks: list[Look]
    is_batch: bool  # written with `looks`: ends with a batch.completed notification
    pointers: dict[str, str]  # look id -> its JSON pointer, for later errors
    attributes: dict[str, str]  # the manifest's own (each look's merge its own over them)


@cache
def manifest_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def batch_form(doc: dict[str, Any]) -> dict[str, Any]:
    """The manifest written with `looks`, whichever form it came in."""
    if "looks" in doc:
        return doc
    look = {k: v for k, v in doc.items() if k not in _MANIFEST_FIELDS}
    return {**{k: v for k, v in doc.items() if k in _MANIFEST_FIELDS}, "looks": [look]}


def parse_manifest(raw: bytes, default_model: str) -> Manifest:
    """`raw`: the manifest's bytes (more than MAX_MANIFEST_BYTES of them says that it
    is too large, whatever follows)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError("", f"the manifest is over {MAX_MANIFEST_BYTES // 1024} KB; split "
                            "it into manifests of at most 50 looks", code="ManifestTooLarge")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError("", f"not valid JSON: {exc}; save the file as UTF-8 JSON") from None
    except RecursionError:
        raise ManifestError("", "the JSON is nested too deeply to be a manifest") from None
    if not isinstance(doc, dict):
        raise ManifestError("", "a manifest must be a JSON object")
    is_batch = "looks" in doc
    doc = batch_form(doc)  # the inline single-look form is validated as a batch of one
    try:
        validate(event=doc, schema=manifest_schema())
    except SchemaValidationError as exc:
        pointer, message = _explain(exc)
        if not is_batch:
            pointer = re.sub(r"^/looks/0", "", pointer)
        raise ManifestError(pointer, message) from None

    looks, pointers = [], {}
    for index, entry in enumerate(doc["looks"]):
        pointer = f"/looks/{index}" if is_batch else ""
        look = _look(entry, pointer, index + 1, doc, default_model)
        if look.look_id in pointers:
            raise ManifestError(f"{pointer}/id", f"look id {look.look_id!r} is used twice")
        pointers[look.look_id] = pointer
        looks.append(look)
    return Manifest(looks=looks, is_batch=is_batch, pointers=pointers,
                    attributes=doc.get("attributes", {}))


# Inputs are the user's images, never the pipeline's own files: manifests and the
# normalized copies preflight writes.
RESERVED_INPUT_PREFIXES = ("jobs/", "normalized/")


def _look(entry: dict, pointer: str, number: int, doc: dict, default_model: str) -> Look:
    """The rules a schema states poorly: which garments may go together, and where
    images may come from."""
    for slot in ("person", "top", "bottom", "dress"):
        if str(entry.get(slot, "")).startswith(RESERVED_INPUT_PREFIXES):
            raise ManifestError(f"{pointer}/{slot}", f"{entry[slot]!r} is under "
                                f"{' or '.join(RESERVED_INPUT_PREFIXES)}, which hold the "
                                "pipeline's own files, not images; upload the image elsewhere "
                                "in the bucket (e.g. models/ or catalog/)")
    garments = {slot for slot in ("top", "bottom", "dress") if slot in entry}
    keep = entry.get("keep")
    if "dress" in garments and garments != {"dress"}:
        raise ManifestError(pointer, "a dress is worn alone: remove top/bottom, or the dress")
    if not garments:
        raise ManifestError(pointer, "give a top and/or a bottom garment, or a dress")
    if keep:
        if "dress" in garments:
            raise ManifestError(f"{pointer}/keep", "a dress cannot be combined with keep")
        if keep in garments:
            raise ManifestError(f"{pointer}/keep",
                                f"keep {keep!r} keeps the person's own {keep}: remove {keep}")
        other = "bottom" if keep == "top" else "top"
        if other not in garments:
            raise ManifestError(f"{pointer}/keep", f"keep {keep!r} needs a {other} to put on")
    attributes = {**doc.get("attributes", {}), **entry.get("attributes", {})}
    if len(attributes) > 7:
        raise ManifestError(f"{pointer}/attributes",
                            "at most 7 attributes per look, counting the manifest's")
    options = {"model": default_model, **doc.get("defaults", {}),
               **{k: entry[k] for k in _OPTIONS if k in entry}}
    return Look(
        look_id=entry.get("id", f"look-{number}"),
        person=entry["person"],
        top=entry.get("top") or entry.get("dress"),
        top_is_dress="dress" in entry,
        bottom=entry.get("bottom"),
        keep=keep,
        model=options["model"],
        resolution=options.get("resolution", -1),
        restore_face=options.get("restore_face", True),
        instruction=options.get("instruction"),
        attributes=tuple(sorted(attributes.items())),
    )


def _explain(exc: SchemaValidationError) -> tuple[str, str]:
    """A JSON pointer and a plain sentence from a schema violation."""
    path = [str(part) for part in (exc.path or [])[1:]]  # drop the leading "data"
    text = exc.validation_message or str(exc)
    named = re.findall(r"'([^']*)'", text.split(" must ", 1)[-1])
    if exc.rule == "additionalProperties" and named:
        return _pointer([*path, named[0]]), f"unknown field {named[0]!r}"
    if exc.rule == "required" and named:
        return _pointer([*path, named[0]]), f"{named[0]} is required"
    if exc.rule == "propertyNames":
        return _pointer(path), ("attribute names start with a letter, use letters, digits, "
                                "'_' or '-', and are not event, status, model, batch_id or schema")
    if exc.rule == "pattern" and "attributes" in path[:-1]:
        return _pointer(path), ("attribute values are text without control characters "
                                "(newlines, tabs)")
    if exc.rule == "pattern" and path[-1:] == ["instruction"]:
        return _pointer(path), ("instruction must be one line of text without control "
                                "characters (newlines, tabs); at most 300 characters")
    if exc.rule == "maxItems":
        return _pointer(path), f"too many looks: at most {exc.rule_definition} per manifest"
    if exc.rule == "const" and path == ["version"]:
        return "/version", "unsupported version; use 1"
    where = "data" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)
    return _pointer(path), text.replace(where, path[-1] if path else "the manifest", 1)


def _pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)

"""Manifests (`jobs/*.json`): one look or a batch of looks. `parse_manifest` is the one
validator, for intake and the API alike: the shipped JSON Schema
(`schemas/manifest-v1.schema.json`, compiled once) for the shape, then the rules a schema
states poorly. Every rejection says what is wrong, where (a JSON pointer into the uploaded
file) and what to do; the schema words what its rules say (`errorMessage`) where the
validator's words would not do."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
from fastjsonschema import JsonSchemaValueException

from tryon.jobs import Look

SCHEMA_PATH = Path(__file__).parent / "schemas" / "manifest-v1.schema.json"
# 50 looks fit in a few KB; a manifest this large is not one.
MAX_MANIFEST_BYTES = 512 * 1024
_MANIFEST_FIELDS = {"version", "defaults", "attributes", "looks"}
_OPTIONS = ("model", "resolution", "restore_face", "instruction", "priority")
# The retailer's instruction goes into the model's own text: one line of plain text. The
# schema's pattern cannot name Unicode categories, so format characters (a U+202E that
# reverses what a reader sees, a U+200B that hides a word) are refused here.
_NOT_PLAIN = frozenset({"Cc", "Cf", "Zl", "Zp"})


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


@cache
def _validator() -> Callable[[Any], Any]:
    return fastjsonschema.compile(manifest_schema())


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
    return manifest_of(doc, default_model)


def manifest_of(doc: Any, default_model: str) -> Manifest:
    """A decoded manifest checked: the schema, then the rules it states poorly."""
    if not isinstance(doc, dict):
        raise ManifestError("", "a manifest must be a JSON object")
    is_batch = "looks" in doc
    doc = batch_form(doc)  # the inline single-look form is validated as a batch of one
    try:
        _validator()(doc)
    except JsonSchemaValueException as exc:
        path, message = _explain(exc)
        if not is_batch and path[:2] == ["looks", "0"]:
            path = path[2:]  # the look is the manifest itself
        raise ManifestError(_pointer(path), message) from None

    _check_instruction(doc.get("defaults", {}), "/defaults")
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


def instruction_refusals(manifest: Manifest, owner: str | None) -> dict[str, str]:
    """Look id -> why its instruction is refused, where the operator has not allowed
    instructions for whoever wrote the manifest (owner: the integration; None: a
    bucket manifest)."""
    how = (f"`tryon keys set {owner} --allow-instruction`" if owner
           else "the stack parameter AllowManifestInstructions=true")
    return {look.look_id: f"look {look.look_id!r} (at {manifest.pointers[look.look_id] or '/'}) "
            "has an instruction, which is off unless the operator allows it (the text goes to "
            "the provider account every tenant shares, where a harmful one risks moderation "
            "strikes for all of them): remove instruction from the look and the defaults, or "
            f"ask the operator to allow it with {how}"
            for look in manifest.looks if look.instruction}


def priority_refusals(manifest: Manifest, allowed: tuple[str, ...], owner: str | None
                      ) -> dict[str, str]:
    """Look id -> why the priority it asks for is refused: not one the operator allows
    the integration (`tryon keys set NAME --priorities ...`)."""
    return {look.look_id: f"look {look.look_id!r} (at {manifest.pointers[look.look_id] or '/'}) "
            f"asks for priority {look.priority!r}, which integration {owner!r} may not use "
            f"(it may use {', '.join(allowed)}): set priority to one of those, or leave it "
            "out (one look alone is interactive, more are batch, where allowed), or ask the "
            f"operator to allow it with `tryon keys set {owner} --priorities ...`"
            for look in manifest.looks if look.priority and look.priority not in allowed}


# Inputs are the user's images, never the pipeline's own files: manifests and the
# normalized copies preflight writes.
RESERVED_INPUT_PREFIXES = ("jobs/", "normalized/")


def _look(entry: dict, pointer: str, number: int, doc: dict, default_model: str) -> Look:
    """The rules a schema states poorly: which garments may go together, where
    images may come from, and what an instruction may hold."""
    _check_instruction(entry, pointer)
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
        priority=options.get("priority"),
    )


def _check_instruction(options: dict[str, Any], pointer: str) -> None:
    text = options.get("instruction", "")
    bad = next((char for char in text if unicodedata.category(char) in _NOT_PLAIN), None)
    if bad is not None:
        rule = manifest_schema()["definitions"]["instruction"]["errorMessage"]["pattern"]
        raise ManifestError(f"{pointer}/instruction", f"{rule}; character "
                            f"{text.index(bad) + 1} is U+{ord(bad):04X} "
                            f"{unicodedata.name(bad, '')}".rstrip())


def _explain(exc: JsonSchemaValueException) -> tuple[list[str], str]:
    """Where a schema violation is (path parts) and what it says: the schema's own words
    for the rule if it has them, else the validator's, of the field by its name."""
    path = [str(part) for part in exc.path[1:]]  # the validator calls the document "data"
    if exc.rule == "required":
        missing = next(name for name in exc.rule_definition if name not in exc.value)
        return [*path, missing], f"{missing} is required"
    if exc.rule == "additionalProperties":
        known = exc.definition.get("properties", {})
        unknown = next(name for name in exc.value if name not in known)
        return [*path, unknown], f"unknown field {unknown!r}"
    if own := exc.definition.get("errorMessage", {}).get(exc.rule):
        return path, own
    # The validator's message is the field's full name, then what its rule asks.
    return path, (path[-1] if path else "the manifest") + exc.message.removeprefix(exc.name)


def _pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)

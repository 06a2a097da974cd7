"""Preparation: every input image checked by content against the rules of the
model that will use it, fixed where that is faithful (the fixed copy goes to
normalized/, a prefix that never triggers the pipeline), or rejected before any
money is spent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tryon.image_rules import ImageRules
from tryon.jobs import NORMALIZED_PREFIX
from tryon.preflight import MAX_INPUT_BYTES, InputRejected, Prepared, prepare_image
from tryon.stages.context import Context

# One upload's checks, shared by its looks: (key, rules label) -> outcome.
Checked = dict[tuple[str, str], "ReadyInput | InputRejected"]


@dataclass(frozen=True)
class ReadyInput:
    """An input that passed preflight, and where its (possibly fixed) bytes live."""

    bucket: str
    key: str
    image: Prepared


def prepare_inputs(ctx: Context, bucket: str, inputs: dict[str, str], rules: ImageRules,
                   checked: Checked) -> dict[str, Any]:
    """The job fields that say where each checked input lives (`submit_inputs`), what
    was fixed (`normalized`) and for which rules (`prepared_for`). Raises InputRejected."""
    ready = {role: _prepare(ctx, bucket, key, rules, checked) for role, key in inputs.items()}
    return {
        "normalized": {role: {"key": r.key, "fixes": list(r.image.fixes)}
                       for role, r in ready.items() if r.image.changed} or None,
        "submit_inputs": {role: {"bucket": r.bucket, "key": r.key,
                                 "content_type": r.image.content_type,
                                 "extension": r.image.extension,
                                 "width": r.image.width, "height": r.image.height}
                          for role, r in ready.items()},
        "prepared_for": rules.label,
    }


def _prepare(ctx: Context, bucket: str, key: str, rules: ImageRules,
             checked: Checked) -> ReadyInput:
    if (key, rules.label) not in checked:
        checked[key, rules.label] = _prepare_uncached(ctx, bucket, key, rules)
    outcome = checked[key, rules.label]
    if isinstance(outcome, InputRejected):
        raise outcome
    return outcome


def _prepare_uncached(ctx: Context, bucket: str, key: str,
                      rules: ImageRules) -> ReadyInput | InputRejected:
    described = ctx.storage.describe(bucket, key)
    if described is None:
        return InputRejected("MissingInput", f"{key}: the image does not exist (any more); "
                             "upload it again")
    if described["size"] > MAX_INPUT_BYTES:
        return InputRejected.oversized(key, described["size"], rules)
    try:
        prepared = prepare_image(key, ctx.storage.read(bucket, key), rules)
    except InputRejected as exc:
        return exc
    if not prepared.changed:
        return ReadyInput(bucket, key, prepared)
    digest = hashlib.sha256(
        f"{bucket}/{key}@{described['etag']}#{rules.label}".encode()).hexdigest()
    normalized_key = f"{NORMALIZED_PREFIX}{digest[:32]}.{prepared.extension}"
    ctx.storage.write(bucket, normalized_key, prepared.data, prepared.content_type,
                      metadata={"source-key": key.encode("ascii", "replace").decode()})
    return ReadyInput(bucket, normalized_key, prepared)

"""Preparation: every input image checked by content against the rules of the
model that will use it, fixed where that is faithful (the fixed copy goes to
normalized/, a prefix that never triggers the pipeline), or rejected before any
money is spent. Each version of an image is decoded once per set of rules on the
stack: what was found is recorded (tryon.adapters.checked_images) and every later
look naming that version reuses it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tryon.image_rules import ImageRules
from tryon.job_record import JobStatus
from tryon.jobs import NORMALIZED_PREFIX
from tryon.models.registry import model_spec
from tryon.preflight import MAX_INPUT_BYTES, InputRejected, prepare_image
from tryon.stages.completion import end_job
from tryon.stages.context import Context

# Another function checking the same image is waited for this long (a check takes
# a fraction of a second), looking every CLAIM_POLL_SECONDS.
CLAIM_WAIT_SECONDS, CLAIM_POLL_SECONDS = 10.0, 0.25
# One upload's checks, shared by its looks: (key, rules label) -> outcome.
Checked = dict[tuple[str, str], "ReadyInput | InputRejected"]


@dataclass(frozen=True)
class ReadyInput:
    """An input that passed preflight, and where its (possibly fixed) bytes live."""

    bucket: str
    key: str  # the upload's, or its fixed copy's
    version: str | None  # the version of the upload that was checked
    content_type: str
    extension: str
    width: int
    height: int
    fixes: tuple[str, ...] = ()  # one line per fix (none: the upload goes as it is)

    @property
    def changed(self) -> bool:
        return bool(self.fixes)


def prepare_inputs(ctx: Context, bucket: str, inputs: dict[str, str], rules: ImageRules,
                   checked: Checked, pinned: dict[str, str] | None = None) -> dict[str, Any]:
    """The job fields that say where each checked input lives (`submit_inputs`), what
    was fixed (`normalized`), which version of each upload was checked
    (`input_versions`: the one an event named, in `pinned`, or else the current one;
    the provider gets exactly that one) and for which rules (`prepared_for`). Raises
    InputRejected."""
    pinned = pinned or {}
    ready = {role: _prepare(ctx, bucket, key, rules, checked, pinned.get(key))
             for role, key in inputs.items()}
    return {
        "normalized": {role: {"key": r.key, "fixes": list(r.fixes)}
                       for role, r in ready.items() if r.changed} or None,
        "submit_inputs": {role: {"bucket": r.bucket, "key": r.key,
                                 "content_type": r.content_type, "extension": r.extension,
                                 "width": r.width, "height": r.height,
                                 # the checked version, or none for a fixed copy
                                 "version_id": None if r.changed else r.version}
                          for role, r in ready.items()},
        "input_versions": {inputs[role]: r.version for role, r in ready.items()
                           if r.version} or None,
        "prepared_for": rules.label,
    }


def prepare_again(ctx: Context, job_id: str) -> None:
    """An admitted job moved to another model (the fallback): its inputs are checked
    again against that model's rules, then it goes back to the submit function."""
    job = ctx.jobs.get(job_id)
    if job is None or job.status != JobStatus.ADMITTED:
        return  # a duplicate message, or the job has moved on
    rules = model_spec(job.model).input_rules
    if job.prepared_for != rules.label:
        try:
            fields = prepare_inputs(ctx, job.source["bucket"], job.input_keys(), rules, {},
                                    job.input_versions)
        except InputRejected as exc:
            end_job(ctx, job_id, JobStatus.FAILED, error=exc.as_error())
            return
        ctx.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.ADMITTED,
                            **fields)
    ctx.admissions.send([job_id])


def _prepare(ctx: Context, bucket: str, key: str, rules: ImageRules, checked: Checked,
             version_id: str | None) -> ReadyInput:
    if (key, rules.label) not in checked:
        checked[key, rules.label] = _prepare_uncached(ctx, bucket, key, rules, version_id)
    outcome = checked[key, rules.label]
    if isinstance(outcome, InputRejected):
        raise outcome
    return outcome


def _prepare_uncached(ctx: Context, bucket: str, key: str, rules: ImageRules,
                      version_id: str | None) -> ReadyInput | InputRejected:
    described = ctx.storage.describe(bucket, key, version_id)
    if described is None:
        return InputRejected("MissingInput", f"{key}: the image does not exist (any more); "
                             "upload it again")
    if described["size"] > MAX_INPUT_BYTES:
        return InputRejected.oversized(key, described["size"], rules)
    version = described["version_id"]  # from here on, this version and no other
    if version:
        recorded = _recorded_or_claimed(ctx, bucket, key, version, rules.label)
        if recorded is not None:
            ctx.count("ImageChecksReused")
            return _outcome(bucket, version, recorded)
    outcome = _check(ctx, bucket, key, rules, version, described["etag"])
    ctx.count("ImagesDecoded")
    if version:
        ctx.checked_images.put(bucket, key, version, rules.label, _record(outcome),
                               ctx.clock())
    return outcome


def _recorded_or_claimed(ctx: Context, bucket: str, key: str, version: str, rules: str
                         ) -> dict[str, Any] | None:
    """What was found of this version, waiting a little while another function is
    checking it (looks of one batch, checked at once by many); None: this caller
    checks it (it holds the claim, or the other's outlived CLAIM_WAIT_SECONDS)."""
    images = ctx.checked_images
    for _ in range(int(CLAIM_WAIT_SECONDS / CLAIM_POLL_SECONDS)):
        recorded = images.get(bucket, key, version, rules, ctx.clock())
        if recorded is not None or images.claim(bucket, key, version, rules, ctx.clock()):
            return recorded
        ctx.sleep(CLAIM_POLL_SECONDS)
    return None


def _check(ctx: Context, bucket: str, key: str, rules: ImageRules, version: str | None,
           etag: str) -> ReadyInput | InputRejected:
    """Decode the version and check it; a fixed copy is written to normalized/."""
    try:
        prepared = prepare_image(key, ctx.storage.read(bucket, key, version), rules)
    except InputRejected as exc:
        return exc
    found = {"content_type": prepared.content_type, "extension": prepared.extension,
             "width": prepared.width, "height": prepared.height, "fixes": prepared.fixes}
    if not prepared.changed:
        return ReadyInput(bucket, key, version, **found)
    digest = hashlib.sha256(f"{bucket}/{key}@{etag}#{rules.label}".encode()).hexdigest()
    normalized_key = f"{NORMALIZED_PREFIX}{digest[:32]}.{prepared.extension}"
    ctx.storage.write(bucket, normalized_key, prepared.data, prepared.content_type,
                      metadata={"source-key": key.encode("ascii", "replace").decode()})
    return ReadyInput(bucket, normalized_key, version, **found)


def _record(outcome: ReadyInput | InputRejected) -> dict[str, Any]:
    if isinstance(outcome, InputRejected):
        return {"rejected": outcome.as_error()}
    return {"ready": {"key": outcome.key, "content_type": outcome.content_type,
                      "extension": outcome.extension, "width": outcome.width,
                      "height": outcome.height, "fixes": list(outcome.fixes)}}


def _outcome(bucket: str, version: str, recorded: dict[str, Any]) -> ReadyInput | InputRejected:
    if "rejected" in recorded:
        return InputRejected(recorded["rejected"]["code"], recorded["rejected"]["message"])
    ready = recorded["ready"]
    return ReadyInput(bucket, ready["key"], version, ready["content_type"], ready["extension"],
                      ready["width"], ready["height"], tuple(ready["fixes"]))

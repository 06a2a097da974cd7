"""The operator's side of `tryon` (`jobs`, `keys`, `budget`, `limits`): find a stack — a
deployed one by name, through its outputs and the settings of its API function, or
the local one through the state file `tryon local serve` writes — and act on it
with the stages' own code (the same Context the functions build)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from tryon.adapters.dynamo import from_dynamo
from tryon.adapters.integrations import Integrations, role_of
from tryon.adapters.jobs import JOB_SK
from tryon.adapters.slots import PRIORITIES
from tryon.job_record import TERMINAL_STATUSES, JobRecord, JobStatus
from tryon.jobs import (
    API_MANIFEST_PREFIX,
    INTEGRATION_NAME,
    Source,
    every_batch_job,
    job_id_for,
    job_view,
    utc_day,
)
from tryon.manifest import ManifestError, parse_manifest
from tryon.settings import Settings
from tryon.stages import batch_steering, provider_limits
from tryon.stages.admission import todays_budget
from tryon.stages.batch_progress import batch_progress
from tryon.stages.batch_steering import CannotRetry, look_again
from tryon.stages.cancellation import CannotCancel, cancel_job
from tryon.stages.context import Context
from tryon.wiring import build_context
from tryon_local.runtime import FAKE_CREDENTIALS, EndpointSession

DEFAULT_STATE_FILE = Path("out/local-stack/stack.json")
API_FUNCTION = "ApiFunction"  # its environment holds every setting the commands need
OPERATOR = "the operator"
RETRY_MANIFEST_PREFIX = "jobs/retries/"
AWS_ERRORS = (BotoCoreError, ClientError)  # refused, unreachable, no credentials...


class OperatorError(Exception):
    """A command refused or failed; the message says why and what to do."""


@dataclass
class Target:
    """A stack to operate on."""

    name: str  # for messages: "stack NAME" or "the local stack"
    session: Any  # .client(svc) / .resource(svc) with the operator's credentials
    ctx: Context
    outputs: dict[str, str]
    api_url: str | None  # the bearer-key API's base URL, ending in /v1

    @property
    def integrations(self) -> Integrations:
        return self.ctx.integrations


# --- finding the stack --------------------------------------------------------------

def deployed_target(stack: str, region: str | None = None,
                    profile: str | None = None) -> Target:
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        cloudformation = session.client("cloudformation")
        [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        function = cloudformation.describe_stack_resource(
            StackName=stack, LogicalResourceId=API_FUNCTION
        )["StackResourceDetail"]["PhysicalResourceId"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return _target(f"stack {stack}", session, outputs, function, {}, outputs.get("ApiUrl"))
    except AWS_ERRORS as exc:
        raise OperatorError(f"cannot read stack {stack!r}: {exc}") from None


def local_target(state_file: Path = DEFAULT_STATE_FILE) -> Target:
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        raise OperatorError(f"no local stack: {state_file} does not exist; start one with "
                            "`tryon local serve` (or name its state file: --local FILE)"
                            ) from None
    session = EndpointSession(boto3.Session(region_name=state["region"], **FAKE_CREDENTIALS),
                              state["endpoint"], state.get("endpoints"))
    clock = {"TIME_SCALE": str(state["clock"]["scale"]),
             "TIME_ANCHOR": str(state["clock"]["anchor"])}
    try:
        return _target("the local stack", session, state["outputs"], state["api_function"],
                       clock, state["api_url"])
    except EndpointConnectionError:
        raise OperatorError(f"the local stack of {state_file} does not answer at "
                            f"{state['endpoint']}: it has stopped; start it again with "
                            "`tryon local serve`") from None


def _target(name: str, session: Any, outputs: dict[str, str], function: str,
            extra_env: dict[str, str], api_url: str | None) -> Target:
    """The stages' Context from the settings the stack gave its API function."""
    config = session.client("lambda").get_function_configuration(FunctionName=function)
    settings = Settings.from_env({**config.get("Environment", {}).get("Variables", {}),
                                  **extra_env})
    return Target(name, session, build_context(settings, session), outputs, api_url)


# --- jobs ------------------------------------------------------------------------------

def list_jobs(target: Target, *, status: str | None = None, batch: str | None = None,
              owner: str | None = None, limit: int = 50) -> list[JobRecord]:
    """Job records, newest first: a batch's, an integration's, or any."""
    if batch:
        jobs = [job for job in every_batch_job(target.ctx.jobs, find_batch(target, batch))
                if status is None or job.status == status]
        return _newest_first(jobs)[:limit]
    if owner:
        return target.ctx.jobs.owned(owner, status=status, limit=limit, after=None)[0]
    # A Scan reads the whole table at worst: acceptable for an operator's occasional
    # look, bounded by --limit, on the operator's own credentials. The functions have
    # no Scan right; the API lists an integration's jobs through the owner index.
    table = target.session.resource("dynamodb").Table(target.ctx.settings.jobs_table)
    condition = Attr("sk").eq(JOB_SK)
    if status:
        condition &= Attr("status").eq(status)
    found: list[JobRecord] = []
    start = None
    while len(found) < limit:
        page = table.scan(FilterExpression=condition,
                          **({"ExclusiveStartKey": start} if start else {}))
        found += [JobRecord.from_item(from_dynamo(item)) for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return _newest_first(found)[:limit]


def _newest_first(jobs: list[JobRecord]) -> list[JobRecord]:
    return sorted(jobs, key=lambda job: -job.timeline.get("received", 0))


def find_batch(target: Target, batch_id: str) -> dict[str, Any]:
    batch = target.ctx.batches.get(batch_id)
    if batch is None:
        raise OperatorError(f"no batch {batch_id!r} in {target.name} (a manifest uploaded a "
                            "moment ago is recorded within seconds; a single look has no batch)")
    return batch


def get_job(target: Target, job_id: str) -> JobRecord:
    job = target.ctx.jobs.get(job_id)
    if job is None:
        raise OperatorError(f"no job {job_id!r} in {target.name}")
    return job


def job_details(job: JobRecord) -> dict[str, Any]:
    """What `jobs show` prints: the job's view, whose it is, and seconds from its
    receipt to each step."""
    received = job.timeline.get("received")
    steps = sorted(job.timeline.items(), key=lambda item: item[1])
    return {**job_view(job), "owner": job.owner, "waiting_for": job.waiting_for,
            "seconds_since_received": {step: round(at - received, 3) for step, at in steps}
            if received is not None else {}}


def cancel(target: Target, job_id: str) -> dict[str, Any]:
    try:
        return job_view(cancel_job(target.ctx, job_id, OPERATOR))
    except KeyError:
        raise OperatorError(f"no job {job_id!r} in {target.name}") from None
    except CannotCancel as exc:
        raise OperatorError(f"cannot cancel: {exc}") from None


def retry_look(job: JobRecord, inbox: str) -> dict[str, Any]:
    """The look of an ended job as a one-look manifest, linked to it by `retry_of`."""
    try:
        return {"version": 1, **look_again(job, inbox)}
    except CannotRetry as exc:
        raise OperatorError(str(exc)) from None


def retry(target: Target, job_id: str) -> dict[str, Any]:
    """Write the ended job's look to the inbox as a new manifest; intake makes it a new
    job (checked, budgeted and notified as any other). An integration's job goes under
    its API prefix, so that it owns (and can see) the new one; its quota is not charged:
    the operator asked."""
    job = get_job(target, job_id)
    inbox = target.ctx.settings.inbox_bucket or target.outputs["InboxBucketName"]
    look = retry_look(job, inbox)
    raw = json.dumps(look).encode()
    try:
        parse_manifest(raw, target.ctx.settings.default_model)  # as intake will
    except ManifestError as exc:
        raise OperatorError(f"job {job_id}'s look cannot be sent again: {exc}") from None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    owner = job.owner
    key = (f"{API_MANIFEST_PREFIX}{owner}/retry-{job_id}-{stamp}.json" if owner
           else f"{RETRY_MANIFEST_PREFIX}{job_id}-{stamp}.json")
    written = target.ctx.storage.write(inbox, key, raw, "application/json")
    # The id intake gives it, from the version written (tryon.jobs.job_id_for).
    new_id = job_id_for(Source(inbox, key, written["etag"] or "", written["version_id"]),
                        look["id"])
    return {"job_id": new_id, "retry_of": job_id, "look_id": look["id"], "owner": owner,
            "manifest": f"s3://{inbox}/{key}"}


def cancel_batch(target: Target, batch_id: str, seconds: float) -> dict[str, Any]:
    """Cancel every look of the batch the provider has not started: for up to `seconds`
    here, then by the stack's sweep (a minute at a time)."""
    find_batch(target, batch_id)
    return batch_steering.cancel_batch(target.ctx, batch_id, OPERATOR, seconds)


def retry_batch(target: Target, batch_id: str) -> dict[str, Any]:
    """The batch's failed and timed-out looks as a new batch linked to it (an
    integration's batch stays its own, and counts against its quota)."""
    try:
        return batch_steering.retry_batch(target.ctx, find_batch(target, batch_id))
    except CannotRetry as exc:
        raise OperatorError(f"cannot retry: {exc}") from None


def format_cancel(state: dict[str, Any]) -> str:
    saved = _money(state["saved"])
    return (f"batch {state['batch_id']}: {state['canceled']} looks canceled"
            + (f" ({saved} not spent)" if saved else "")
            + (f"; {state['not_canceled_running']} the provider was making go on"
               if state["not_canceled_running"] else "")
            + ("" if state["done"] else "; the stack's sweep cancels the rest (see `tryon "
               f"jobs watch {state['batch_id']}`)"))


def watch(target: Target, batch_id: str, *, interval: float, timeout: float | None,
          show: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Follow a batch until every job has ended; `show` gets its view on each change.
    Returns the last view."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = None
    while True:
        view = batch_progress(target.ctx, find_batch(target, batch_id))
        if view["counts"] != shown:
            shown = view["counts"]
            show(view)
        if view["status"] != "OPEN":
            return view
        if deadline is not None and time.monotonic() >= deadline:
            raise OperatorError(f"batch {batch_id} still open after {timeout:g} s: "
                                f"{progress_line(view, width=0)}")
        time.sleep(interval)


def progress_line(view: dict[str, Any], width: int = 30) -> str:
    """[####xx......] 6/12 ended: 5 succeeded, 1 failed, 4 submitted, 2 queued; 5 images,
    0.5 USD; about 40 s to go (#: succeeded, x: ended otherwise, .: open)."""
    counts = view["counts"]
    total = counts["total"]
    ended = sum(counts.get(s.value.lower(), 0) for s in TERMINAL_STATUSES)
    good = round(width * counts.get("succeeded", 0) / total) if total else 0
    bad = (round(width * ended / total) if total else 0) - good
    bar = f"[{'#' * good}{'x' * bad}{'.' * (width - good - bad)}] " if width else ""
    by_status = ", ".join(f"{counts[name]} {name}" for name in
                          [s.value.lower() for s in JobStatus] + ["open"] if counts.get(name))
    line = f"{bar}{ended}/{total} ended: {by_status or 'none recorded yet'}"
    progress = view.get("progress")
    if progress:
        spent = _money(progress["price_so_far"])
        line += f"; {progress['images_made']} images" + (f", {spent}" if spent else "")
        if progress["eta_seconds"] and ended < total:
            line += f"; about {_duration(progress['eta_seconds'])} to go"
    return line


def _money(amounts: dict[str, float]) -> str:
    """{"USD": 0.5} -> "0.5 USD" (one amount per currency)."""
    return ", ".join(f"{amount:g} {currency}" for currency, amount in amounts.items())


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s" if minutes
            else f"{rest} s")


# --- keys --------------------------------------------------------------------------------

def create_key(target: Target, name: str, quota: int | None, principal: str | None,
               allow_instruction: bool = False) -> dict[str, Any]:
    """`allow_instruction`: allow its looks a retailer's instruction (False leaves an
    existing integration's setting as it is)."""
    if not INTEGRATION_NAME.match(name):
        raise OperatorError(f"{name!r} is not an integration name: 1-40 lowercase letters, "
                            "digits or '-', starting with a letter or digit")
    now = time.time()
    key, key_id = target.integrations.create_key(name, quota, now)
    if principal:
        target.integrations.allow_principal(name, principal, now)
    if allow_instruction:
        target.integrations.set_allow_instruction(name, True)
    item = target.integrations.get(name) or {}
    return {"name": name, "key_id": key_id, "key": key, "principal": principal,
            "daily_quota": _quota(target, item),
            "allow_instruction": bool(item.get("allow_instruction")), "api_url": target.api_url}


def set_allow_instruction(target: Target, name: str, allowed: bool) -> dict[str, Any]:
    """Allow or refuse an integration's looks a retailer's instruction (the text goes to
    the provider account every tenant shares)."""
    return set_settings(target, name, {"allow_instruction": allowed})


def set_settings(target: Target, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Change an integration's settings (tryon.adapters.integrations.SETTINGS); None puts
    one back to its default. Takes effect for its next request (a cached key: within
    the authorizer's 30 s) and, for the share, the next look it queues."""
    share, budget_share = values.get("share"), values.get("budget_share")
    if share is not None and not 0.01 <= share <= 100:
        raise OperatorError(f"share {share:g} is out of range: 0.01 to 100 (1: an equal turn)")
    if budget_share is not None and not 0 < budget_share <= 1:
        raise OperatorError(f"budget share {budget_share:g} is out of range: a fraction of the "
                            "daily budget, above 0 and at most 1")
    cap = values.get("max_in_flight")
    if cap is not None and (not isinstance(cap, int) or cap < 1):
        raise OperatorError(f"max in flight {cap} is out of range: at least 1 slot of a model")
    unknown = set(values.get("priorities") or ()) - set(PRIORITIES)
    if unknown or values.get("priorities") == []:
        raise OperatorError(f"priorities must be some of {', '.join(PRIORITIES)}")
    try:
        target.integrations.set_settings(name, values)
    except KeyError as exc:
        raise OperatorError(f"cannot set: {exc.args[0]}") from None
    return {"name": name, **values}


def set_upload_quota(target: Target, name: str, forms: int | None, size: int | None
                     ) -> dict[str, Any]:
    """An integration's own upload quotas: forms and declared bytes per UTC day (over
    the stack's UploadFormsPerDay and UploadBytesPerDay)."""
    if any(value is not None and value < 1 for value in (forms, size)):
        raise OperatorError("an upload quota is 1 or more (forms, or bytes)")
    try:
        target.integrations.set_upload_quota(name, forms, size)
    except KeyError as exc:
        raise OperatorError(f"cannot set: {exc.args[0]}") from None
    item = target.integrations.get(name) or {}
    settings = target.ctx.settings
    return {"name": name,
            "upload_forms": int(item.get("upload_forms") or settings.upload_forms_per_day),
            "upload_bytes": int(item.get("upload_bytes") or settings.upload_bytes_per_day)}


def list_keys(target: Target) -> list[dict[str, Any]]:
    """Every integration, its keys (never their hashes), quota (at most its share of the
    budget) and today's use."""
    day = utc_day(target.ctx.clock())  # quotas and budgets count the pipeline clock's day
    limit, settings = budget(target)["limit"], target.ctx.settings
    return [{**item, "daily_quota": _quota(target, item, limit),
             "quota_is_default": item.get("daily_quota") is None,
             "used_today": target.integrations.quota_used(item["name"], day),
             "upload_forms": int(item.get("upload_forms") or settings.upload_forms_per_day),
             "upload_bytes": int(item.get("upload_bytes") or settings.upload_bytes_per_day),
             "uploads_today": target.integrations.uploads_used(item["name"], day)}
            for item in target.integrations.list()]


def quota_warning(target: Target, integrations: list[dict[str, Any]]) -> str | None:
    """A warning when the active integrations' daily quotas add up to more than the
    stack's daily image budget: they could then spend all of it between them, and
    one tenant's looks wait QUEUED behind another's (None when they fit)."""
    active = [item for item in integrations if not item.get("revoked_at")]
    total, limit = sum(item["daily_quota"] for item in active), budget(target)["limit"]
    if total <= limit:
        return None
    return (f"warning: the active integrations' daily quotas add up to {total} images, more "
            f"than the stack's daily budget of {limit}: lower a quota (tryon keys create NAME "
            "--quota N), give each a share of the budget (tryon keys set NAME --budget-share "
            "F), or raise the budget (tryon budget set N)")


def revoke(target: Target, name: str, key_id: str | None) -> list[str]:
    try:
        return target.integrations.revoke(name, key_id, time.time())
    except KeyError as exc:
        raise OperatorError(f"cannot revoke: {exc.args[0]}") from None


def allow_principal(target: Target, name: str, principal: str) -> dict[str, Any]:
    """Let an IAM role or user act for an existing integration (SigV4 API); the one it
    acted for until now (`left`) no longer lists it. A role is kept as
    `arn:aws:iam::ACCT:role/NAME`: matched by account and name, whatever its path."""
    if target.integrations.get(name) is None:  # a typo would take the principal away
        raise OperatorError(f"cannot allow: no integration named {name!r}; create it with "
                            "`tryon keys create NAME`")
    left = target.integrations.allow_principal(name, principal, time.time())
    return {"name": name, "principal": role_of(principal), "left": left}


def revoke_principal(target: Target, name: str, principal: str) -> dict[str, Any]:
    try:
        target.integrations.revoke_principal(name, principal, time.time())
    except KeyError as exc:
        raise OperatorError(f"cannot revoke: {exc.args[0]}") from None
    return {"name": name, "principal": role_of(principal)}


def _quota(target: Target, item: dict[str, Any], daily_budget: int | None = None) -> int:
    """Its images per day: its quota (or the stack's default), at most its budget share."""
    quota = item.get("daily_quota")
    quota = target.ctx.settings.integration_daily_quota if quota is None else int(quota)
    share = item.get("budget_share")
    if share is None:
        return quota
    limit = budget(target)["limit"] if daily_budget is None else daily_budget
    return min(quota, int(float(share) * limit))


# --- budget ------------------------------------------------------------------------------

def budget(target: Target) -> dict[str, Any]:
    """Today's (UTC, on the pipeline's clock) images spent and the limit in force."""
    ctx = target.ctx
    day, limit = todays_budget(ctx, ctx.clock())
    spent = ctx.budget.spent(day)
    return {"day": day, "spent": spent["spent"], "limit": limit,
            "source": "DailyImageBudget" if ctx.budget.override() is None else "override",
            "stack_budget": ctx.settings.daily_image_budget, "reached_at": spent["reached_at"]}


def set_budget(target: Target, limit: int | None) -> dict[str, Any]:
    if limit is not None and limit < 0:
        raise OperatorError("a budget is a number of images, 0 or more")
    target.ctx.budget.set_override(limit)
    return budget(target)


# --- provider limits ---------------------------------------------------------------------

def limits(target: Target, *, read: bool = False) -> list[dict[str, Any]]:
    """Each model's limits in force and where they come from; `read` first asks the
    provider's limits API for every model (with the stack's provider key)."""
    ctx = target.ctx
    outcomes = provider_limits.refresh(ctx, force=True) if read else {}
    ctx.capacity.forget()
    return [{**capacity.as_dict(), **({"read": outcomes[model]} if model in outcomes else {})}
            for model, capacity in ctx.capacity.all().items()]


# --- text for people -------------------------------------------------------------------

def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch)) if epoch else "-"


def format_jobs(jobs: list[JobRecord]) -> str:
    if not jobs:
        return "no jobs"
    rows = [("JOB", "STATUS", "MODEL", "LOOK", "RECEIVED (UTC)", "OWNER / SOURCE")]
    for job in jobs:
        source = job.owner or (job.source or {}).get("key", "-")
        rows.append((job.job_id, job.status.value, job.model or "-", job.look_id or "-",
                     _when(job.timeline.get("received")), source))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(str(cell).ljust(width)
                               for cell, width in zip(row[:-1], widths, strict=True))
                     + "  " + str(row[-1]) for row in rows)


def format_job(details: dict[str, Any]) -> str:
    model = details.get("model") or "-"
    if details.get("requested_model") not in (None, model):
        model += f" (asked for {details['requested_model']})"
    source = details.get("source") or {}
    lines = [
        f"job        {details['job_id']}  {details['status']}"
        + (f" (waiting for {details['waiting_for']})" if details.get("waiting_for") else ""),
        f"look       {details.get('look_id') or '-'}"
        + (f"  batch {details['batch_id']}" if details.get("batch_id") else ""),
        f"source     s3://{source.get('bucket', '-')}/{source.get('key', '-')}",
        f"model      {model}",
    ]
    if details.get("owner"):
        lines.append(f"owner      {details['owner']}")
    for role, uri in (details.get("inputs") or {}).items():
        lines.append(f"{role:<10} {uri}")
    if details.get("attributes"):
        lines.append("attributes " + ", ".join(f"{k}={v}" for k, v in
                                               sorted(details["attributes"].items())))
    if details.get("error"):
        lines.append(f"error      {details['error'].get('code')}: "
                     f"{details['error'].get('message')}")
    if details.get("result"):
        lines.append(f"result     {details['result'].get('uri')}")
    timings = details.get("timings") or {}
    if "received" in timings:
        lines.append(f"received   {_when(timings['received'])}")
    for step, seconds in details["seconds_since_received"].items():
        if step != "received":
            lines.append(f"  +{seconds:8.1f} s  {step}")
    return "\n".join(lines)


def format_keys(integrations: list[dict[str, Any]]) -> str:
    if not integrations:
        return "no integrations yet: `tryon keys create NAME`"
    lines = []
    for item in integrations:
        state = f"revoked {_when(item['revoked_at'])}" if item.get("revoked_at") else "active"
        quota = f"{item['daily_quota']}{' (default)' if item['quota_is_default'] else ''}"
        instruction = "allowed" if item["allow_instruction"] else "off"
        of_budget = (f" (at most {float(item['budget_share']):g} of the budget)"
                     if item.get("budget_share") is not None else "")
        cap = (f"; at most {item['max_in_flight']} slots of a model"
               if item.get("max_in_flight") is not None else "")
        uploads = item.get("uploads_today") or {"forms": 0, "bytes": 0}
        lines.append(f"{item['name']}: {state}; {item['used_today']} of {quota} images "
                     f"used today (UTC){of_budget}; instruction {instruction}; share "
                     f"{item['share']:g}; priorities {', '.join(item['priorities'])}{cap}; "
                     f"uploads {uploads['forms']} of {item.get('upload_forms')} forms, "
                     f"{uploads['bytes']} of {item.get('upload_bytes')} bytes")
        for key in item["keys"]:
            revoked = f", revoked {_when(key['revoked_at'])}" if key.get("revoked_at") else ""
            lines.append(f"  key {key['key_id']}  created {_when(key['created_at'])}{revoked}")
        for arn in item.get("principals", ()):
            lines.append(f"  IAM principal {arn}")
    return "\n".join(lines)


def format_budget(state: dict[str, Any]) -> str:
    source = ("the stack's DailyImageBudget" if state["source"] == "DailyImageBudget" else
              f"the operator's override (the stack's DailyImageBudget is "
              f"{state['stack_budget']}; `tryon budget set --default` removes it)")
    return (f"{state['day']} (UTC): {state['spent']} of {state['limit']} images spent; "
            f"limit: {source}")


SOURCES = {"override": "the operator's ModelLimits", "provider": "the provider's limits API",
           "default": "the published table (nothing read yet)"}


def format_limits(models: list[dict[str, Any]]) -> str:
    lines = []
    for m in models:
        unit = "s" if m["period"] == 1 else "min" if m["period"] == 60 else f"{m['period']}s"
        queue = f", provider queue {m['queue']}" if m["queue"] is not None else ""
        ahead = f" + {m['ahead']} ahead" if m["ahead"] else ""
        lines.append(f"{m['model']:<20} {m['in_flight']} running{ahead}, "
                     f"{m['requests']}/{unit}{queue}; from {SOURCES[m['source']]}")
        if m["read_at"]:
            lines.append(f"{'':<20} read {_when(m['read_at'])}")
        if m["read_error"]:
            lines.append(f"{'':<20} last read failed: {m['read_error']['code']} "
                         "(the limits above stay in force)")
        if m["slowed"]:
            lines.append(f"{'':<20} slowed down: the provider answered Throttling.RateQuota")
    return "\n".join(lines)


# --- moving credentials out of the jobs table --------------------------------------------

# What a stack deployed before the credentials table kept in its jobs table.
CREDENTIAL_KINDS = ("INTEGRATIONS", "APIKEY#", "PRINCIPAL#", "QUOTA#", "BUDGET#LIMIT")


def migrate_credentials(target: Target) -> dict[str, int]:
    """Move integrations, key hashes, IAM principals, quota counters and the budget
    override from the jobs table (where stacks before the credentials table kept them)
    to the credentials table: copied, then deleted from the jobs table. Safe to run
    again; an item the credentials table already has is kept as it is there."""
    settings = target.ctx.settings
    if not settings.credentials_table or settings.credentials_table == settings.jobs_table:
        raise OperatorError("the stack has no credentials table yet: deploy this version "
                            "first (sam build && sam deploy)")
    dynamodb = target.session.resource("dynamodb")
    jobs, credentials = (dynamodb.Table(settings.jobs_table),
                         dynamodb.Table(settings.credentials_table))
    # A Scan, as `jobs list` does: once, by the operator, on their own credentials.
    condition = Attr("pk").begins_with(CREDENTIAL_KINDS[0])
    for kind in CREDENTIAL_KINDS[1:]:
        condition |= Attr("pk").begins_with(kind)
    moved: dict[str, int] = {}
    start = None
    while True:
        page = jobs.scan(FilterExpression=condition,
                         **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            try:
                credentials.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            jobs.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
            kind = next(k for k in CREDENTIAL_KINDS if item["pk"].startswith(k)).rstrip("#")
            moved[kind] = moved.get(kind, 0) + 1
        start = page.get("LastEvaluatedKey")
        if not start:
            return moved

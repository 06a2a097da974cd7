"""`tryon`: run the pipeline locally, or the provider emulator alone.

  tryon demo                      the sample looks, a kept-garment batch and a drop
  tryon local run --person P ...  your own images (or --manifest FILE --images DIR)
  tryon emulator --port N         the DashScope emulator as a server
  tryon local serve [--port N]    the local stack and its HTTP API, until interrupted
  tryon jobs|keys|data|budget|limits   operate a stack: --stack NAME or --local
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from tryon.job_record import JobStatus
from tryon.models.registry import MODEL_IDS
from tryon_ops import data
from tryon_ops import operations as ops

from tryon_local.driver import DEMO_RETIRED_MODEL, LookRequest, format_table, run, send_demo
from tryon_local.runtime import FAKE_CREDENTIALS, REGION, LocalOptions, LocalStack


def _progress(quiet: bool):  # progress goes to stderr so --json output stays clean
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return (lambda line: None) if quiet else say


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="where result images and notifications go (default: out/)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--provider-url", help="a DashScope-compatible base URL instead of the "
                        "embedded emulator (key from DASHSCOPE_API_KEY)")
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="run the emulator's clock (and the state machine's waits) this "
                        "many times faster (default 1: real provider timing)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="give up on jobs still open after this many seconds")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="a template parameter for the local stack, e.g. "
                        "InputTransport=provider-upload or FallbackModel= (repeatable)")
    parser.add_argument("--retire", action="append", default=[], metavar="MODEL",
                        choices=MODEL_IDS, help="the embedded emulator answers MODEL as "
                        "retired (repeatable)")


def _run(args: argparse.Namespace, send, retired: tuple[str, ...] = ()) -> int:
    say = _progress(args.json)
    started = time.monotonic()
    options = LocalOptions(
        provider_url=args.provider_url,
        api_key=os.environ.get("DASHSCOPE_API_KEY"),
        speedup=args.speedup,
        workdir=args.out / "local-stack",
        retired_models=(*retired, *args.retire),
        parameters=dict(item.split("=", 1) for item in args.parameter),
    )
    say("starting the local stack (moto + provider emulator) and deploying template.yaml")
    with LocalStack(options) as stack:
        say(f"stack up in {time.monotonic() - started:.1f} s; "
            f"provider: {args.provider_url or stack.emulator.base_url}")
        report = run(stack, send, args.out, timeout=args.timeout, progress=say)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
        print(f"\nresults and notifications in {args.out}/ "
              f"({time.monotonic() - started:.1f} s in all); "
              f"to look at them, open {args.out / 'index.html'} in a browser")
    return 0 if all(job["status"] == "SUCCEEDED" for job in report["jobs"]) else 1


def _serve(args: argparse.Namespace) -> int:
    """The local stack with its API, for integrations and `--local` commands to use."""
    say = _progress(False)
    workdir = args.out / "local-stack"
    state_file = workdir / ops.DEFAULT_STATE_FILE.name
    options = LocalOptions(speedup=args.speedup, api_port=args.port, workdir=workdir,
                           parameters=dict(item.split("=", 1) for item in args.parameter))
    say("starting the local stack (moto + provider emulator) and its API")
    stop = threading.Event()
    try:
        with LocalStack(options) as stack:
            # From here Ctrl-C (or SIGTERM) ends the wait below, and the stack stops.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            key = stack.create_api_key("local")
            stack.write_state(state_file)
            try:
                print(f"API: {stack.api_url}", flush=True)
                print(f"KEY: {key}", flush=True)
                # Any S3 client drops files into the local inbox (e.g. `aws s3 cp`).
                print(f"S3: {stack.endpoint} (region {REGION}, access key "
                      f"{FAKE_CREDENTIALS['aws_access_key_id']}, secret "
                      f"{FAKE_CREDENTIALS['aws_secret_access_key']})", flush=True)
                print(f"INBOX: s3://{stack.outputs['InboxBucketName']}", flush=True)
                local = "" if state_file == ops.DEFAULT_STATE_FILE else f" {state_file}"
                say(f"inbox: {stack.outputs['InboxBucketName']}; operate it with e.g. "
                    f"`tryon jobs list --local{local}`; Ctrl-C stops it")
                while not stop.wait(1):
                    pass
            finally:
                state_file.unlink(missing_ok=True)
                say("stopping the local stack")
    except KeyboardInterrupt:  # while it was starting: it has stopped itself
        return 130
    return 0


INSTRUCTION_HELP = ("let its looks carry a retailer's instruction (Qwen models), off unless "
                    "allowed: the text goes to the provider account every tenant shares")


def _add_operator_commands(commands: argparse._SubParsersAction) -> None:
    target = argparse.ArgumentParser(add_help=False)
    where = target.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", metavar="NAME", help="a deployed stack, by its name")
    where.add_argument("--local", nargs="?", const=ops.DEFAULT_STATE_FILE, type=Path,
                       metavar="STATE_FILE", help="the stack `tryon local serve` runs "
                       f"(default: {ops.DEFAULT_STATE_FILE})")
    target.add_argument("--region", help="with --stack: its region")
    target.add_argument("--profile", help="with --stack: the AWS profile to act with")
    target.add_argument("--json", action="store_true", help="print JSON")

    def command(group: argparse._SubParsersAction, name: str, handler, help: str
                ) -> argparse.ArgumentParser:
        parser = group.add_parser(name, parents=[target], help=help)
        parser.set_defaults(operate=handler)
        return parser

    jobs = commands.add_parser("jobs", help="list, show, watch, retry or cancel jobs and batches")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = command(jobs_commands, "list", _jobs_list, "jobs, newest first")
    listing.add_argument("--status", choices=[status.value for status in JobStatus])
    listing.add_argument("--batch", help="the jobs of this batch")
    listing.add_argument("--owner", metavar="INTEGRATION", help="the jobs of an integration")
    listing.add_argument("--limit", type=int, default=50)
    command(jobs_commands, "show", _jobs_show, "one job and its timings").add_argument("job_id")
    watch = command(jobs_commands, "watch", _jobs_watch,
                    "a batch's progress until every job has ended (exit 0: all succeeded)")
    watch.add_argument("batch_id")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between looks")
    watch.add_argument("--timeout", type=float, help="give up (exit 2) after this many seconds")
    command(jobs_commands, "retry", _jobs_retry, "a FAILED, TIMED_OUT or CANCELED job's look "
            "again, as a new job (attribute retry_of)").add_argument("job_id")
    command(jobs_commands, "cancel", _jobs_cancel,
            "a job the provider has not started").add_argument("job_id")
    cancel_batch = command(jobs_commands, "cancel-batch", _jobs_cancel_batch,
                           "every look of a batch the provider has not started")
    cancel_batch.add_argument("batch_id")
    cancel_batch.add_argument("--seconds", type=float, default=60.0,
                              help="cancel here this long at most; the stack's sweep "
                              "does the rest")
    command(jobs_commands, "retry-batch", _jobs_retry_batch, "a batch's FAILED and TIMED_OUT "
            "looks again, as a new batch linked to it").add_argument("batch_id")

    keys = commands.add_parser("keys", help="integrations' API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = command(keys_commands, "create", _keys_create,
                     "a new key for an integration (created if new); shown once")
    create.add_argument("name")
    create.add_argument("--quota", type=int, help="its images per UTC day (default: the "
                        "stack's IntegrationDailyQuota)")
    create.add_argument("--iam-principal", metavar="ARN",
                        help="also let this IAM role or user act for it (SigV4 API)")
    create.add_argument("--allow-instruction", action="store_true", help=INSTRUCTION_HELP)
    keys_set = command(keys_commands, "set", _keys_set, "change an integration's settings")
    keys_set.add_argument("name")
    keys_set.add_argument("--allow-instruction", action=argparse.BooleanOptionalAction,
                          help=INSTRUCTION_HELP)
    keys_set.add_argument("--share", type=float, metavar="WEIGHT",
                          help="its weight in the turns of waiting looks (default 1: equal "
                          "turns; 2: two turns to another's one)")
    keys_set.add_argument("--priorities", type=lambda text: text.split(","),
                          metavar="interactive,batch", help="the priorities its looks may "
                          "ask for (default both); a look asking for another is refused")
    keys_set.add_argument("--budget-share", type=float, metavar="FRACTION",
                          help="at most this fraction of the daily image budget (its quota "
                          "still applies); 0 removes the cap")
    keys_set.add_argument("--max-in-flight", type=int, metavar="N",
                          help="at most N of its looks hold a model's slots at once; its "
                          "others wait their turn (0 removes the cap)")
    keys_set.add_argument("--upload-forms", type=int, metavar="N", help="its upload forms "
                          "per UTC day (default: the stack's UploadFormsPerDay)")
    keys_set.add_argument("--upload-bytes", type=int, metavar="N", help="the bytes its upload "
                          "forms may declare per UTC day (default: UploadBytesPerDay)")
    command(keys_commands, "list", _keys_list,
            "integrations, keys, quotas, instruction allowed (no secrets)")
    revoke = command(keys_commands, "revoke", _keys_revoke,
                     "one key, or (no --key-id) every key and IAM principal of it")
    revoke.add_argument("name")
    revoke.add_argument("--key-id")
    for name, handler, what in (
            ("allow-principal", _keys_allow_principal, "let an IAM role or user act for an "
             "integration (SigV4 API), and for no other"),
            ("revoke-principal", _keys_revoke_principal, "stop one IAM role or user acting "
             "for an integration (its keys stay)")):
        principal = command(keys_commands, name, handler, what)
        principal.add_argument("name")
        principal.add_argument("arn", help="a role's ARN (matched by account and name, "
                               "whatever its path) or a user's")
    command(keys_commands, "migrate", _keys_migrate, "once, after deploying the version with "
            "the credentials table: move integrations, keys, principals, quotas and the "
            "budget override there from the jobs table")

    data_parser = commands.add_parser("data", help="erase an integration's data for good")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    erase = command(data_commands, "erase", _data_erase, "erase, with every S3 version: an "
                    "integration's everything, or one job, batch or upload")
    what = erase.add_mutually_exclusive_group(required=True)
    what.add_argument("--integration", metavar="NAME", help="all its uploads, jobs, batches, "
                      "manifests and results (its job records cut to their billing fields)")
    what.add_argument("--job", metavar="ID", help="one ended job")
    what.add_argument("--batch", metavar="ID", help="one ended batch and its jobs")
    what.add_argument("--upload", metavar="KEY", help="one upload (uploads/<integration>/...)")
    erase.add_argument("--and-keys", action="store_true", help="with --integration: also its "
                       "API keys, IAM principals and settings (it can no longer call)")

    budget = commands.add_parser("budget", help="the daily image budget")
    budget_commands = budget.add_subparsers(dest="budget_command", required=True)
    command(budget_commands, "show", _budget_show, "today's images spent and the limit")
    setting = command(budget_commands, "set", _budget_set,
                      "override the stack's DailyImageBudget, without a deployment")
    limit = setting.add_mutually_exclusive_group(required=True)
    limit.add_argument("limit", type=int, nargs="?", help="images per UTC day")
    limit.add_argument("--default", action="store_true",
                       help="remove the override: the stack's DailyImageBudget again")

    limits = commands.add_parser("limits", help="each model's provider limits in force")
    limits_commands = limits.add_subparsers(dest="limits_command", required=True)
    command(limits_commands, "show", _limits_show, "the limits in force and their source")
    command(limits_commands, "read", _limits_read,
            "ask the provider's limits API now (the sweep does hourly), then show them")


def _operate(args: argparse.Namespace) -> int:
    try:
        target = (ops.deployed_target(args.stack, args.region, args.profile) if args.stack
                  else ops.local_target(args.local))
        return args.operate(target, args)
    except ops.OperatorError as exc:
        print(f"tryon: {exc}", file=sys.stderr)
        return 2
    except ops.AWS_ERRORS as exc:
        print(f"tryon: AWS refused or failed: {exc}", file=sys.stderr)
        return 2


def _show(args: argparse.Namespace, document, text: str) -> int:
    print(json.dumps(document, indent=2, default=str) if args.json else text)
    return 0


def _jobs_list(target: ops.Target, args: argparse.Namespace) -> int:
    jobs = ops.list_jobs(target, status=args.status, batch=args.batch, owner=args.owner,
                         limit=args.limit)
    return _show(args, [ops.job_details(job) for job in jobs], ops.format_jobs(jobs))


def _jobs_show(target: ops.Target, args: argparse.Namespace) -> int:
    details = ops.job_details(ops.get_job(target, args.job_id))
    return _show(args, details, ops.format_job(details))


def _jobs_watch(target: ops.Target, args: argparse.Namespace) -> int:
    live = sys.stdout.isatty() and not args.json  # a bar redrawn in place; else a line each

    def show(view: dict) -> None:
        if live:
            print(f"\r\x1b[2K{ops.progress_line(view)}", end="", flush=True)
        else:
            print(ops.progress_line(view), file=sys.stderr if args.json else sys.stdout,
                  flush=True)

    try:
        view = ops.watch(target, args.batch_id, interval=args.interval, timeout=args.timeout,
                         show=show)
    except KeyboardInterrupt:  # stop watching; the batch goes on
        return 130
    finally:
        if live:
            print()
    _show(args, view, f"batch {view['batch_id']} {view['status']}")
    return 0 if view["status"] == "SUCCEEDED" else 1


def _jobs_retry(target: ops.Target, args: argparse.Namespace) -> int:
    new = ops.retry(target, args.job_id)
    return _show(args, new, f"job {new['job_id']} retries {new['retry_of']} (manifest "
                 f"{new['manifest']}); follow it with `tryon jobs show {new['job_id']}`")


def _jobs_cancel(target: ops.Target, args: argparse.Namespace) -> int:
    view = ops.cancel(target, args.job_id)
    return _show(args, view, f"job {view['job_id']} {view['status']}: "
                 f"{(view['error'] or {}).get('message', '')}")


def _jobs_cancel_batch(target: ops.Target, args: argparse.Namespace) -> int:
    state = ops.cancel_batch(target, args.batch_id, args.seconds)
    return _show(args, state, ops.format_cancel(state))


def _jobs_retry_batch(target: ops.Target, args: argparse.Namespace) -> int:
    new = ops.retry_batch(target, args.batch_id)
    left = (f"; {len(new['left_out'])} left out (failed before their look was read)"
            if new["left_out"] else "")
    return _show(args, new, f"batch {new['batch_id']} retries {new['looks']} looks of "
                 f"{new['retry_of']} ({new['file']}){left}; follow it with `tryon jobs watch "
                 f"{new['batch_id']}`")


def _keys_create(target: ops.Target, args: argparse.Namespace) -> int:
    made = ops.create_key(target, args.name, args.quota, args.iam_principal,
                          args.allow_instruction)
    lines = [f"integration {made['name']}: new key {made['key_id']}, shown only now "
             "(keep it as a secret):", made["key"],
             f"send it as `Authorization: Bearer <key>`, e.g. curl -H \"Authorization: Bearer "
             f"$TRYON_KEY\" {made['api_url'] or '<ApiUrl>'}/jobs",
             f"daily quota: {made['daily_quota']} images",
             f"instruction: {'allowed' if made['allow_instruction'] else 'off'}"]
    if made["principal"]:
        lines.append(f"{made['principal']} may act for {made['name']} through the IAM API "
                     "(SigV4, output IamApiUrl)")
    _warn_of_quotas(target, ops.list_keys(target))
    return _show(args, made, "\n".join(lines))


def _keys_set(target: ops.Target, args: argparse.Namespace) -> int:
    values = {name: value for name, value in (
        ("allow_instruction", args.allow_instruction), ("share", args.share),
        ("priorities", args.priorities), ("budget_share", args.budget_share),
        ("max_in_flight", args.max_in_flight)) if value is not None}
    uploads = args.upload_forms is not None or args.upload_bytes is not None
    if not values and not uploads:
        raise ops.OperatorError("nothing to set: give --allow-instruction, --share, "
                                "--priorities, --budget-share, --max-in-flight, "
                                "--upload-forms or --upload-bytes")
    for cap in ("budget_share", "max_in_flight"):
        if values.get(cap) == 0:
            values[cap] = None  # no cap
    changed = ops.set_settings(target, args.name, values) if values else {"name": args.name}
    lines = [f"{name.replace('_', ' ')} {_setting(value)}" for name, value in values.items()]
    if uploads:
        quotas = ops.set_upload_quota(target, args.name, args.upload_forms, args.upload_bytes)
        changed.update(quotas)
        lines.append(f"upload quota {quotas['upload_forms']} forms and "
                     f"{quotas['upload_bytes']} bytes a day")
    _warn_of_quotas(target, ops.list_keys(target))
    return _show(args, changed, f"integration {args.name}: " + "; ".join(lines))


def _setting(value) -> str:
    if isinstance(value, bool):
        return "allowed" if value else "off"
    if isinstance(value, list):
        return ", ".join(value)
    return "no cap" if value is None else f"{value:g}"


def _keys_list(target: ops.Target, args: argparse.Namespace) -> int:
    integrations = ops.list_keys(target)
    _warn_of_quotas(target, integrations)
    return _show(args, integrations, ops.format_keys(integrations))


def _warn_of_quotas(target: ops.Target, integrations: list[dict]) -> None:
    warning = ops.quota_warning(target, integrations)
    if warning:
        print(warning, file=sys.stderr)


def _keys_revoke(target: ops.Target, args: argparse.Namespace) -> int:
    revoked = ops.revoke(target, args.name, args.key_id)
    what = (f"key {args.key_id}" if args.key_id else
            f"every key ({', '.join(revoked) or 'none'}) and IAM principal")
    return _show(args, {"name": args.name, "revoked_keys": revoked},
                 f"revoked {what} of {args.name}")


def _keys_allow_principal(target: ops.Target, args: argparse.Namespace) -> int:
    allowed = ops.allow_principal(target, args.name, args.arn)
    left = f"; it no longer acts for {allowed['left']}" if allowed["left"] else ""
    return _show(args, allowed, f"{allowed['principal']} may act for {args.name} through "
                 f"the IAM API (SigV4, output IamApiUrl){left}")


def _keys_revoke_principal(target: ops.Target, args: argparse.Namespace) -> int:
    revoked = ops.revoke_principal(target, args.name, args.arn)
    return _show(args, revoked, f"{revoked['principal']} no longer acts for {args.name}")


def _keys_migrate(target: ops.Target, args: argparse.Namespace) -> int:
    moved = ops.migrate_credentials(target)
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(moved.items()))
    return _show(args, moved, f"moved to the credentials table: {counts or 'nothing'}")


def _data_erase(target: ops.Target, args: argparse.Namespace) -> int:
    if args.and_keys and not args.integration:
        raise ops.OperatorError("--and-keys goes with --integration NAME")
    erased = data.erase(target, integration=args.integration, job=args.job, batch=args.batch,
                        upload=args.upload, and_keys=args.and_keys)
    return _show(args, erased, data.format_erased(erased))


def _budget_show(target: ops.Target, args: argparse.Namespace) -> int:
    state = ops.budget(target)
    return _show(args, state, ops.format_budget(state))


def _budget_set(target: ops.Target, args: argparse.Namespace) -> int:
    state = ops.set_budget(target, None if args.default else args.limit)
    return _show(args, state, ops.format_budget(state) + "\nlooks waiting for the budget "
                 "start within a minute of it being raised (the sweep admits them)")


def _limits_show(target: ops.Target, args: argparse.Namespace) -> int:
    models = ops.limits(target)
    return _show(args, models, ops.format_limits(models))


def _limits_read(target: ops.Target, args: argparse.Namespace) -> int:
    models = ops.limits(target, read=True)
    return _show(args, models, ops.format_limits(models))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tryon", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the sample looks end to end")
    _add_common(demo)

    local = commands.add_parser("local", help="run your own images through the local stack")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    run = local_commands.add_parser("run", help="one look from your files, or a manifest")
    run.add_argument("--manifest", type=Path, help="a manifest (see README) to run as is")
    run.add_argument("--images", type=Path,
                     help="with --manifest: where the images it names are (by key or name)")
    run.add_argument("--person", type=Path)
    run.add_argument("--top", type=Path)
    run.add_argument("--bottom", type=Path)
    run.add_argument("--dress", type=Path, help="a dress or jumpsuit, worn alone")
    run.add_argument("--keep", choices=["top", "bottom"],
                     help="keep the person's own top or bottom")
    run.add_argument("--model", choices=MODEL_IDS)
    run.add_argument("--instruction", help="Qwen models: the retailer's styling note (allowed "
                     "on this local stack: AllowManifestInstructions=true)")
    run.add_argument("--resolution", type=int, choices=[-1, 1024, 1280])
    run.add_argument("--no-restore-face", action="store_true",
                     help="let the model generate a new face")
    run.add_argument("--look-id", default="my-look")
    _add_common(run)
    serve = local_commands.add_parser("serve", help="the local stack and its HTTP API, "
                                      "until interrupted (prints API: and KEY: lines)")
    serve.add_argument("--port", type=int, default=0, help="the API's port (default: any)")
    serve.add_argument("--speedup", type=float, default=1.0,
                       help="run the emulator's clock and the waits this much faster")
    serve.add_argument("--out", type=Path, default=Path("out"),
                       help="logs and the state file go to OUT/local-stack (default: out/)")
    serve.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                       help="a template parameter for the local stack (repeatable)")
    _add_operator_commands(commands)

    commands.add_parser("emulator", help="serve the provider emulator (see --help)",
                        add_help=False)

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["emulator"]:
        from tryon_local.emulator import main as emulator_main

        return emulator_main(argv[1:])
    args = parser.parse_args(argv)
    if hasattr(args, "operate"):
        if args.local and (args.region or args.profile):
            parser.error("--region and --profile go with --stack")
        return _operate(args)
    if any("=" not in item for item in args.parameter):
        parser.error("--parameter takes NAME=VALUE")
    if getattr(args, "local_command", None) == "serve":
        return _serve(args)
    if args.command == "demo":
        return _run(args, send_demo, retired=() if args.provider_url else (DEMO_RETIRED_MODEL,))
    if args.manifest:
        if args.person or args.top or args.bottom or args.dress:
            parser.error("--manifest names its own images: drop --person/--top/--bottom/--dress")
        if not args.manifest.is_file():
            parser.error(f"{args.manifest}: no such file")
        images = args.images or args.manifest.parent
        return _run(args, lambda driver: [driver.submit_manifest_file(args.manifest, images)])
    if not args.person or not (args.top or args.bottom or args.dress):
        parser.error("give --person and --top and/or --bottom, or --dress (or --manifest)")
    for path in (args.person, args.top, args.bottom, args.dress):
        if path and not path.is_file():
            parser.error(f"{path}: no such file")
    if args.instruction:  # asked for on the command line: allowed on this local stack
        args.parameter.insert(0, "AllowManifestInstructions=true")
    look = LookRequest(
        args.look_id, args.person, top=args.top, bottom=args.bottom, dress=args.dress,
        keep=args.keep, model=args.model, resolution=args.resolution,
        restore_face=False if args.no_restore_face else None, instruction=args.instruction)
    return _run(args, lambda driver: [driver.submit(look)])


if __name__ == "__main__":
    sys.exit(main())

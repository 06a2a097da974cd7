"""`tryon`: run the pipeline locally, or the provider emulator alone.

  tryon demo                      the sample looks, a kept-garment batch and a drop
  tryon local run --person P ...  your own images (or --manifest FILE --images DIR)
  tryon emulator --port N         the DashScope emulator as a server
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tryon.models.registry import MODEL_IDS

from tryon_local.driver import DEMO_RETIRED_MODEL, LookRequest, format_table, run, send_demo
from tryon_local.runtime import LocalOptions, LocalStack


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
    run.add_argument("--instruction", help="Qwen models: words appended to the instruction")
    run.add_argument("--resolution", type=int, choices=[-1, 1024, 1280])
    run.add_argument("--no-restore-face", action="store_true",
                     help="let the model generate a new face")
    run.add_argument("--look-id", default="my-look")
    _add_common(run)

    commands.add_parser("emulator", help="serve the provider emulator (see --help)",
                        add_help=False)

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["emulator"]:
        from tryon_local.emulator import main as emulator_main

        return emulator_main(argv[1:])
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.parameter):
        parser.error("--parameter takes NAME=VALUE")
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
    look = LookRequest(
        args.look_id, args.person, top=args.top, bottom=args.bottom, dress=args.dress,
        keep=args.keep, model=args.model, resolution=args.resolution,
        restore_face=False if args.no_restore_face else None, instruction=args.instruction)
    return _run(args, lambda driver: [driver.submit(look)])


if __name__ == "__main__":
    sys.exit(main())

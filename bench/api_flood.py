"""A flood against the HTTP API from one client, and what another client sees meanwhile.

    .venv/bin/python bench/api_flood.py [--seconds 20] [--flooders 8]

The embedded stack (template defaults: the firewall's ApiRequestsPerMinute) serves
the bearer API on 127.0.0.1. A good client (source 127.0.0.1, with its key) asks
`GET /v1/jobs` twice a second throughout; a flooder (source 127.0.0.2, `--flooders`
threads, as fast as they can) sends, phase by phase: nothing (the baseline), requests
without a key, then well-formed keys that are not known (a new one each request).
Per phase: the flooder's requests by answer, the functions they ran (authorizer, API),
and the good client's answers and latency. Writes bench/results/api_flood.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from support import RESULTS, machine, start_stack  # noqa: E402

GOOD_EVERY_SECONDS = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--flooders", type=int, default=8, help="flooding threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        stack = start_stack(speedup=1.0, seed=11, workdir=Path(workdir))
        try:
            key = stack.create_api_key("good-client")
            limit = int(stack.stack.parameters.get("ApiRequestsPerMinute", 0) or 0) or None
            phases = {}
            for phase, flood in (("baseline", None), ("no key", lambda: {}),
                                 ("unknown keys", lambda: {"authorization": (
                                     f"Bearer tryon_{secrets.token_hex(4)}_"
                                     f"{secrets.token_urlsafe(32)}")})):
                phases[phase] = run_phase(stack, key, flood, args)
                print(phase, json.dumps(phases[phase]), flush=True)
                time.sleep(61)  # the firewall's window: each phase starts unblocked
        finally:
            stack.stop()
    report = {"command": "bench/api_flood.py", "machine": machine(), "seconds": args.seconds,
              "flooders": args.flooders, "requests_per_minute_limit": limit or 1200,
              "phases": phases}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_flood.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def run_phase(stack, key: str, flood, args) -> dict:
    url = f"{stack.api_url}/jobs"
    invoked_before = invocations(stack)
    stop = time.monotonic() + args.seconds
    flooded: Counter = Counter()
    lock = threading.Lock()

    def flooder() -> None:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"),
                          timeout=10) as client:
            while time.monotonic() < stop:
                status = client.get(url, headers=flood()).status_code
                with lock:
                    flooded[status] += 1

    threads = [threading.Thread(target=flooder) for _ in range(args.flooders if flood else 0)]
    for thread in threads:
        thread.start()
    good: Counter = Counter()
    latencies = []
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1"),
                      timeout=10) as client:
        while time.monotonic() < stop:
            started = time.monotonic()
            status = client.get(url, headers={"authorization": f"Bearer {key}"}).status_code
            latencies.append(time.monotonic() - started)
            good[status] += 1
            time.sleep(max(0.0, GOOD_EVERY_SECONDS - (time.monotonic() - started)))
    for thread in threads:
        thread.join()
    ran = {name: count - invoked_before.get(name, 0)
           for name, count in invocations(stack).items()}
    return {
        "flood": {"sent": sum(flooded.values()), "by_status": dict(sorted(flooded.items())),
                  "per_second": round(sum(flooded.values()) / args.seconds, 1)},
        "functions_run": {name: n for name, n in ran.items() if n},
        "good_client": {"sent": sum(good.values()), "by_status": dict(sorted(good.items())),
                        "latency_ms": {"median": round(statistics.median(latencies) * 1000, 1),
                                       "p95": round(sorted(latencies)[
                                           int(0.95 * (len(latencies) - 1))] * 1000, 1),
                                       "max": round(max(latencies) * 1000, 1)}}}


def invocations(stack) -> dict[str, int]:
    """Invocations so far of the API's two functions."""
    counts = stack.lambdas.invocations
    return {name: counts.get(stack.stack.refs[name], 0)
            for name in ("AuthorizerFunction", "ApiFunction")}


if __name__ == "__main__":
    raise SystemExit(main())

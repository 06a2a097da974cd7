"""One warm "Lambda container": imports a handler once and serves invocations.

Started by `lambdas.FunctionPool` with the function's environment. Requests
arrive as JSON lines on stdin; answers leave as JSON lines on the file
descriptor given in argv[2]. The handler's own stdout (Powertools logs) goes to
stderr, which the pool keeps as the function's log.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass


@dataclass
class LambdaContext:
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def main() -> None:
    handler_path, answer_fd = sys.argv[1], int(sys.argv[2])
    answers = os.fdopen(answer_fd, "w", buffering=1)
    sys.stdout = sys.stderr  # keep the answer channel clean
    if os.environ.get("POLL_SCHEDULE"):  # a benchmark's comparison (bench/polling.py)
        from tryon_local.comparison_schedules import install

        install(os.environ["POLL_SCHEDULE"])
    module_name, function_name = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name=name,
            function_version="$LATEST",
            invoked_function_arn=request["function_arn"],
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            aws_request_id=request["request_id"],
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name="local",
            deadline_ms=int(time.time() * 1000) + request["timeout_ms"],
        )
        try:
            answer = {"ok": True, "result": handler(request["event"], context)}
        except Exception as exc:
            answer = {"ok": False, "error": {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }}
            traceback.print_exc()
        sys.stderr.flush()
        # The container's peak resident memory so far, as Lambda's REPORT line gives it
        # ("Max Memory Used"): VmHWM, which exec resets (ru_maxrss keeps the parent's).
        answer["max_rss_kb"] = peak_rss_kb()
        answers.write(json.dumps(answer, default=str) + "\n")


def peak_rss_kb() -> int:
    """This process's peak resident memory (KB)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux: the process's own count
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()

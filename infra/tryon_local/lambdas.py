"""Runs the project's real Lambda handlers for moto, the way Lambda would.

moto needs Docker to run Lambda code; without it every invoke goes through
`moto.awslambda.models.LambdaFunction._invoke_lambda`. We replace that one
private method: each function gets warm worker processes (`lambda_worker.py`)
started with the function's own environment from the template, reused across
invocations and added when invocations overlap, like Lambda's containers.
moto is pinned, and `tests/unit/test_moto_hook.py` fails loudly if the hook moves.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MAX_WORKERS_PER_FUNCTION = 10
READY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    timeout: int
    memory: int
    environment: tuple[tuple[str, str], ...]

    @classmethod
    def from_moto(cls, function: Any) -> FunctionSpec:
        return cls(
            name=function.function_name,
            arn=function.function_arn,
            handler=function.handler,
            timeout=int(function.timeout),
            memory=int(function.memory_size),
            environment=tuple(sorted((function.environment_vars or {}).items())),
        )

    @classmethod
    def from_api(cls, config: dict[str, Any]) -> FunctionSpec:
        """From a Lambda API FunctionConfiguration (list_functions, get_function)."""
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            timeout=int(config["Timeout"]),
            memory=int(config["MemorySize"]),
            environment=tuple(sorted(config.get("Environment", {}).get("Variables", {})
                                     .items())),
        )


class WorkerDied(RuntimeError):
    pass


class _Worker:
    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], log: IO[str],
                 overrides: dict[str, str]) -> None:
        read_fd, write_fd = os.pipe()
        env = {
            **base_env,
            **dict(spec.environment),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "_HANDLER": spec.handler,
            **overrides,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tryon_local.lambda_worker", spec.handler, str(write_fd)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, env=env, pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self._answers = os.fdopen(read_fd, "r")
        self._read(READY_TIMEOUT_SECONDS)

    def _read(self, timeout: float) -> dict[str, Any]:
        ready, _, _ = select.select([self._answers], [], [], timeout)
        if not ready:
            raise TimeoutError
        line = self._answers.readline()
        if not line:
            raise WorkerDied(f"worker exited with {self.process.wait()}")
        return json.loads(line)

    def invoke(self, spec: FunctionSpec, event: Any, request_id: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({
            "event": event, "request_id": request_id, "function_arn": spec.arn,
            "timeout_ms": spec.timeout * 1000}) + "\n")
        self.process.stdin.flush()
        return self._read(spec.timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._answers.close()
        if self.process.stdin:
            self.process.stdin.close()


class LambdaRuntime:
    """Warm workers per function; `invoke` has the shape moto's hook expects."""

    def __init__(self, base_env: dict[str, str], log_dir: Path,
                 overrides: dict[str, str] | None = None) -> None:
        self._base_env = base_env
        self._overrides = overrides or {}  # win over the template's variables (tests)
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        # Keyed by function name: one pool of warm workers per function.
        self._idle: dict[str, list[_Worker]] = {}
        self._busy: Counter[str] = Counter()
        self.invocations: Counter[str] = Counter()  # by function name, for the benchmarks
        # Function name -> the highest "Max Memory Used" (MB) of its containers.
        self.peak_memory_mb: dict[str, float] = {}
        self._all: list[_Worker] = []
        self._logs: dict[str, IO[str]] = {}
        self._lock = threading.Condition()

    def _log(self, name: str) -> IO[str]:
        if name not in self._logs:
            self._logs[name] = (self.log_dir / f"{name}.log").open("a", buffering=1)
        return self._logs[name]

    def _take(self, spec: FunctionSpec) -> _Worker:
        with self._lock:
            while True:
                idle = self._idle.setdefault(spec.name, [])
                if idle:
                    worker = idle.pop()
                    self._busy[spec.name] += 1
                    return worker
                if self._busy[spec.name] < MAX_WORKERS_PER_FUNCTION:
                    self._busy[spec.name] += 1
                    break
                self._lock.wait()
        try:  # cold start outside the lock
            worker = _Worker(spec, self._base_env, self._log(spec.name), self._overrides)
        except BaseException:
            with self._lock:
                self._busy[spec.name] -= 1
                self._lock.notify_all()
            raise
        with self._lock:
            self._all.append(worker)
        return worker

    def _give_back(self, spec: FunctionSpec, worker: _Worker | None) -> None:
        with self._lock:
            self._busy[spec.name] -= 1
            if worker is not None:
                self._idle[spec.name].append(worker)
            self._lock.notify_all()

    def warm(self, spec: FunctionSpec, count: int = 1) -> None:
        """Start `count` workers for the function (like provisioned concurrency)."""
        workers = [self._take(spec) for _ in range(min(count, MAX_WORKERS_PER_FUNCTION))]
        for worker in workers:
            self._give_back(spec, worker)

    def invoke(self, spec: FunctionSpec, event: Any) -> tuple[str, bool, str]:
        """Run one invocation: (payload JSON, whether it is a function error, log tail)."""
        request_id = str(uuid.uuid4())
        with self._lock:
            self.invocations[spec.name] += 1
        worker = self._take(spec)
        try:
            answer = worker.invoke(spec, event, request_id)
        except (TimeoutError, WorkerDied) as exc:
            worker.stop()
            self._give_back(spec, None)
            if isinstance(exc, TimeoutError):
                error = {"errorType": "Sandbox.Timedout",
                         "errorMessage": f"Task timed out after {spec.timeout} seconds"}
            else:
                error = {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
            return json.dumps(error), True, ""
        self._give_back(spec, worker)
        if "max_rss_kb" in answer:
            with self._lock:
                self.peak_memory_mb[spec.name] = max(self.peak_memory_mb.get(spec.name, 0.0),
                                                     round(answer["max_rss_kb"] / 1024, 1))
        if answer["ok"]:
            return json.dumps(answer["result"]), False, ""
        return json.dumps(answer["error"]), True, ""

    def stop(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
            self._idle.clear()
        for worker in workers:
            worker.stop()
        for log in self._logs.values():
            log.close()


def install_moto_hook(runtime: LambdaRuntime) -> None:
    """Route moto's Lambda invocations to `runtime` (see the module docstring)."""
    from moto.awslambda.models import LambdaFunction

    if not callable(getattr(LambdaFunction, "_invoke_lambda", None)):
        raise RuntimeError(
            "moto.awslambda.models.LambdaFunction._invoke_lambda is gone: the pinned moto "
            "version changed; update infra/tryon_local/lambdas.py"
        )

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return runtime.invoke(FunctionSpec.from_moto(self), {} if event is None else event)

    LambdaFunction._invoke_lambda = _invoke_lambda

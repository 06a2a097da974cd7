"""Plays EventBridge for the template's functions: schedules (`ScheduleV2`) and
rules on Step Functions execution status changes (`EventBridgeRule`).

moto stores schedules and rules but never fires them, and its Step Functions
emits no events. Here a thread per schedule invokes its function at the
schedule's rate (sped up like the rest of the local clock), and a thread per
rule watches the state machine's executions through the real API and invokes
the function with the event EventBridge would deliver.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
WATCH_INTERVAL_SECONDS = 0.5


class _Loop:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.invocations = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval()):
            try:
                self.tick()
            except Exception:  # keep going, as EventBridge does; the error is logged
                if not self._stop.is_set():
                    log.exception("%s failed", self._thread.name)

    def interval(self) -> float:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError


class ScheduledInvoker(_Loop):
    """EventBridge Scheduler: invoke a function with a fixed input at a fixed rate."""

    def __init__(self, session: Any, schedule: dict[str, Any], speedup: float) -> None:
        super().__init__(f"schedule-{schedule['function']}")
        self._lambda = session.client("lambda")
        self.schedule = schedule
        self._speedup = speedup

    def interval(self) -> float:
        return self.schedule["seconds"] / self._speedup

    def tick(self) -> None:
        self.invocations += 1
        self._lambda.invoke(FunctionName=self.schedule["function"],
                            Payload=self.schedule["input"].encode())


class ExecutionStatusRule(_Loop):
    """An EventBridge rule on `aws.states` execution status changes."""

    def __init__(self, session: Any, rule: dict[str, Any], region: str) -> None:
        super().__init__(f"rule-{rule['function']}")
        pattern = rule["pattern"]
        if pattern.get("source") != ["aws.states"] or pattern.get("detail-type") != [
                EXECUTION_STATUS_CHANGE]:
            raise ValueError(f"only Step Functions status-change rules are played locally: "
                             f"{pattern}")
        self._sfn = session.client("stepfunctions")
        self._lambda = session.client("lambda")
        self._function = rule["function"]
        self._machines = pattern["detail"]["stateMachineArn"]
        self._statuses = pattern["detail"]["status"]
        self._region = region
        self._seen: set[str] = set()

    def interval(self) -> float:
        return WATCH_INTERVAL_SECONDS

    def tick(self) -> None:
        for machine in self._machines:
            for status in self._statuses:
                pages = self._sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine, statusFilter=status)
                for execution in (e for page in pages for e in page["executions"]):
                    if execution["executionArn"] not in self._seen:
                        self._seen.add(execution["executionArn"])
                        self._deliver(machine, execution)

    def _deliver(self, machine: str, execution: dict[str, Any]) -> None:
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": EXECUTION_STATUS_CHANGE,
            "source": "aws.states", "account": machine.split(":")[4],
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region, "resources": [execution["executionArn"]],
            "detail": {
                "executionArn": execution["executionArn"], "stateMachineArn": machine,
                "name": execution["name"], "status": execution["status"],
                "startDate": int(execution["startDate"].timestamp() * 1000),
                "stopDate": int(execution["stopDate"].timestamp() * 1000)
                if execution.get("stopDate") else None,
            },
        }
        self.invocations += 1
        self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())

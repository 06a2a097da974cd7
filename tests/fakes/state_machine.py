"""The job's real state machine definition (infra/statemachine/tryon_job.asl.json),
run in memory on the stages: Choice, Wait (on the test's clock), Task with its Retry
and Catch matched by the error's class name as Lambda reports it, Succeed, Fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tryon.job_record import WorkflowState
from tryon.stages import calling, completion, polling

DEFINITION = json.loads((Path(__file__).resolve().parents[2] / "infra" / "statemachine"
                         / "tryon_job.asl.json").read_text())


def steps(stack: Any) -> dict[str, Callable[[dict], dict]]:
    """The function each Task state invokes, as its handler would run the stage."""
    ctx = stack.ctx

    def state(event: dict) -> WorkflowState:
        return WorkflowState.from_event(event)

    return {
        "${CallFunctionArn}": lambda e: calling.call_model(ctx, state(e)).to_event(),
        "${PollFunctionArn}": lambda e: polling.poll(ctx, state(e)).to_event(),
        "${FinalizeFunctionArn}": lambda e: completion.finalize(ctx, state(e)),
        "${RecordFailureFunctionArn}": lambda e: completion.record_failure(ctx, state(e)),
    }


def _matches(choice: dict, data: dict) -> bool:
    if "Or" in choice:
        return any(_matches(c, data) for c in choice["Or"])
    return data.get(choice["Variable"].removeprefix("$.")) == choice["StringEquals"]


def run(stack: Any, payload: dict, max_states: int = 500) -> tuple[str, dict, list[str]]:
    """Run one execution to its end: (Succeed or Fail state's name, output, states seen)."""
    functions, data = steps(stack), dict(payload)
    name, seen = DEFINITION["StartAt"], []
    for _ in range(max_states):
        seen.append(name)
        spec = DEFINITION["States"][name]
        kind = spec["Type"]
        if kind in ("Succeed", "Fail"):
            return name, data, seen
        if kind == "Choice":
            name = next((c["Next"] for c in spec["Choices"] if _matches(c, data)),
                        spec.get("Default"))
            continue
        if kind == "Wait":
            stack.advance(float(data[spec["SecondsPath"].removeprefix("$.")]))
            name = spec["Next"]
            continue
        data, name = _task(stack, spec, functions[spec["Parameters"]["FunctionName"]], data)
    raise AssertionError(f"the execution did not end within {max_states} states: {seen[-10:]}")


def _task(stack: Any, spec: dict, function: Callable[[dict], dict], data: dict
          ) -> tuple[dict, str]:
    attempts: dict[int, int] = {}
    while True:
        try:
            return function(dict(data)), spec["Next"]
        except Exception as exc:  # as Lambda reports it: errorType is the class name
            error = type(exc).__name__
            retry = next((i for i, r in enumerate(spec.get("Retry", []))
                          if error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"]),
                         None)
            if retry is not None and attempts.get(retry, 0) < spec["Retry"][retry]["MaxAttempts"]:
                attempts[retry] = attempts.get(retry, 0) + 1
                stack.advance(spec["Retry"][retry]["IntervalSeconds"])
                continue
            catch = next((c for c in spec.get("Catch", []) if "States.ALL" in c["ErrorEquals"]
                          or error in c["ErrorEquals"]), None)
            if catch is None:
                raise
            failure = {"Error": error, "Cause": json.dumps({"errorMessage": str(exc)})}
            return {**data, catch["ResultPath"].removeprefix("$."): failure}, catch["Next"]

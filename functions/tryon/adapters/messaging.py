"""Adapters for what the pipeline tells others: notifications (SNS and
EventBridge), Step Functions executions, and jobs handed between functions
through SQS."""

from __future__ import annotations

import json
from typing import Any

import boto3


class Notifier:
    """A notification goes to the SNS topic (people, queues) and, as the same JSON,
    onto the EventBridge bus (integrations' rules), with its `event` as detail-type."""

    SOURCE = "tryon"

    def __init__(self, topic_arn: str, bus_name: str = "", sns: Any = None,
                 events: Any = None) -> None:
        self._topic_arn = topic_arn
        self._bus_name = bus_name
        self._sns = sns or boto3.client("sns")
        self._events = events or (boto3.client("events") if bus_name else None)

    def publish(self, body: dict[str, Any], attributes: dict[str, str]) -> str:
        message = json.dumps(body, sort_keys=True)
        if self._events:
            # First, so that a failure here leaves nothing sent: the caller's retry
            # then sends both (a failure on SNS after it repeats the event).
            answer = self._events.put_events(Entries=[{
                "EventBusName": self._bus_name, "Source": self.SOURCE,
                "DetailType": body["event"], "Detail": message}])
            if answer.get("FailedEntryCount"):
                raise RuntimeError(f"notification event not put: {answer['Entries']}")
        return self._sns.publish(
            TopicArn=self._topic_arn,
            Message=message,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in attributes.items()
            },
        )["MessageId"]


class Workflow:
    """The per-job polling workflow (a Step Functions state machine)."""

    def __init__(self, state_machine_arn: str, sfn: Any = None) -> None:
        self._arn = state_machine_arn
        self._sfn = sfn or boto3.client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start the execution named `name`; a second start of the same name is a no-op."""
        try:
            return self._sfn.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )["executionArn"]
        except self._sfn.exceptions.ExecutionAlreadyExists:
            execution = self._arn.replace(":stateMachine:", ":execution:") + f":{name}"
            return execution


class JobQueue:
    """Hands jobs to another function through its SQS queue (SQS's retries behind
    it): admitted jobs to the submit function, which alone holds the provider key;
    jobs whose inputs must be prepared again to the intake function, which alone
    decodes images."""

    def __init__(self, queue_url: str, kind: str, sqs: Any = None) -> None:
        self._queue_url = queue_url
        self._kind = kind  # the message's one key: "admit" or "prepare"
        self._sqs = sqs or boto3.client("sqs")

    def send(self, job_ids: list[str]) -> None:
        for start in range(0, len(job_ids), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps({self._kind: job_id})}
                       for i, job_id in enumerate(job_ids[start:start + 10])]
            failed = self._sqs.send_message_batch(QueueUrl=self._queue_url,
                                                  Entries=entries).get("Failed")
            if failed:
                raise RuntimeError(f"{self._kind} messages not queued: {failed}")

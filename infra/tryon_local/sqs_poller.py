"""Plays Lambda's SQS poller for the event source mappings of the template.

moto's own mapping invokes the function inside SendMessage, one message at a
time, and ignores partial batch responses. Here, as in AWS: messages are
received in batches through the real SQS API, the function is invoked through
the real Lambda API, successful messages are deleted, and failed ones
(`batchItemFailures`, or the whole batch on a function error) stay in the queue
until their visibility timeout ends, then go to the DLQ after maxReceiveCount.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

POLLERS_PER_MAPPING = 2  # Lambda starts with several concurrent pollers per queue


class SqsPoller:
    def __init__(self, session: Any, mapping: dict[str, Any], region: str) -> None:
        self._sqs = session.client("sqs")
        self._lambda = session.client("lambda")
        self._mapping = mapping
        self._region = region
        self._queue_url = self._sqs.get_queue_url(
            QueueName=mapping["queue_arn"].rsplit(":", 1)[-1])["QueueUrl"]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-poller-{mapping['function']}-{i}",
                             daemon=True)
            for i in range(POLLERS_PER_MAPPING)
        ]
        self.batches = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:  # keep polling, as Lambda does; the error is in the log
                if not self._stop.is_set():
                    log.exception("SQS poller for %s failed", self._mapping["function"])
                    self._stop.wait(1)

    def poll_once(self, wait_seconds: int) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._mapping["batch_size"],
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        self.batches += 1
        event = {"Records": [self._record(m) for m in messages]}
        response = self._lambda.invoke(
            FunctionName=self._mapping["function"], Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            failed = {m["MessageId"] for m in messages}
        elif self._mapping["partial_batch"] and isinstance(payload, dict):
            failed = {f["itemIdentifier"] for f in payload.get("batchItemFailures", [])}
        else:
            failed = set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._mapping["queue_arn"],
            "awsRegion": self._region,
        }

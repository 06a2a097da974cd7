"""SQS webhook queue: notifications of an integration's jobs and batches (the SNS
topic's subscription takes only those with an `owner`), each fanned out to the
owner's endpoints, and the attempts they queue (tryon.stages.webhooks). Partial
batch responses."""

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tryon.handlers.observability import logger, tracer
from tryon.handlers.sqs_batch import batch_handler
from tryon.stages import webhooks
from tryon.wiring import webhook_context


@tracer.capture_method
def take_message(record: SQSRecord) -> None:
    body = record.json_body
    if body.get("Type") == "Notification":  # the SNS envelope
        attributes = {name: value.get("Value", "") for name, value in
                      (body.get("MessageAttributes") or {}).items()}
        queued = webhooks.fan_out(webhook_context(), body["MessageId"], body["Message"],
                                  attributes)
        logger.info("webhook deliveries queued", extra={"owner": attributes.get("owner"),
                                                        "deliveries": queued})
    else:
        attempt = body["webhook_attempt"]
        logger.set_correlation_id(attempt["delivery_id"])
        webhooks.attempt(webhook_context(), attempt)


handler = batch_handler(take_message)

"""The dead-letter queue's consumer: an intake or submit message that failed five
times ends its jobs FAILED, each with a record, its last error and one
notification. Partial batch responses."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tryon.handlers.observability import logger, metrics, tracer
from tryon.handlers.sqs_batch import batch_handler, uploads_in
from tryon.stages import dead_letters
from tryon.wiring import stage_context


@tracer.capture_method
def take_message(record: SQSRecord) -> None:
    ctx = stage_context()
    body = record.json_body
    if body.get("Event") == "s3:TestEvent":
        return
    last_error = ctx.message_errors.last(record.message_id)
    logger.warning("dead letter", extra={"message_id": record.message_id,
                                         "last_error": last_error})
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)
    for kind, stage in (("admit", "submit"), ("prepare", "intake")):
        if kind in body:
            dead_letters.end_dead_job(ctx, body[kind], stage, last_error)
            return
    for source in uploads_in(body):
        dead_letters.end_dead_upload(ctx, source, last_error)


handler = batch_handler(take_message)

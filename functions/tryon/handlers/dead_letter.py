"""The dead-letter queue's consumer: an intake or submit message that failed five
times ends its jobs FAILED, each with a record, its last error and one
notification. Partial batch responses."""

from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tryon.handlers.observability import logger, metrics, tracer
from tryon.handlers.sqs_batch import batch_handler
from tryon.jobs import Source
from tryon.stages import dead_letters
from tryon.wiring import stage_context


@tracer.capture_method
def take_message(record: SQSRecord) -> None:
    ctx = stage_context()
    body = record.json_body
    if body.get("Event") == "s3:TestEvent":
        return
    last_error = ctx.store.message_error(record.message_id)
    logger.warning("dead letter", extra={"message_id": record.message_id,
                                         "last_error": last_error})
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)
    for kind, stage in (("admit", "submit"), ("prepare", "intake")):
        if kind in body:
            dead_letters.end_dead_job(ctx, body[kind], stage, last_error)
            return
    for s3_record in S3Event(body).records:
        obj = s3_record.s3.get_object
        dead_letters.end_dead_upload(ctx, Source(
            bucket=s3_record.s3.bucket.name, key=unquote_plus(obj.key), etag=obj.etag,
            version_id=obj.version_id), last_error)


handler = batch_handler(take_message)

"""Shared by the three queue consumers (intake, submit, dead letters): an SQS batch
handler with partial batch responses, a record handler wrapper that keeps a
failed message's last error (by message id, which a redrive keeps) for the
dead-letter consumer, and the uploads an S3 event message names."""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger, metrics, tracer
from tryon.jobs import Source, bounded_error
from tryon.wiring import stage_context

RecordHandler = Callable[[SQSRecord], None]


def batch_handler(take_message: RecordHandler) -> Callable[[dict, LambdaContext], dict]:
    """The Lambda handler for an SQS event source: each record taken on its own; only
    the failed ones go back to the queue."""
    processor = BatchProcessor(event_type=EventType.SQS)

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict, context: LambdaContext) -> dict:
        return process_partial_response(event=event, record_handler=take_message,
                                        processor=processor, context=context)

    return handler


def remembering_failures(take: RecordHandler) -> RecordHandler:
    @wraps(take)
    def take_message(record: SQSRecord) -> None:
        try:
            take(record)
        except Exception as exc:
            ctx = stage_context()
            # The exception's type and bounded message; never a traceback.
            error = bounded_error({"code": type(exc).__name__, "message": str(exc)})
            ctx.message_errors.remember(record.message_id, error, ctx.clock())
            raise  # the batch reports it failed: SQS delivers it again

    return take_message


def uploads_in(body: dict[str, Any]) -> list[Source]:
    """The objects created that an S3 event message names (none for the test event
    S3 sends once when notifications are configured)."""
    if body.get("Event") == "s3:TestEvent":
        return []
    return [Source(bucket=record.s3.bucket.name,
                   key=unquote_plus(record.s3.get_object.key),  # S3 event keys are URL-encoded
                   etag=record.s3.get_object.etag, version_id=record.s3.get_object.version_id)
            for record in S3Event(body).records
            if record.event_name.startswith("ObjectCreated")]

"""SQS intake: S3 uploads under jobs/ and garments/ become jobs, their images are
decoded and checked, and admitted jobs go on to the submit function; jobs moved to
another model come back here to be prepared again. This function never reads the
provider key. Partial batch responses."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tryon.handlers.observability import logger, metrics, tracer
from tryon.handlers.sqs_batch import batch_handler, remembering_failures, uploads_in
from tryon.stages import intake, preparation
from tryon.wiring import stage_context


@remembering_failures
@tracer.capture_method
def take_message(record: SQSRecord) -> None:
    body = record.json_body
    ctx = stage_context()
    ctx.on_job = logger.set_correlation_id
    if "prepare" in body:
        logger.set_correlation_id(body["prepare"])
        preparation.prepare_again(ctx, body["prepare"])
        return
    for source in uploads_in(body):
        job_ids = intake.take_upload(ctx, source)
        metrics.add_metric(name="LooksReceived", unit=MetricUnit.Count, value=len(job_ids))


handler = batch_handler(take_message)

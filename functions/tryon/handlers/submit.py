"""SQS submit queue: admitted jobs (from intake, or handed on by a released slot)
go to the provider. The one queue consumer that holds the provider key; it never
decodes an upload. Partial batch responses."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tryon.handlers.observability import logger, metrics, tracer
from tryon.handlers.sqs_batch import batch_handler, remembering_failures
from tryon.stages import submit
from tryon.wiring import stage_context


@remembering_failures
@tracer.capture_method
def take_message(record: SQSRecord) -> None:
    job_id = record.json_body["admit"]
    logger.set_correlation_id(job_id)
    submit.submit_admitted(stage_context(), job_id)
    metrics.add_metric(name="JobsAdmitted", unit=MetricUnit.Count, value=1)


handler = batch_handler(take_message)

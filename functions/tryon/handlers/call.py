"""Call step of the workflow (call models): make the image with one synchronous
request."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger, metrics, tracer
from tryon.job_record import WorkflowState
from tryon.stages import calling
from tryon.wiring import stage_context


@logger.inject_lambda_context(correlation_id_path="job_id", clear_state=True)
# Its answer carries the signed result URL (a credential): never into a trace.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    state = calling.call_model(stage_context(), WorkflowState.from_event(event))
    metrics.add_metric(name="ProviderCalls", unit=MetricUnit.Count, value=1)
    logger.info("called", extra={"call_status": state.status})
    return state.to_event()

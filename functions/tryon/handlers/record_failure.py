"""Failure path: record why the job ended and notify."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger, metrics, tracer
from tryon.job_record import WorkflowState
from tryon.stages import completion
from tryon.wiring import stage_context


@logger.inject_lambda_context(correlation_id_path="job_id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    outcome = completion.record_failure(stage_context(), WorkflowState.from_event(event))
    logger.warning("job failed", extra={"job_status": outcome["status"],
                                        "error": outcome["error"]})
    return outcome

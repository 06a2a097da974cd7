"""Safety net, on two triggers: every minute (EventBridge Scheduler) it reclaims
provider slots whose lease ran out and admits waiting jobs a hand-off missed; on
a job workflow's FAILED, TIMED_OUT or ABORTED status (EventBridge rule) it makes
sure the job is ended, notified and its slot given back."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger, metrics, tracer
from tryon.stages import completion, sweep
from tryon.wiring import stage_context

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    if event.detail_type == EXECUTION_STATUS_CHANGE:
        execution, status = event.detail["name"], event.detail["status"]
        logger.set_correlation_id(completion.job_of_execution(execution))
        completion.execution_ended(stage_context(), execution, status)
        logger.info("workflow ended", extra={"execution_status": status})
        return {"execution": execution, "execution_status": status}
    outcomes = sweep.sweep(stage_context())
    for outcome, count in outcomes.items():
        metrics.add_metric(name=f"Sweep{outcome.title().replace('-', '')}",
                           unit=MetricUnit.Count, value=count)
    logger.info("swept", extra={"outcomes": outcomes})
    return outcomes

"""Safety net, on two triggers: every minute (EventBridge Scheduler) it reclaims
provider slots whose lease ran out and admits waiting jobs a hand-off missed; on
a job workflow's FAILED, TIMED_OUT or ABORTED status (EventBridge rule) it makes
sure the job is ended, notified and its slot given back. Each minute it also
reads the provider's limits when due (tryon.stages.provider_limits), and reports
the pipeline's levels (slots in use and their limit, queued jobs, budget spent)
for the operations dashboard."""

from dataclasses import asdict

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger, metrics, tracer
from tryon.stages import completion, provider_limits, sweep
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
    try:
        read = provider_limits.refresh(stage_context())
    except Exception:  # the limits in force stay; the sweep's own work goes on
        logger.exception("reading the provider's limits failed")
        read = {}
    outcomes = sweep.sweep(stage_context())
    for outcome, count in outcomes.items():
        metrics.add_metric(name=f"Sweep{outcome.title().replace('-', '')}",
                           unit=MetricUnit.Count, value=count)
    gauges = sweep.gauges(stage_context())
    emit_gauges(gauges)
    logger.info("swept", extra={"outcomes": outcomes, "limits_read": read,
                                "gauges": asdict(gauges)})
    return outcomes


def emit_gauges(gauges: sweep.Gauges) -> None:
    # Every model, zeros included: a gauge that stopped reporting at zero would leave
    # its last busy value on the graph; a dozen metrics cost a few dollars a month.
    for name, per_model in (("SlotsInUse", gauges.slots_in_use),
                            ("SlotLimit", gauges.slot_limits),
                            ("QueuedJobs", gauges.queued_jobs)):
        for model, value in per_model.items():
            # A record of its own: the shared metrics carry only the service dimension.
            with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
                metric.add_dimension(name="model", value=model)
    # Who waits: per model and integration, for each that ever waited for the model.
    for model, per_integration in gauges.queued_by_integration.items():
        for integration, value in per_integration.items():
            with single_metric(name="QueuedJobsByIntegration", unit=MetricUnit.Count,
                               value=value) as metric:
                metric.add_dimension(name="model", value=model)
                metric.add_dimension(name="integration", value=integration)
    metrics.add_metric(name="BudgetSpent", unit=MetricUnit.Count, value=gauges.budget_spent)
    metrics.add_metric(name="BudgetLimit", unit=MetricUnit.Count, value=gauges.budget_limit)

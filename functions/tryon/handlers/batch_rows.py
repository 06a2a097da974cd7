"""A catalogue batch's rows, from its expansion (the Distributed Map of
infra/statemachine/batch_expansion.asl.json): each row's look made a job, as a
manifest's look is. On AWS a child gets up to 50 rows ({"Items": [...]}, ItemBatcher);
the local stack hands it one ({"row", "batch"}). This function never reads the
provider key."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger, metrics, tracer
from tryon.stages import catalogue_intake
from tryon.wiring import stage_context


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    items = event.get("Items") or [event]
    batch = items[0]["batch"]
    logger.append_keys(batch_id=batch["batch_id"])
    ctx = stage_context()
    ctx.on_job = logger.set_correlation_id
    rows = [item["row"] for item in items]
    if "failure" in event:  # the child's Catch: it failed at every attempt
        return catalogue_intake.rows_failed(ctx, batch, rows, event["failure"])
    outcome = catalogue_intake.take_rows(ctx, batch, rows)
    metrics.add_metric(name="LooksReceived", unit=MetricUnit.Count, value=outcome["rows"])
    return outcome

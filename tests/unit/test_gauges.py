"""The sweep's gauges (on the fakes): slots held and jobs
QUEUED per model, and today's budget, read as the dashboard charts them; and the
EMF records the sweep function prints for them (Powertools, as in Lambda)."""

import json

import pytest
from fakes import DAY_ONE
from tryon.adapters.slots import queue_entry
from tryon.handlers import observability
from tryon.handlers.sweep import emit_gauges
from tryon.job_record import JobStatus
from tryon.models.registry import MODEL_IDS
from tryon.stages.sweep import gauges

MODEL, OTHER = "aitryon-plus", "qwen-image-3.0"


@pytest.fixture
def busy(fake):
    """Two jobs holding MODEL's slots, three waiting for it (one of them integration
    acme's, two the bucket's) and one for OTHER, and four images charged to today's
    budget, which the operator set to 5."""
    fake.configure(daily_image_budget=2)
    ctx = fake.ctx
    for i in range(2):
        assert ctx.slots.acquire(MODEL, f"running-{i}", DAY_ONE + 300, limit=5)
    for i, model in enumerate([MODEL, MODEL, MODEL, OTHER]):
        fake.look(f"waiting-{i}", model, status=JobStatus.QUEUED,
                  **queue_entry(model, DAY_ONE + i, f"waiting-{i}",
                                **({"tenant": "acme"} if i == 1 else {})))
    ctx.budget.set_override(5)
    for i in range(4):
        fake.look(f"charged-{i}")
        assert ctx.budget.charge(f"charged-{i}", "2026-11-18", 5, DAY_ONE)
    return ctx


def test_the_gauges_count_slots_and_queued_jobs_per_model_and_the_days_budget(busy):
    levels = gauges(busy)
    assert levels.slots_in_use == {model: 2 if model == MODEL else 0 for model in MODEL_IDS}
    assert levels.queued_jobs == {model: {MODEL: 3, OTHER: 1}.get(model, 0)
                                  for model in MODEL_IDS}
    assert levels.queued_by_integration == {MODEL: {"(bucket)": 2, "acme": 1},
                                            OTHER: {"(bucket)": 1}}
    assert (levels.budget_spent, levels.budget_limit) == (4, 5)

    busy.budget.set_override(None)  # back to the stack's DailyImageBudget (2 here)
    assert gauges(busy).budget_limit == 2


def test_the_sweep_function_prints_each_gauge_as_an_emf_metric(busy, capsys, monkeypatch):
    # What the template's Globals give every function.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "tryon")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TryOn")
    monkeypatch.setattr(observability.metrics, "service", "tryon")
    monkeypatch.setattr(observability.metrics, "namespace", "TryOn")
    capsys.readouterr()

    emit_gauges(gauges(busy))
    observability.metrics.flush_metrics()

    values = {}
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line)
        [directive] = record["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "TryOn"
        [dimensions] = directive["Dimensions"]
        for metric in directive["Metrics"]:
            key = (metric["Name"], tuple((d, record[d]) for d in sorted(dimensions)))
            value = record[metric["Name"]]  # a list when one record holds several
            values[key] = value[0] if isinstance(value, list) and len(value) == 1 else value
    service = ("service", "tryon")
    assert values[("SlotsInUse", (("model", MODEL), service))] == 2
    assert values[("QueuedJobs", (("model", MODEL), service))] == 3
    assert values[("QueuedJobs", (("model", OTHER), service))] == 1
    assert values[("SlotsInUse", (("model", OTHER), service))] == 0  # zeros too
    assert values[("BudgetSpent", (service,))] == 4
    assert values[("BudgetLimit", (service,))] == 5
    assert values[("SlotLimit", (("model", MODEL), service))] == 6  # 5 running, 1 ahead
    by = "QueuedJobsByIntegration"
    assert values[(by, (("integration", "acme"), ("model", MODEL), service))] == 1
    assert values[(by, (("integration", "(bucket)"), ("model", MODEL), service))] == 2
    assert values[(by, (("integration", "(bucket)"), ("model", OTHER), service))] == 1
    assert len(values) == 3 * len(MODEL_IDS) + 2 + 3

"""The operations dashboard in the template: its body is JSON once CloudFormation
has substituted it, every TryOn metric it charts is one the functions emit (a
widget on a metric nobody emits would stay empty without a word), and its alarm
widget lists every alarm of the stack."""

import ast
import json
import re
from pathlib import Path

import pytest
from tryon.job_record import TERMINAL_STATUSES
from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "functions" / "tryon"
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
DASHBOARD = RESOURCES["OperationsDashboard"]["Properties"]
# The attributes the body may substitute, by resource type.
ATTRIBUTES = {"AWS::SQS::Queue": {"QueueName"}, "AWS::CloudWatch::Alarm": {"Arn"}}
# Powertools' metrics: namespace and service dimension from the template's Globals.
NAMESPACE, SERVICE = "TryOn", ("service", "tryon")
SEARCH = re.compile(r"""SEARCH\('\{(?P<schema>[^}]+)\} MetricName="(?P<name>\w+)"'""")


def body() -> dict:
    """The dashboard body as CloudFormation renders it, each `${Resource.Attribute}`
    replaced by its own name and `${!x}` by its literal `${x}`."""
    text = DASHBOARD["DashboardBody"]["Fn::Sub"]

    def placeholder(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("AWS::"):
            return name
        resource, _, attribute = name.partition(".")
        assert attribute in ATTRIBUTES.get(RESOURCES[resource]["Type"], ()), name
        return f"<{name}>"

    return json.loads(re.sub(r"\$\{([^}!]+)\}", placeholder, text).replace("${!", "${"))


WIDGETS = body()["widgets"]


def charted() -> list[tuple[str, str, tuple]]:
    """(namespace, metric name, dimensions) of every metric the graphs draw; a
    SEARCH gives its schema's dimension names."""
    found = []
    for widget in WIDGETS:
        for entry in widget["properties"].get("metrics", []):
            fields = [f for f in entry if not isinstance(f, dict)]
            if fields:
                namespace, name, *dimensions = fields
                found.append((namespace, name, tuple(zip(dimensions[::2], dimensions[1::2],
                                                         strict=True))))
            for options in (f for f in entry if isinstance(f, dict) and "expression" in f):
                search = SEARCH.search(options["expression"])
                assert search, f"only SEARCH expressions are charted: {options['expression']}"
                namespace, *keys = search["schema"].split(",")
                found.append((namespace, search["name"], tuple(sorted(keys))))
    return found


def emitted() -> set[str]:
    """Metric names the functions can emit: the string literals of every module that
    adds a metric, and the two families whose names are made by an f-string."""
    names: set[str] = set()
    for path in CODE.rglob("*.py"):
        source = path.read_text()
        if not re.search(r"add_metric\(|single_metric\(|ctx\.count\(|wh\.(count|measure)\(",
                         source):
            continue
        names |= {node.value for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    # end_job counts Jobs<Status> per terminal status; the sweep Sweep<Outcome>.
    completion = (CODE / "stages" / "completion.py").read_text()
    assert "ctx.count(f\"Jobs{status.value.title().replace('_', '')}\")" in completion
    names |= {f"Jobs{status.value.title().replace('_', '')}" for status in TERMINAL_STATUSES}
    sweep = CODE / "stages" / "sweep.py"
    names |= {f"Sweep{node.value.title().replace('-', '')}"
              for node in ast.walk(ast.parse(sweep.read_text()))
              if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return names


def test_the_body_is_json_with_widgets_on_a_24_column_grid():
    assert TEMPLATE["Resources"]["OperationsDashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    assert DASHBOARD["DashboardName"] == {"Fn::Sub": "${AWS::StackName}-operations"}
    assert WIDGETS
    for widget in WIDGETS:
        assert widget["x"] + widget["width"] <= 24, widget["properties"]["title"]
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "AWS::Region"


def test_every_tryon_metric_charted_is_one_the_functions_emit():
    names = emitted()
    tryon = [(name, dims) for namespace, name, dims in charted() if namespace == NAMESPACE]
    assert {"JobsSucceeded", "SlotsInUse", "SlotLimit", "QueuedJobs", "ProviderLatency",
            "ProviderPolls", "BudgetSpent", "BudgetLimit", "ProviderSlowedDown",
            "LookaheadRefused", "ProviderLimitsUnreadable", "QueuedJobsByIntegration",
            "WebhookAttempts", "WebhookFailures", "WebhooksDisabled",
            "WebhookLatency"} <= {name for name, _ in tryon}
    for name, dims in tryon:
        assert name in names, f"the dashboard charts {name}, which no function emits"
        # Per model: the sweep's single metrics; everything else: the shared Metrics.
        expected = {"SlotsInUse": ("model", "service"), "SlotLimit": ("model", "service"),
                    "QueuedJobs": ("model", "service"),
                    "QueuedJobsByIntegration": ("integration", "model", "service")}.get(
            name, (SERVICE,))
        assert dims == expected, name


def test_the_emitted_names_would_catch_a_metric_nobody_emits():
    names = emitted()
    assert {"JobsFailed", "JobsTimedOut", "SweepReclaimed", "ProviderLatency"} <= names
    assert "JobsLost" not in names and "ProviderLatencies" not in names


def test_queue_depth_is_charted_for_the_pipelines_queues():
    queues = {dims[0][1] for namespace, name, dims in charted() if namespace == "AWS/SQS"
              and name == "ApproximateNumberOfMessagesVisible"}
    assert queues == {"<IntakeQueue.QueueName>", "<SubmitQueue.QueueName>",
                      "<IntakeDeadLetterQueue.QueueName>"}


@pytest.mark.parametrize("alarm", sorted(name for name, spec in RESOURCES.items()
                                         if spec["Type"] == "AWS::CloudWatch::Alarm"))
def test_every_alarm_of_the_stack_is_in_the_alarm_widget(alarm):
    [widget] = [w for w in WIDGETS if w["type"] == "alarm"]
    assert f"<{alarm}.Arn>" in widget["properties"]["alarms"]


def test_the_output_links_to_the_dashboard():
    url = TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.endswith("#dashboards/dashboard/${OperationsDashboard}")
    assert "region=${AWS::Region}" in url

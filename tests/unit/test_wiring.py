"""The pieces that must agree with each other: template, state machine,
handlers, sample events, and the moto internals the local runtime hooks into."""

import importlib
import json
import re
from pathlib import Path

import boto3
import pytest
from tryon_local.cfn import Deployer, DeployError, expand, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {name: spec for name, spec in RESOURCES.items()
             if spec["Type"] == "AWS::Serverless::Function"}
MACHINE = RESOURCES["JobStateMachine"]["Properties"]
DEFINITION = json.loads((ROOT / MACHINE["DefinitionUri"]).read_text())
EXPANDED = expand(load_template(ROOT / "template.yaml"), {}, "us-east-1")["Resources"]


def test_every_handler_string_imports():
    for spec in FUNCTIONS.values():
        module, name = spec["Properties"]["Handler"].rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name))


def test_the_local_deployer_knows_every_resource_type_of_the_expansion():
    for name, spec in EXPANDED.items():
        method = "_" + spec["Type"].replace("::", "_")
        assert hasattr(Deployer, method), f"{name}: {spec['Type']} cannot be deployed locally"


def test_a_type_the_local_deployer_cannot_create_stops_it(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n"
                        "  Stream: {Type: AWS::Kinesis::Stream, Properties: {ShardCount: 1}}\n")
    with pytest.raises(DeployError, match=r"^Stream \(AWS::Kinesis::Stream\): the local "
                                          r"runtime cannot create this type"):
        Deployer(None, "us-east-1", tmp_path).deploy(template, {})


def test_policy_templates_become_the_statements_sam_makes():
    """The local roles carry SAM's policy templates, not only the inline statements."""
    def actions(role):
        return {action for policy in EXPANDED[role]["Properties"]["Policies"]
                for statement in policy["PolicyDocument"]["Statement"]
                for action in (statement["Action"] if isinstance(statement["Action"], list)
                               else [statement["Action"]])}

    for name, spec in FUNCTIONS.items():
        templates = {key for policy in spec["Properties"]["Policies"] for key in policy
                     if key != "Statement"}
        assert ("sqs:SendMessage*" in actions(f"{name}Role")) == (
            "SQSSendMessagePolicy" in templates), name
    assert "lambda:InvokeFunction" in actions("JobStateMachineRole")


def test_definition_substitutions_match_the_definition():
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(DEFINITION)))
    assert used == set(MACHINE["DefinitionSubstitutions"])


def test_every_task_retries_and_catches_into_the_failure_path():
    for name, state in DEFINITION["States"].items():
        if state["Type"] != "Task":
            continue
        assert state["Retry"], name
        assert all(r.get("JitterStrategy") == "FULL" for r in state["Retry"]), name
        if name != "RecordFailure":
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
            assert state["Catch"][0]["Next"] == "RecordFailure", name


def test_the_wait_loop_routes_all_eight_provider_statuses():
    choice = DEFINITION["States"]["RouteByStatus"]
    routed = {}
    for rule in choice["Choices"]:
        for condition in rule.get("Or", [rule]):
            routed[condition["StringEquals"]] = rule["Next"]
    assert routed == {
        "SUCCEEDED": "StoreResult",
        "PENDING": "WaitForResult", "PRE-PROCESSING": "WaitForResult",
        "RUNNING": "WaitForResult", "POST-PROCESSING": "WaitForResult",
        "FAILED": "RecordFailure", "CANCELED": "RecordFailure", "UNKNOWN": "RecordFailure",
        "TIMED_OUT": "RecordFailure",
        "FALLBACK": "HandedToFallback",  # the look went on to the fallback model's workflow
    }


def test_the_workflow_branches_once_on_the_models_protocol():
    states = DEFINITION["States"]
    assert DEFINITION["StartAt"] == "RouteByProtocol"
    branch = states["RouteByProtocol"]
    assert branch["Choices"] == [{"Variable": "$.protocol", "StringEquals": "call",
                                  "Next": "CallModel"}]
    assert branch["Default"] == "WaitForResult"
    assert states["CallModel"]["Next"] == "RouteByStatus"
    assert states["CallModel"]["Retry"][0]["ErrorEquals"] == ["SubmitDeferred"]


@pytest.mark.parametrize("event", sorted((ROOT / "events").glob("*.json")),
                         ids=lambda p: p.name)
def test_sample_events_are_valid_json_for_a_function(event):
    doc = json.loads(event.read_text())
    if event.name.startswith(("intake", "dead_letter")):
        body = json.loads(doc["Records"][0]["body"])
        assert body["Records"][0]["s3"]["object"]["key"].startswith("jobs/")
    elif event.name.startswith("submit"):
        assert set(json.loads(doc["Records"][0]["body"])) == {"admit"}
    elif event.name.startswith("sweep"):
        from tryon.handlers.sweep import EXECUTION_STATUS_CHANGE

        assert doc["detail-type"] in (EXECUTION_STATUS_CHANGE, "Scheduled Sweep")
        assert doc["detail-type"] != EXECUTION_STATUS_CHANGE or doc["detail"]["name"]
    elif event.name.startswith("call"):
        assert doc["protocol"] == "call" and {"job_id", "model"} <= set(doc)
    else:
        assert {"job_id", "task_id", "model", "deadline"} <= set(doc)


@pytest.mark.parametrize(("parameter", "value", "allowed"), [
    ("ProviderApiKeySecretArn",
     "arn:aws:secretsmanager:us-east-1:123456789012:secret:tryon/dashscope-api-key-AbC123", True),
    ("ProviderApiKeySecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:*", False),
    ("ProviderApiKeySecretArn",
     "arn:aws:secretsmanager:us-east-1:123456789012:secret:tryon/*-AbC123", False),
    ("ProviderBaseUrl", "https://dashscope.aliyuncs.com/api/v1", True),
    ("ProviderBaseUrl", "https://dashscope-intl.aliyuncs.com/api/v1", True),
    ("ProviderBaseUrl", "http://dashscope.aliyuncs.com/api/v1", False),
    ("ResultUrlHosts", "*.aliyuncs.com,results.example.com", True),
    ("ResultUrlHosts", "http://x.example", False),
    ("ModelLimits", "qwen-image-3.0=10/20/min,aitryon-plus=5/10,aitryon=5/10/s", True),
    ("ModelLimits", "qwen-image-3.0=10/20/hour", False),
])
def test_parameters_refuse_wildcard_secrets_and_plain_http(parameter, value, allowed):
    pattern = TEMPLATE["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is allowed


@pytest.mark.parametrize("module", ["poll", "call"])
def test_traces_never_record_answers_that_carry_signed_result_urls(module):
    """X-Ray keeps a handler's response as trace metadata unless told not to; the
    poll's and call's answers hold the signed result URL (a credential)."""
    import ast

    tree = ast.parse((ROOT / "functions" / "tryon" / "handlers" / f"{module}.py").read_text())
    [handler] = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "handler"]
    captures = [d for d in handler.decorator_list if isinstance(d, ast.Call)
                and ast.unparse(d.func) == "tracer.capture_lambda_handler"]
    assert captures and all(
        any(k.arg == "capture_response" and ast.unparse(k.value) == "False"
            for k in d.keywords) for d in captures)


def test_each_models_submits_are_paced_at_its_rate_and_period(moto_stages):
    from tryon.pacing import Rate
    from tryon.settings import Settings
    from tryon.wiring import build_context

    settings = Settings.from_env({"JOBS_TABLE": "jobs", "QUERY_RATE_LIMIT": "20",
                                  "MODEL_LIMITS": "aitryon-plus=5/10,qwen-image-3.0=10/10/min"})
    ctx = build_context(settings, boto3.Session(region_name="us-east-1"))
    rate_of = ctx.pacer.rate_of
    assert rate_of("submit:qwen-image-3.0") == Rate(10, 60)  # the operator's
    assert rate_of("submit:qwen-image-3.0-pro") == Rate(5, 60)  # the published default
    assert rate_of("submit:aitryon-plus") == Rate(10) and rate_of("query") == Rate(20)
    ctx.limit_notes.record_read("qwen-image-3.0-pro", {"requests": 3, "period": 60,
                                                       "running": 4, "queue": 500}, 0.0)
    ctx.capacity.forget()
    assert rate_of("submit:qwen-image-3.0-pro") == Rate(3, 60)  # the provider's answer

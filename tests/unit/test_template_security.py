"""What each function may do, and what watches the stack: least privilege in the
template, checked against the code that needs it; log groups, alarms, and the
reasons for every checkov check the template skips."""

import json
import re
from pathlib import Path

import pytest
from tryon.adapters.integrations import SETTINGS
from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "functions" / "tryon"
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {name: spec for name, spec in RESOURCES.items()
             if spec["Type"] == "AWS::Serverless::Function"}
ROLES = {name: spec for name, spec in RESOURCES.items()
         if spec["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")}

TABLE_ARN = {"Fn::GetAtt": ["JobsTable", "Arn"]}
CREDENTIALS_ARN = {"Fn::GetAtt": ["CredentialsTable", "Arn"]}
BUDGET_READ = {"Ref": "ReadBudgetOverridePolicy"}  # the stack's one managed policy
# Functions that touch no jobs table: the authorizer (a key's item in the credentials
# table) and the provider cancel (the provider only).
STORELESS = ("AuthorizerFunction", "ProviderCancelFunction")
QUEUE_INDEX_ARN = {"Fn::Sub": "${JobsTable.Arn}/index/queue"}
OWNER_INDEX_ARN = {"Fn::Sub": "${JobsTable.Arn}/index/owner"}
IDEMPOTENCY_TABLE_ARN = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
# What Powertools' idempotency persistence calls on its table (it deletes the record of
# a request that failed, so that a retry runs).
IDEMPOTENCY_ACTIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}
# The repositories of the jobs table (and the API's integrations on it).
DYNAMODB_ADAPTERS = ("dynamo.py", "jobs.py", "batches.py", "slots.py", "budget.py",
                     "provider_memory.py", "message_errors.py", "integrations.py",
                     "webhooks.py", "checked_images.py")
# Webhook deliveries on the jobs table: the only statements there with a condition,
# each limited to these items (tryon.adapters.webhooks).
DELIVERIES = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["WHDELIVERY#*"]}}
DELIVERY_ACTIONS = {"WebhookDeliveryFunction": {"dynamodb:GetItem", "dynamodb:PutItem",
                                                "dynamodb:UpdateItem"},
                    "ApiFunction": {"dynamodb:Query"}}
# The boto3 calls of the DynamoDB adapter, as IAM actions. A transaction needs the
# actions of its parts (the adapter uses none: moto's would clobber other writes).
CALL_ACTIONS = {
    "get_item": {"GetItem"}, "put_item": {"PutItem"}, "update_item": {"UpdateItem"},
    "query": {"Query"}, "scan": {"Scan"}, "delete_item": {"DeleteItem"},
    "batch_get_item": {"BatchGetItem"}, "batch_write_item": {"BatchWriteItem"},
    "transact_get_items": {"GetItem"}, "transact_write_items": {"UpdateItem"},
}
# The SAM policy templates a function may use (each scoped to one named resource).
POLICY_TEMPLATES = {"SQSSendMessagePolicy", "LambdaInvokePolicy"}
# CloudWatch Logs' vended log delivery, as AWS documents it for Step Functions
# logging: these actions take no resource-level permissions.
LOG_DELIVERY = {"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"}


def _listed(value):
    return value if isinstance(value, list) else [value]


def _statements(spec: dict) -> list[dict]:
    return [statement for policy in spec["Properties"].get("Policies", [])
            if isinstance(policy, dict) and "Statement" in policy
            for statement in policy["Statement"]]


def _dynamodb_actions(spec: dict) -> set[str]:
    """The actions granted on the jobs table and its indexes."""
    return {action.split(":", 1)[1] for statement in _statements(spec)
            if IDEMPOTENCY_TABLE_ARN not in _listed(statement["Resource"])
            and CREDENTIALS_ARN not in _listed(statement["Resource"])
            for action in _listed(statement["Action"]) if action.startswith("dynamodb:")}


def _store_actions() -> set[str]:
    """The DynamoDB actions the code can call: only the adapters touch DynamoDB (the
    jobs table; wiring hands them the session's resource)."""
    client = re.compile(r"\.Table\(|\.(?:get|put|update|delete|batch_get|batch_write)_item\("
                        r"|\.transact_\w+_items\(")
    elsewhere = [path.relative_to(ROOT) for path in CODE.rglob("*.py")
                 if path.name not in DYNAMODB_ADAPTERS and client.search(path.read_text())]
    assert not elsewhere, f"DynamoDB used outside the adapters: {elsewhere}"
    source = "".join((CODE / "adapters" / name).read_text() for name in DYNAMODB_ADAPTERS)
    calls = set(re.findall(r"\.(" + "|".join(CALL_ACTIONS) + r")\b", source))
    return set().union(*(CALL_ACTIONS[call] for call in calls))


def test_policies_are_statements_or_scoped_sam_templates():
    for name, spec in ROLES.items():
        for policy in spec["Properties"].get("Policies", []):
            if policy == BUDGET_READ:
                continue
            assert isinstance(policy, dict), f"{name}: managed policy {policy!r}"
            assert set(policy) <= {"Statement"} | POLICY_TEMPLATES, (
                f"{name}: {sorted(policy)} (DynamoDBCrudPolicy and the like grant too much)")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_dynamodb_is_granted_action_by_action_on_the_table(name):
    spec = FUNCTIONS[name]
    actions = _dynamodb_actions(spec)
    assert actions or name in STORELESS, f"{name} has no DynamoDB statement"
    assert not any("*" in action for action in actions), name
    assert not actions & {"Scan", "DeleteItem", "BatchWriteItem"}, name
    for statement in _statements(spec):
        granted = [a for a in _listed(statement["Action"]) if a.startswith("dynamodb:")]
        if not granted:
            continue
        resources = _listed(statement["Resource"])
        if resources == [CREDENTIALS_ARN]:
            continue  # test_which_roles_read_and_write_which_credentials
        if "Condition" in statement:
            assert statement["Condition"] == DELIVERIES and resources == [TABLE_ARN], name
            assert set(granted) == DELIVERY_ACTIONS[name], name
            continue
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        if resources == [IDEMPOTENCY_TABLE_ARN]:
            assert name == "ApiFunction" and {a.split(":")[1] for a in granted} == (
                IDEMPOTENCY_ACTIONS), name
        elif "dynamodb:Query" in granted:
            # Queried only through the sparse indexes: waiting jobs, and an integration's
            # jobs (the API alone).
            allowed = [QUEUE_INDEX_ARN, OWNER_INDEX_ARN] if name == "ApiFunction" else [
                QUEUE_INDEX_ARN]
            assert granted == ["dynamodb:Query"] and resources[0] in allowed, name
        else:
            assert resources == [TABLE_ARN], name


def test_no_function_is_granted_a_dynamodb_action_the_code_never_calls():
    used = _store_actions()
    for name, spec in FUNCTIONS.items():
        assert _dynamodb_actions(spec) <= used, f"{name}: {_dynamodb_actions(spec) - used}"


def test_each_function_sends_only_to_the_queues_it_uses():
    # Admitted jobs go to the submit queue; the functions that submit (the submit
    # function, and poll and call handing a slot on) send a look moved to another
    # model back to the intake queue (to be decoded again for that model's rules).
    expected = {name: {"SubmitQueue"} for name in FUNCTIONS}
    for name in ("SubmitFunction", "PollFunction", "CallFunction"):
        expected[name] = {"SubmitQueue", "IntakeQueue"}
    for name in STORELESS:
        expected[name] = set()
    # Webhook attempts (and the API's replays) wait in the webhook queue.
    expected["WebhookDeliveryFunction"] = {"WebhookQueue"}
    expected["ApiFunction"] = {"SubmitQueue", "WebhookQueue"}
    for name, spec in FUNCTIONS.items():
        queues = set()
        for policy in spec["Properties"]["Policies"]:
            if "SQSSendMessagePolicy" in policy:
                queue = policy["SQSSendMessagePolicy"]["QueueName"]
                assert queue == {"Fn::GetAtt": [queue["Fn::GetAtt"][0], "QueueName"]}, name
                queues.add(queue["Fn::GetAtt"][0])
        assert queues == expected[name], name
        for statement in _statements(spec):
            if any(a.lower().startswith("sqs:") for a in _listed(statement["Action"])):
                assert "*" not in _listed(statement["Resource"]), name


def test_a_function_that_notifies_puts_the_event_on_the_stacks_bus_only():
    for name, spec in FUNCTIONS.items():
        grants = {action: statement["Resource"] for statement in _statements(spec)
                  for action in _listed(statement["Action"])}
        if "sns:Publish" in grants:
            bus = {"Fn::GetAtt": ["NotificationBus", "Arn"]}
            assert grants.get("events:PutEvents") == bus, name
        else:
            assert "events:PutEvents" not in grants, name


def test_only_log_delivery_is_granted_on_every_resource():
    for name, spec in ROLES.items():
        for statement in _statements(spec):
            resources = _listed(statement["Resource"])
            if "*" in resources:
                assert name in ("JobStateMachine", "BatchExpansionStateMachine"), name
                assert set(_listed(statement["Action"])) <= LOG_DELIVERY, name
            assert not any(a == "*" or a.endswith(":*") for a in _listed(statement["Action"]))


def test_every_log_group_expires_after_the_retention_parameter():
    groups = {name: spec["Properties"] for name, spec in RESOURCES.items()
              if spec["Type"] == "AWS::Logs::LogGroup"}
    for group in groups.values():
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    names = {group["LogGroupName"]["Fn::Sub"] for group in groups.values()}
    for name in FUNCTIONS:
        assert "/aws/lambda/${" + name + "}" in names, f"{name} has no log group"
    for machine in ("JobStateMachine", "BatchExpansionStateMachine"):
        logging = RESOURCES[machine]["Properties"]["Logging"]
        assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False
        arn = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
        assert groups[arn["Fn::GetAtt"][0]]


def test_the_batch_expansion_reads_and_writes_only_its_own_files_and_runs_its_children():
    """A catalogue file's expansion: the canonical CSVs under normalized/batches/ (and
    its results beside them), the batch rows function, and its own executions (the
    Distributed Map's children); the intake function may start it, nothing more."""
    machine = RESOURCES["BatchExpansionStateMachine"]
    grants = {(action, json.dumps(resource, sort_keys=True))
              for statement in _statements(machine) for action in _listed(statement["Action"])
              for resource in _listed(statement["Resource"])
              if not action.startswith("logs:")}
    own = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    assert grants == {
        ("s3:GetObject", json.dumps({"Fn::Sub": "${InboxBucket.Arn}/normalized/batches/*"})),
        *((action, json.dumps({"Fn::Sub": "${InboxBucket.Arn}/normalized/batches/results/*"}))
          for action in ("s3:PutObject", "s3:ListMultipartUploadParts",
                         "s3:AbortMultipartUpload")),
        ("states:StartExecution",
         json.dumps({"Fn::Sub": f"{own}:stateMachine:${{AWS::StackName}}-batches"})),
        *((action, json.dumps({"Fn::Sub": f"{own}:execution:${{AWS::StackName}}-batches:*"}))
          for action in ("states:DescribeExecution", "states:StopExecution"))}
    assert machine["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-batches"}
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "BatchRowsFunction"}}} in (
        machine["Properties"]["Policies"])
    starters = {name for name, spec in ROLES.items() for statement in _statements(spec)
                if {"Ref": "BatchExpansionStateMachine"} in _listed(statement["Resource"])}
    assert starters == {"IntakeFunction"}
    assert not any("secretsmanager:GetSecretValue" in _listed(statement["Action"])
                   for statement in _statements(FUNCTIONS["BatchRowsFunction"]))


def test_alarms_go_to_the_alarm_topic_and_stay_quiet_without_data():
    alarms = {name: spec["Properties"] for name, spec in RESOURCES.items()
              if spec["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"DeadLetterQueueAlarm", "FailureRateAlarm", "ModelRetiredAlarm",
            "BudgetReachedAlarm"} <= set(alarms)
    for name, alarm in alarms.items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name


def test_every_skipped_checkov_check_says_why():
    for name, spec in RESOURCES.items():
        for skip in spec.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) >= 40, f"{name}: {skip['id']} needs a reason"


def test_the_apis_front_door_refuses_before_any_function_runs_and_bounds_each_client():
    from tryon.adapters.integrations import KEY_PREFIX

    api = RESOURCES["Api"]["Properties"]
    authorizer = api["Auth"]["Authorizers"][api["Auth"]["DefaultAuthorizer"]]
    assert authorizer["FunctionPayloadType"] == "TOKEN"
    assert authorizer["Identity"]["Header"] == "Authorization"
    # A revoked key works at most this long (README, security).
    assert 0 < authorizer["Identity"]["ReauthorizeEvery"] <= 60
    # The validation expression takes the keys tryon keys create makes, and no other.
    shape = authorizer["Identity"]["ValidationExpression"]
    key = f"{KEY_PREFIX}0123abcd_{'A' * 42}-"
    assert re.fullmatch(shape, f"Bearer {key}")
    for other in (key, f"Bearer {key}x", f"Basic {key}", "Bearer ", f"bearer {key}"):
        assert not re.fullmatch(shape, other), other
    events = FUNCTIONS["ApiFunction"]["Properties"]["Events"]
    assert {e["Properties"]["RestApiId"]["Ref"] for e in events.values()} == {"Api", "IamApi"}
    public = {e["Properties"]["Path"] for e in events.values()
              if e["Properties"].get("Auth", {}).get("Authorizer") == "NONE"}
    assert public == {"/openapi.json", "/docs"}
    assert RESOURCES["IamApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    # The firewall covers both APIs' stages, by source address and by key.
    associated = {re.search(r"/restapis/\$\{(\w+)\}/stages/",
                            spec["Properties"]["ResourceArn"]["Fn::Sub"])[1]
                  for spec in RESOURCES.values()
                  if spec["Type"] == "AWS::WAFv2::WebACLAssociation"}
    assert associated == {"Api", "IamApi"}
    rates = [rule["Statement"]["RateBasedStatement"]
             for rule in RESOURCES["ApiFirewall"]["Properties"]["Rules"]
             if "RateBasedStatement" in rule["Statement"]]
    assert [r["AggregateKeyType"] for r in rates] == ["IP", "CUSTOM_KEYS"]
    assert rates[1]["CustomKeys"][0]["Header"]["Name"] == "authorization"
    # Neither the API nor its authorizer can take the account's whole concurrency.
    for name in ("ApiFunction", "AuthorizerFunction"):
        assert FUNCTIONS[name]["Properties"]["ReservedConcurrentExecutions"] == {
            "Ref": "ApiConcurrency"}, name
    assert not [n for n, s in RESOURCES.items() if s["Type"] == "AWS::Serverless::HttpApi"]


def _denied(bucket_policy: str, principal: str, action: str, key: str) -> bool:
    """Whether the bucket policy's Deny statements on the caller's role refuse
    `action` on `key` (the template's own statements: ArnNotEquals on
    aws:PrincipalArn, resources as ${Bucket.Arn}/<glob>)."""
    import fnmatch

    for statement in RESOURCES[bucket_policy]["Properties"]["PolicyDocument"]["Statement"]:
        allowed = statement.get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn")
        if statement["Effect"] != "Deny" or allowed is None:
            continue
        roles = [r["Fn::GetAtt"][0] for r in allowed["Fn::If"][2]]
        globs = [r["Fn::Sub"].split("}/", 1)[1] for r in statement["Resource"]]
        if (action in _listed(statement["Action"]) and principal not in roles
                and any(fnmatch.fnmatchcase(key, glob) for glob in globs)):
            return True
    return False


def test_only_the_api_writes_where_a_key_says_whose_a_job_or_upload_is():
    for key in ("jobs/api/acme/request.json", "uploads/acme/1/person.jpg"):
        assert _denied("InboxBucketPolicy", "IntakeFunctionRole", "s3:PutObject", key), key
        assert _denied("InboxBucketPolicy", "SomeBucketWriter", "s3:PutObject", key), key
        assert not _denied("InboxBucketPolicy", "ApiFunctionRole", "s3:PutObject", key), key
    for key in ("jobs/looks.json", "garments/top/sku.jpg", "models/anna.jpg"):
        assert not _denied("InboxBucketPolicy", "SomeBucketWriter", "s3:PutObject", key), key
    # The operator's roles may be added (tryon jobs retry of an integration's job).
    condition = next(s for s in RESOURCES["InboxBucketPolicy"]["Properties"][
        "PolicyDocument"]["Statement"] if s["Sid"] == "OnlyTheApiWritesIntegrationsPrefixes")
    assert "OperatorRoleArns" in json.dumps(condition)


def test_only_the_api_erases_or_tags_where_a_key_says_whose_an_upload_is():
    for action in ("s3:DeleteObjectVersion", "s3:PutObjectTagging"):
        key = "uploads/acme/1/person.jpg"
        assert _denied("InboxBucketPolicy", "IntakeFunctionRole", action, key), action
        assert not _denied("InboxBucketPolicy", "ApiFunctionRole", action, key), action


def test_the_api_lists_and_deletes_versions_only_under_the_prefixes_erasure_needs():
    s3 = [s for s in _statements(FUNCTIONS["ApiFunction"])
          if any(a in ("s3:ListBucketVersions", "s3:DeleteObjectVersion", "s3:PutObjectTagging")
                 for a in _listed(s["Action"]))]
    granted = {(a, json.dumps(r, sort_keys=True), json.dumps(s.get("Condition"), sort_keys=True))
               for s in s3 for a in _listed(s["Action"]) for r in _listed(s["Resource"])}
    inbox_keys = ["uploads/*", "jobs/api/*", "normalized/*"]
    expected = {("s3:PutObjectTagging",
                 json.dumps({"Fn::Sub": "${InboxBucket.Arn}/uploads/*"}), "null"),
                ("s3:ListBucketVersions", json.dumps({"Fn::GetAtt": ["InboxBucket", "Arn"]}),
                 json.dumps({"StringLike": {"s3:prefix": inbox_keys}}, sort_keys=True)),
                ("s3:ListBucketVersions", json.dumps({"Fn::GetAtt": ["ResultsBucket", "Arn"]}),
                 json.dumps({"StringLike": {"s3:prefix": "looks/api/*"}}, sort_keys=True)),
                ("s3:DeleteObjectVersion",
                 json.dumps({"Fn::Sub": "${ResultsBucket.Arn}/looks/api/*"}), "null"),
                *(("s3:DeleteObjectVersion", json.dumps({"Fn::Sub": f"${{InboxBucket.Arn}}/{k}"}),
                   "null") for k in inbox_keys)}
    assert granted == expected
    # No other function erases anything.
    for name, spec in FUNCTIONS.items():
        if name != "ApiFunction":
            actions = {a for s in _statements(spec) for a in _listed(s["Action"])}
            assert not actions & {"s3:DeleteObjectVersion", "s3:ListBucketVersions"}, name


def test_buckets_refuse_old_tls_and_tables_cannot_be_deleted_by_accident():
    for policy in ("InboxBucketPolicy", "ResultsBucketPolicy"):
        conditions = [s.get("Condition", {}) for s in
                      RESOURCES[policy]["Properties"]["PolicyDocument"]["Statement"]
                      if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": False}} in conditions, policy
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions, policy
    for name, spec in RESOURCES.items():
        if spec["Type"] == "AWS::DynamoDB::Table":
            assert spec["Properties"]["DeletionProtectionEnabled"] is True, name


def _credentials_grants(name: str) -> dict[str, set[str]]:
    """The actions a role has on the credentials table, each with the partition keys
    (item kinds) its LeadingKeys condition limits it to."""
    statements = _statements(FUNCTIONS[name])
    if BUDGET_READ in FUNCTIONS[name]["Properties"]["Policies"]:
        statements += RESOURCES["ReadBudgetOverridePolicy"]["Properties"]["PolicyDocument"][
            "Statement"]
    grants: dict[str, set[str]] = {}
    for statement in statements:
        if CREDENTIALS_ARN not in _listed(statement["Resource"]):
            continue
        [keys] = [statement["Condition"][operator] for operator in (
            "ForAllValues:StringEquals", "ForAllValues:StringLike")
            if operator in statement["Condition"]]
        for action in _listed(statement["Action"]):
            grants.setdefault(action.split(":")[1], set()).update(keys["dynamodb:LeadingKeys"])
    return grants


def test_the_pipeline_reads_an_integrations_settings_and_never_its_keys_hashes():
    [_, settings] = RESOURCES["ReadBudgetOverridePolicy"]["Properties"]["PolicyDocument"][
        "Statement"]
    condition = settings["Condition"]
    assert condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == ["INTEGRATIONS"]
    # and its daily quota (intake counts an integration's catalogue file against it).
    assert set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == (
        {"pk", "sk", "daily_quota"} | SETTINGS)
    assert "keys_by_id" not in SETTINGS
    assert condition["StringEquals"] == {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}


def test_which_roles_read_and_write_which_credentials():
    # The decoders (intake, finalize) and every other function read the budget override
    # and an integration's settings (admission, intake); the authorizer a key and
    # its integration; the API integrations, principals and quotas, and it and intake
    # alone write there: quota counters. Keys, principals and the override: the operator only.
    # Every function that reads the override also reads an integration's settings alone
    # (test_the_pipeline_reads_an_integrations_settings_and_never_its_keys_hashes).
    budget = {"GetItem": {"BUDGET#LIMIT", "INTEGRATIONS"}}
    expected = {name: budget for name in FUNCTIONS}
    expected["AuthorizerFunction"] = {"GetItem": {"APIKEY#*", "INTEGRATIONS"}}
    # Intake counts an integration's catalogue file against its image quota.
    expected["IntakeFunction"] = {"GetItem": {"BUDGET#LIMIT", "INTEGRATIONS", "QUOTA#*"},
                                  "UpdateItem": {"QUOTA#*"}}
    # Webhook endpoints and their secrets: the API keeps an integration's own (its
    # routes scope every key to the caller); the delivery function reads them and
    # disables one. Neither reads a key, a principal of the operator's or the budget.
    webhooks = "WHSECRET#*"
    expected["ApiFunction"] = {"GetItem": {"BUDGET#LIMIT", "INTEGRATIONS", "PRINCIPAL#*",
                                           "QUOTA#*", webhooks},
                               "UpdateItem": {"QUOTA#*", webhooks}, "PutItem": {webhooks},
                               "DeleteItem": {webhooks}, "Query": {webhooks}}
    expected["WebhookDeliveryFunction"] = {"GetItem": {webhooks}, "Query": {webhooks},
                                           "UpdateItem": {webhooks}}
    expected["ProviderCancelFunction"] = {}
    for name in FUNCTIONS:
        assert _credentials_grants(name) == expected[name], name


def test_only_the_functions_that_call_the_provider_can_read_its_key():
    # Not the internet-facing API function: its one provider call (a queued task's
    # cancel) goes through ProviderCancelFunction, which it alone may invoke.
    secret = {"Ref": "ProviderApiKeySecretArn"}
    readers = {name for name, spec in FUNCTIONS.items() for statement in _statements(spec)
               if "secretsmanager:GetSecretValue" in _listed(statement["Action"])
               and _listed(statement["Resource"]) == [secret]}
    assert readers == {"SubmitFunction", "PollFunction", "CallFunction", "SweepFunction",
                       "ProviderCancelFunction"}
    api = FUNCTIONS["ApiFunction"]["Properties"]
    assert "PROVIDER_API_KEY_SECRET_ARN" not in api["Environment"]["Variables"]
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "ProviderCancelFunction"}}} in (
        api["Policies"])

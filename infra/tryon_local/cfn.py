"""Deploys `template.yaml` into the embedded AWS emulation (moto).

The SAM template is expanded by aws-sam-translator, the transform `sam deploy`
runs, so the local stack has the functions, roles (policy templates included),
event source mappings, schedules and rules CloudFormation would create. Each
resource of the expansion is then created through the AWS APIs; a type with no
creator here stops the deployment loudly rather than being skipped. IAM policies
are created but not enforced (moto does not evaluate them); `cfn-lint` and
`sam validate --lint` check them.
Why not moto's own CloudFormation: it ignores DefinitionSubstitutions, and its
SQS event source mapping invokes inline without partial batch responses (see
`sqs_poller.py`).
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import networkx
from cfnlint.decode.cfn_yaml import loads
from cfnlint.template import Template
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ACCOUNT_ID = "123456789012"
STACK_NAME = "tryon-local"
# Stands for the working tree in the S3 locations `sam package` would write.
LOCAL_BUCKET = "local"


class DeployError(RuntimeError):
    pass


def load_template(path: Path) -> dict[str, Any]:
    """The template as written (short-form tags read as their long form)."""
    return loads(path.read_text(), str(path))


def expand(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of `template`."""
    template = copy.deepcopy(template)
    # What `sam package` does first: the transform takes code and definitions from S3.
    for properties in (*template.get("Globals", {}).values(),
                       *(spec.get("Properties", {}) for spec in template["Resources"].values())):
        for key in ("CodeUri", "DefinitionUri"):
            if isinstance(properties.get(key), str) and "://" not in properties[key]:
                properties[key] = {"Bucket": LOCAL_BUCKET, "Key": properties[key]}
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    # Managed policy names resolve through the map samtranslator bundles; IAM is never
    # asked (an unknown name stays as written, and attaching it fails).
    return translator.translate(template, dict(parameters), get_managed_policy_map=dict)


def without_item_batcher(definition: str) -> str:
    """The definition without its Distributed Maps' `ItemBatcher`, which moto's ASL
    parser refuses (moto 5.2.5: ASLParserException). The one local difference it
    makes: each child gets one item ({"row", "batch"}) instead of up to
    MaxItemsPerBatch ({"Items": [...]}), which the batch rows function takes either
    way. Nothing else is changed."""
    document = json.loads(definition)
    stripped = False

    def strip(node: Any) -> None:
        nonlocal stripped
        if isinstance(node, dict):
            if node.get("Type") == "Map" and "ItemBatcher" in node:
                del node["ItemBatcher"]
                stripped = True
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(document)
    return json.dumps(document) if stripped else definition


# --- resolving intrinsic functions --------------------------------------------

_NO_VALUE = object()


@dataclass
class Stack:
    template: dict[str, Any]
    template_dir: Path
    parameters: dict[str, str]
    region: str
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    event_source_mappings: list[dict[str, Any]] = field(default_factory=list)
    # EventBridge schedules and rules that target functions: the runtime plays them.
    schedules: list[dict[str, Any]] = field(default_factory=list)
    event_rules: list[dict[str, Any]] = field(default_factory=list)
    # REST APIs by logical id, as the runtime's gateway serves them: "routes" ({"path",
    # "method", "auth" (an authorizer's name, "AWS_IAM" or None), "function"}),
    # "authorizers" (token authorizers by name: "function", "header", "validation",
    # "ttl"), "responses" (gateway responses), "stage", "variables", "firewall" (the
    # rules of the web ACL associated with its stage, or None).
    rest_apis: dict[str, dict[str, Any]] = field(default_factory=dict)

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            fn = _INTRINSICS.get(key)
            if fn:
                return fn(self, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        for table in (self.parameters, self.pseudo(), self.refs):
            if name in table:
                return table[name]
        raise DeployError(f"!Ref {name}: no such parameter or (deployed) resource")

    def get_att(self, resource: str, attribute: str) -> Any:
        try:
            return self.attributes[resource][attribute]
        except KeyError:
            raise DeployError(f"!GetAtt {resource}.{attribute} is not known locally") from None

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        # `${!Name}` is CloudFormation's escape for a literal `${Name}`.
        return re.sub(r"\$\{([^}!]+)\}", replace, text).replace("${!", "${")


_INTRINSICS: dict[str, Callable[[Stack, Any], Any]] = {
    "Ref": lambda s, a: s.ref(a),
    "Fn::GetAtt": lambda s, a: s.get_att(*(a if isinstance(a, list) else a.split(".", 1))),
    "Fn::Sub": lambda s, a: s.sub(a),
    "Fn::Join": lambda s, a: s.resolve(a[0]).join(str(v) for v in s.resolve(a[1])),
    "Fn::Select": lambda s, a: s.resolve(a[1])[int(s.resolve(a[0]))],
    "Fn::Split": lambda s, a: s.resolve(a[1]).split(a[0]),
    "Fn::Equals": lambda s, a: str(s.resolve(a[0])) == str(s.resolve(a[1])),
    "Fn::Not": lambda s, a: not s.resolve(a[0]),
    "Fn::And": lambda s, a: all(s.resolve(v) for v in a),
    "Fn::Or": lambda s, a: any(s.resolve(v) for v in a),
    "Fn::If": lambda s, a: s.resolve(a[1] if s.conditions[a[0]] else a[2]),
    "Condition": lambda s, a: s.conditions[a],
}


def _deployment_order(template: dict[str, Any]) -> list[str]:
    """Every resource after those it refers to or depends on (cfn-lint's reference graph),
    otherwise in the template's order."""
    position = {name: i for i, name in enumerate(template["Resources"])}
    graph = Template(None, template).graph.graph.reverse()  # edges: referred to -> referrer
    try:
        order = networkx.lexicographical_topological_sort(graph, key=lambda n: position.get(n, -1))
        return [name for name in order if name in position]
    except networkx.NetworkXUnfeasible:
        raise DeployError(f"circular dependency: {networkx.find_cycle(graph)}") from None


def _rate_seconds(expression: str) -> int:
    """`rate(1 minute)` -> 60 (the only schedule form the local runtime plays)."""
    match = re.fullmatch(r"rate\((\d+) (second|minute|hour|day)s?\)", expression.strip())
    if not match:
        raise DeployError(f"schedule {expression!r}: only rate(N unit) is supported locally")
    unit = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[match[2]]
    return int(match[1]) * unit


def _function_name(arn: str) -> str:
    """The function a Lambda ARN (or an API integration's URI) names."""
    match = re.search(r":function:([^:/]+)", arn)
    if not match:
        raise DeployError(f"{arn}: only Lambda functions are invoked locally")
    return match[1]


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's spelling of a lifecycle rule, in the S3 API's."""
    tags = [{"Key": tag["Key"], "Value": str(tag["Value"])} for tag in rule.get("TagFilters", [])]
    prefix = rule.get("Prefix", "")
    # One tag and no prefix is a Tag filter; a prefix with tags, or several tags, And.
    match = ({"Prefix": prefix} if not tags else
             {"Tag": tags[0]} if len(tags) == 1 and not prefix else
             {"And": {"Prefix": prefix, "Tags": tags} if prefix else {"Tags": tags}})
    api: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"],
                           "Filter": match}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(
            rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return api


# --- creating resources ---------------------------------------------------------

class Deployer:
    def __init__(self, session: Any, region: str, code_dir: Path) -> None:
        self._clients: dict[str, Any] = {}
        self._session = session
        self._region = region
        self._code_dir = code_dir
        self._zipped_code: bytes | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    def deploy(self, template_path: Path, overrides: dict[str, str]) -> Stack:
        template = load_template(template_path)
        declared = template.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise DeployError(f"unknown template parameters: {sorted(unknown)}")
        parameters = {}
        for name, spec in declared.items():
            if name not in overrides and "Default" not in spec:
                raise DeployError(f"parameter {name} has no default: give it a value")
            parameters[name] = str(overrides.get(name, spec.get("Default")))
        template = expand(template, parameters, self._region)
        stack = Stack(template, template_path.parent, parameters, self._region)
        for name, expr in template.get("Conditions", {}).items():
            stack.conditions[name] = bool(stack.resolve(expr))

        resources = template["Resources"]
        for logical_id in _deployment_order(template):
            spec = resources[logical_id]
            if "Condition" in spec and not stack.conditions[spec["Condition"]]:
                continue
            create = getattr(self, "_" + spec["Type"].replace("::", "_"), None)
            if create is None:
                raise DeployError(
                    f"{logical_id} ({spec['Type']}): the local runtime cannot create this "
                    "type; give Deployer in infra/tryon_local/cfn.py a method for it"
                )
            create(stack, logical_id, spec.get("Properties", {}))
        return stack

    @staticmethod
    def outputs(stack: Stack) -> dict[str, Any]:
        return {name: stack.resolve(spec["Value"])
                for name, spec in stack.template.get("Outputs", {}).items()}

    def _name(self, logical_id: str) -> str:
        return f"{STACK_NAME}-{logical_id}".lower()

    # Each method creates one resource type and records its Ref and attributes.

    def _AWS_S3_Bucket(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        s3 = self.client("s3")
        name = props.get("BucketName", self._name(logical_id))
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props[
                "VersioningConfiguration"])
        if props.get("BucketEncryption"):
            # CloudFormation and the S3 API spell the same rule differently.
            rules = [{"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                     for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
            s3.put_bucket_encryption(Bucket=name,
                                     ServerSideEncryptionConfiguration={"Rules": rules})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props[
                "PublicAccessBlockConfiguration"])
        if props.get("LifecycleConfiguration"):
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
                "Rules": [_lifecycle_rule(rule) for rule in
                          props["LifecycleConfiguration"]["Rules"]]})
        queues = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if queues:
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": q["Queue"], "Events": [q["Event"]],
                     "Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}}
                    for q in queues
                ]})
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": f"arn:aws:s3:::{name}", "DomainName": name}

    def _AWS_S3_BucketPolicy(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        document = dict(props["PolicyDocument"])
        # moto enforces bucket policies, and the embedded endpoint is plain HTTP on
        # loopback where every local function is the same principal: statements on the
        # transport (aws:SecureTransport, s3:TlsVersion) or the caller's role
        # (aws:PrincipalArn) are left out (tests/unit/test_template_security.py
        # checks them).
        document["Statement"] = [
            statement for statement in document["Statement"]
            if not any(key in json.dumps(statement.get("Condition", {})) for key in
                       ("aws:SecureTransport", "s3:TlsVersion", "aws:PrincipalArn"))
        ]
        if document["Statement"]:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"],
                                                Policy=json.dumps(document))

    def _AWS_DynamoDB_Table(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        ddb = self.client("dynamodb")
        name = props.get("TableName", self._name(logical_id))
        table = ddb.create_table(
            TableName=name,
            BillingMode=props.get("BillingMode", "PROVISIONED"),
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            **({"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]}
               if props.get("GlobalSecondaryIndexes") else {}),
            SSESpecification={"Enabled": props.get("SSESpecification", {}).get("SSEEnabled",
                                                                                False)},
        )["TableDescription"]
        if props.get("TimeToLiveSpecification"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=props[
                "TimeToLiveSpecification"])
        if props.get("PointInTimeRecoverySpecification"):
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=props[
                "PointInTimeRecoverySpecification"])
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": table["TableArn"]}

    def _AWS_SQS_Queue(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        name = props.get("QueueName", self._name(logical_id))
        attributes = {k: json.dumps(v) if isinstance(v, dict) else str(v).lower()
                      if isinstance(v, bool) else str(v)
                      for k, v in props.items() if k not in ("QueueName", "Tags")}
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        stack.refs[logical_id] = url
        stack.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _AWS_SQS_QueuePolicy(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})

    def _AWS_SNS_Topic(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if props.get(
            "KmsMasterKeyId") else {}
        arn = self.client("sns").create_topic(
            Name=props.get("TopicName", self._name(logical_id)), Attributes=attributes
        )["TopicArn"]
        stack.refs[logical_id] = arn
        stack.attributes[logical_id] = {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[-1]}

    def _AWS_Events_EventBus(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        name = props.get("Name", self._name(logical_id))
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": arn, "Name": name}

    def _AWS_SNS_Subscription(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """With its filter policy (moto applies it) and raw delivery setting."""
        props = stack.resolve(spec)
        attributes = {name: json.dumps(props[name]) if isinstance(props[name], dict)
                      else str(props[name]).lower() if isinstance(props[name], bool)
                      else str(props[name])
                      for name in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery")
                      if name in props}
        arn = self.client("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"],
            **({"Attributes": attributes} if attributes else {}))["SubscriptionArn"]
        stack.refs[logical_id] = arn

    def _AWS_Logs_LogGroup(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        logs = self.client("logs")
        name = props.get("LogGroupName", self._name(logical_id))
        logs.create_log_group(logGroupName=name)
        if props.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name,
                                      retentionInDays=int(props["RetentionInDays"]))
        stack.refs[logical_id] = name
        arn = f"arn:aws:logs:{self._region}:{ACCOUNT_ID}:log-group:{name}"
        stack.attributes[logical_id] = {"Arn": f"{arn}:*"}  # CloudFormation's form

    def _AWS_CloudWatch_Alarm(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Stored in moto as written (metric math included); moto does not evaluate
        alarms, so locally they never fire."""
        props = stack.resolve(spec)
        name = props.pop("AlarmName", self._name(logical_id))
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in props:
                props[key] = int(props[key])
        props["Threshold"] = float(props["Threshold"])
        for query in props.get("Metrics", []):
            if "Period" in query.get("MetricStat", {}):
                query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **props)
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {
            "Arn": f"arn:aws:cloudwatch:{self._region}:{ACCOUNT_ID}:alarm:{name}"}

    def _AWS_CloudWatch_Dashboard(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Stored in moto (which checks that the body is JSON); nothing renders it."""
        props = stack.resolve(spec)
        name = props.get("DashboardName", self._name(logical_id))
        self.client("cloudwatch").put_dashboard(DashboardName=name,
                                                DashboardBody=props["DashboardBody"])
        stack.refs[logical_id] = name

    def _AWS_IAM_Role(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        iam = self.client("iam")
        name = props.get("RoleName", self._name(logical_id))
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            props["AssumeRolePolicyDocument"]))["Role"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                           **policy["PolicyDocument"]}))
        for arn in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _AWS_IAM_ManagedPolicy(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        policy = self.client("iam").create_policy(
            PolicyName=props.get("ManagedPolicyName", self._name(logical_id)),
            PolicyDocument=json.dumps(props["PolicyDocument"]),
            Description=props.get("Description", ""))["Policy"]
        stack.refs[logical_id] = policy["Arn"]

    def _AWS_Lambda_Function(self, stack: Stack, logical_id: str, spec: dict) -> None:
        # Tags only mark what SAM made; the code is the working tree's (_code_zip).
        props = stack.resolve({k: v for k, v in spec.items() if k not in ("Code", "Tags")})
        name = props.pop("FunctionName", self._name(logical_id))
        environment = props.pop("Environment", {}).get("Variables", {})
        reserved = props.pop("ReservedConcurrentExecutions", None)
        function = self.client("lambda").create_function(
            FunctionName=name, Code={"ZipFile": self._code_zip()},
            Environment={"Variables": {k: str(v) for k, v in environment.items()}}, **props)
        if reserved is not None:  # kept as configuration: the local workers are not bounded
            self.client("lambda").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(reserved))
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": function["FunctionArn"]}

    def _AWS_Lambda_Permission(self, stack: Stack, logical_id: str, spec: dict) -> None:
        self.client("lambda").add_permission(StatementId=logical_id, **stack.resolve(spec))

    def _AWS_Lambda_EventSourceMapping(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        # Created disabled: moto would invoke inline on SendMessage; the runtime's
        # poller plays Lambda's part instead (batches, partial failures).
        mapping = self.client("lambda").create_event_source_mapping(**{**props,
                                                                      "Enabled": False})
        stack.refs[logical_id] = mapping["UUID"]
        stack.event_source_mappings.append({
            "uuid": mapping["UUID"], "function": props["FunctionName"],
            "queue_arn": props["EventSourceArn"], "batch_size": int(props.get("BatchSize", 10)),
            "partial_batch": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        })

    def _AWS_Scheduler_Schedule(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Stored in moto, which never fires it: the runtime plays it (events.py)."""
        props = stack.resolve(spec)
        arn = self.client("scheduler").create_schedule(**props)["ScheduleArn"]
        stack.refs[logical_id] = props["Name"]
        stack.attributes[logical_id] = {"Arn": arn}
        stack.schedules.append({"function": _function_name(props["Target"]["Arn"]),
                                "input": props["Target"].get("Input", "{}"),
                                "seconds": _rate_seconds(props["ScheduleExpression"])})

    def _AWS_Events_Rule(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Stored in moto, whose Step Functions emits no events: the runtime plays it."""
        props = stack.resolve(spec)
        events = self.client("events")
        name = props.get("Name", self._name(logical_id))
        arn = events.put_rule(Name=name, EventPattern=json.dumps(props["EventPattern"]))[
            "RuleArn"]
        events.put_targets(Rule=name, Targets=props["Targets"])
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": arn}
        stack.event_rules.extend({"function": _function_name(target["Arn"]),
                                  "pattern": props["EventPattern"]}
                                 for target in props["Targets"])

    def _AWS_ApiGateway_RestApi(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Imported into moto's API Gateway; its routes, token authorizers and gateway
        responses are served by the runtime's gateway (gateway.py), which checks no
        SigV4: a route with AWS_IAM auth is not served locally."""
        props = stack.resolve(spec)
        if "Body" not in props:
            raise DeployError(f"{logical_id}: only an inline OpenAPI Body is served locally")
        body = props["Body"]
        client = self.client("apigateway")
        api_id = client.create_rest_api(name=self._name(logical_id))["id"]
        client.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(body))
        routes = []
        for path, operations in body["paths"].items():
            for method, operation in operations.items():
                auth = next(iter((operation.get("security") or [{}])[0]), None)
                routes.append({
                    "path": path, "auth": None if auth == "NONE" else auth,
                    "method": "ANY" if method == "x-amazon-apigateway-any-method"
                    else method.upper(),
                    "function": _function_name(
                        operation["x-amazon-apigateway-integration"]["uri"])})
        authorizers = {}
        for name, scheme in body.get("components", {}).get("securitySchemes", {}).items():
            authorizer = scheme.get("x-amazon-apigateway-authorizer")
            if authorizer is None:
                continue
            if authorizer["type"] != "token":
                raise DeployError(f"{logical_id}: authorizer {name}: only token "
                                  "authorizers are served locally")
            authorizers[name] = {
                "function": _function_name(authorizer["authorizerUri"]),
                "header": scheme["name"],
                "validation": authorizer.get("identityValidationExpression"),
                "ttl": int(authorizer.get("authorizerResultTtlInSeconds", 300))}
        stack.rest_apis[logical_id] = {
            "id": api_id, "routes": routes, "authorizers": authorizers,
            "responses": body.get("x-amazon-apigateway-gateway-responses", {}),
            "stage": None, "variables": {}, "firewall": None}
        stack.refs[logical_id] = api_id
        stack.attributes[logical_id] = {"RootResourceId": client.get_resources(
            restApiId=api_id)["items"][0]["id"]}

    def _AWS_ApiGateway_Deployment(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        deployment = self.client("apigateway").create_deployment(
            restApiId=props["RestApiId"], description=props.get("Description", ""))
        stack.refs[logical_id] = deployment["id"]

    def _AWS_ApiGateway_Stage(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Method throttling and access logs are kept as configuration: the gateway
        applies neither (the web ACL's rate rules it does apply)."""
        props = stack.resolve(spec)
        self.client("apigateway").create_stage(
            restApiId=props["RestApiId"], stageName=props["StageName"],
            deploymentId=props["DeploymentId"], variables=props.get("Variables", {}),
            tracingEnabled=bool(props.get("TracingEnabled", False)))
        api = next(a for a in stack.rest_apis.values() if a["id"] == props["RestApiId"])
        api.update(stage=props["StageName"], variables=props.get("Variables", {}))
        stack.refs[logical_id] = props["StageName"]

    def _AWS_WAFv2_WebACL(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        for rule in props.get("Rules", []):  # numbers given as parameters arrive as strings
            rule["Priority"] = int(rule["Priority"])
            rate = rule["Statement"].get("RateBasedStatement", {})
            for number in ("Limit", "EvaluationWindowSec"):
                if number in rate:
                    rate[number] = int(rate[number])
        acl = self.client("wafv2").create_web_acl(Name=props.get("Name", self._name(logical_id)),
                                                  **{k: v for k, v in props.items()
                                                     if k != "Name"})["Summary"]
        stack.refs[logical_id] = f"{acl['Name']}|{acl['Id']}|{props['Scope']}"
        stack.attributes[logical_id] = {"Arn": acl["ARN"], "Id": acl["Id"],
                                        "Rules": props.get("Rules", [])}

    def _AWS_WAFv2_WebACLAssociation(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Recorded in moto; the gateway applies the web ACL's rate-based rules."""
        props = stack.resolve(spec)
        self.client("wafv2").associate_web_acl(**props)
        api_id, stage = re.fullmatch(r".*/restapis/([^/]+)/stages/([^/]+)",
                                     props["ResourceArn"]).groups()
        rules = next(a["Rules"] for a in stack.attributes.values()
                     if a.get("Arn") == props["WebACLArn"])
        for api in stack.rest_apis.values():
            if api["id"] == api_id and api["stage"] == stage:
                api["firewall"] = rules
        stack.refs[logical_id] = props["ResourceArn"]

    def _AWS_StepFunctions_StateMachine(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        location = props["DefinitionS3Location"]
        if location["Bucket"] != LOCAL_BUCKET:
            raise DeployError(f"{logical_id}: the definition must be a local file")
        definition = (stack.template_dir / location["Key"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        leftover = re.findall(r"\$\{[A-Za-z0-9]+\}", definition)
        if leftover:
            raise DeployError(f"{logical_id}: unsubstituted {sorted(set(leftover))}")
        definition = without_item_batcher(definition)
        logging = props.get("LoggingConfiguration")
        machine = self.client("stepfunctions").create_state_machine(
            name=props.get("StateMachineName", self._name(logical_id)),
            definition=definition,
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
            # Kept as configuration: moto writes no execution logs.
            **({"loggingConfiguration": {
                "level": logging.get("Level", "OFF"),
                "includeExecutionData": bool(logging.get("IncludeExecutionData", False)),
                "destinations": [{"cloudWatchLogsLogGroup": {
                    "logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging.get("Destinations", [])],
            }} if logging else {}),
        )
        stack.refs[logical_id] = machine["stateMachineArn"]
        stack.attributes[logical_id] = {"Arn": machine["stateMachineArn"],
                                        "Name": machine["stateMachineArn"].rsplit(":", 1)[-1]}

    def _code_zip(self) -> bytes:
        """The real function code, zipped as `sam build` would (without dependencies)."""
        if self._zipped_code is None:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(self._code_dir.rglob("*.py")):
                    archive.write(path, path.relative_to(self._code_dir))
            self._zipped_code = buffer.getvalue()
        return self._zipped_code

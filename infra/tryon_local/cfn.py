"""Deploys `template.yaml` into the embedded AWS emulation (moto).

The local stack is built from the template itself, resource by resource, so it
cannot drift from what `sam deploy` creates. Only the resource types the
template uses are supported; any other type stops the deployment loudly
rather than being skipped. IAM policies are created but not enforced (moto
does not evaluate them); `cfn-lint` and `sam validate --lint` check them.
Why not moto's own CloudFormation: it ignores DefinitionSubstitutions and the
SAM transform, and its SQS event source mapping invokes inline without partial
batch responses (see `sqs_poller.py`).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
STACK_NAME = "tryon-local"


class DeployError(RuntimeError):
    pass


# --- reading the template (CloudFormation short-form tags) --------------------

class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(tag: str) -> None:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    _CfnLoader.add_constructor(f"!{tag}", construct)


for _name in ("Ref", "GetAtt", "Sub", "If", "Equals", "Not", "And", "Or", "Join",
              "Select", "Split", "GetAZs", "ImportValue", "FindInMap", "Base64"):
    _tag(_name)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)


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
    # HTTP API routes to functions ({"api", "auth", "method", "path", "function"}): the
    # runtime's gateway serves them.
    http_routes: list[dict[str, Any]] = field(default_factory=list)

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


def _references(value: Any) -> set[str]:
    """Logical ids a resource's definition refers to (for deployment order)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
            found |= _references(arg)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _deployment_order(resources: dict[str, Any]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise DeployError(f"circular dependency through {name}")
        visiting.add(name)
        spec = resources[name]
        depends = spec.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        for dep in sorted((_references(spec) | set(depends)) & set(resources)):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in resources:
        visit(name)
    return order


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """SAM Globals semantics: maps merge, everything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _rate_seconds(expression: str) -> int:
    """`rate(1 minute)` -> 60 (the only schedule form the local runtime plays)."""
    match = re.fullmatch(r"rate\((\d+) (second|minute|hour|day)s?\)", expression.strip())
    if not match:
        raise DeployError(f"schedule {expression!r}: only rate(N unit) is supported locally")
    unit = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[match[2]]
    return int(match[1]) * unit


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's spelling of a lifecycle rule, in the S3 API's."""
    api: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"],
                           "Filter": {"Prefix": rule.get("Prefix", "")}}
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
        stack = Stack(template, template_path.parent, parameters, self._region)
        for name, expr in template.get("Conditions", {}).items():
            stack.conditions[name] = bool(stack.resolve(expr))

        resources = template["Resources"]
        globals_fn = template.get("Globals", {}).get("Function", {})
        for logical_id in _deployment_order(resources):
            spec = resources[logical_id]
            if "Condition" in spec and not stack.conditions[spec["Condition"]]:
                continue
            properties = spec.get("Properties", {})
            if spec["Type"] == "AWS::Serverless::Function":
                properties = _merge(globals_fn, properties)
            create = getattr(self, "_" + spec["Type"].replace("::", "_"), None)
            if create is None:
                raise DeployError(
                    f"{logical_id}: type {spec['Type']} is not supported by the local runtime; "
                    "add it to infra/tryon_local/cfn.py"
                )
            create(stack, logical_id, properties)
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
        # The embedded endpoint is plain HTTP on loopback, and moto enforces bucket
        # policies: statements about aws:SecureTransport are the one thing left out.
        document["Statement"] = [
            statement for statement in document["Statement"]
            if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
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
        props = stack.resolve(spec)
        arn = self.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props[
            "Protocol"], Endpoint=props["Endpoint"])["SubscriptionArn"]
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

    def _role(self, logical_id: str, service: str, policies: Any) -> str:
        role = self.client("iam").create_role(
            RoleName=self._name(logical_id) + "-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": service},
                "Action": "sts:AssumeRole"}]}),
        )["Role"]
        for i, policy in enumerate(policies or []):
            if isinstance(policy, dict) and "Statement" in policy:
                self.client("iam").put_role_policy(
                    RoleName=role["RoleName"], PolicyName=f"inline-{i}",
                    PolicyDocument=json.dumps({"Version": "2012-10-17", **policy}))
        return role["Arn"]

    def _AWS_Serverless_Function(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve({k: v for k, v in spec.items() if k != "Events"})
        lam = self.client("lambda")
        name = props.get("FunctionName", self._name(logical_id))
        variables = {k: str(v) for k, v in props.get("Environment", {})
                     .get("Variables", {}).items()}
        function = lam.create_function(
            FunctionName=name,
            Runtime=props["Runtime"],
            Handler=props["Handler"],
            Role=self._role(logical_id, "lambda.amazonaws.com", props.get("Policies")),
            Code={"ZipFile": self._code_zip()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": variables},
            Architectures=props.get("Architectures", ["x86_64"]),
            Description=props.get("Description", ""),
        )
        stack.refs[logical_id] = name
        stack.attributes[logical_id] = {"Arn": function["FunctionArn"]}
        for event_name, event in spec.get("Events", {}).items():
            source = stack.resolve(event["Properties"])
            if event["Type"] == "ScheduleV2":
                stack.schedules.append({"function": name, "input": source.get("Input", "{}"),
                                        "seconds": _rate_seconds(source["ScheduleExpression"])})
                continue
            if event["Type"] == "EventBridgeRule":
                stack.event_rules.append({"function": name, "pattern": source["Pattern"]})
                continue
            if event["Type"] == "HttpApi":
                api = next(api_id for api_id, ref in stack.refs.items()
                           if ref == source["ApiId"])
                stack.http_routes.append({"api": api, "function": name,
                                          "auth": stack.attributes[api]["Authorizer"],
                                          "method": source["Method"].upper(),
                                          "path": source["Path"]})
                continue
            if event["Type"] != "SQS":
                raise DeployError(f"{logical_id}.{event_name}: event type {event['Type']} "
                                  "is not supported locally")
            # Created disabled: moto would invoke inline on SendMessage; the runtime's
            # poller plays Lambda's part instead (batches, partial failures).
            mapping = lam.create_event_source_mapping(
                EventSourceArn=source["Queue"], FunctionName=name, Enabled=False,
                BatchSize=int(source.get("BatchSize", 10)),
                FunctionResponseTypes=source.get("FunctionResponseTypes", []),
            )
            stack.event_source_mappings.append({
                "uuid": mapping["UUID"], "function": name, "queue_arn": source["Queue"],
                "batch_size": int(source.get("BatchSize", 10)),
                "partial_batch": "ReportBatchItemFailures" in source.get(
                    "FunctionResponseTypes", []),
            })

    def _AWS_Serverless_HttpApi(self, stack: Stack, logical_id: str, spec: dict) -> None:
        """Recorded in moto's API Gateway v2; its routes are served by the runtime's
        gateway (runtime.ApiGateway), which checks no SigV4: an AWS_IAM API is not
        served locally."""
        props = stack.resolve(spec)
        api = self.client("apigatewayv2").create_api(Name=self._name(logical_id),
                                                     ProtocolType="HTTP")
        stack.refs[logical_id] = api["ApiId"]
        stack.attributes[logical_id] = {
            "Authorizer": props.get("Auth", {}).get("DefaultAuthorizer"),
            "ApiEndpoint": api["ApiEndpoint"]}

    def _AWS_Serverless_StateMachine(self, stack: Stack, logical_id: str, spec: dict) -> None:
        props = stack.resolve(spec)
        definition = (stack.template_dir / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        leftover = re.findall(r"\$\{[A-Za-z0-9]+\}", definition)
        if leftover:
            raise DeployError(f"{logical_id}: unsubstituted {sorted(set(leftover))}")
        logging = props.get("Logging")
        machine = self.client("stepfunctions").create_state_machine(
            name=props.get("Name", self._name(logical_id)),
            definition=definition,
            roleArn=self._role(logical_id, "states.amazonaws.com", props.get("Policies")),
            type=props.get("Type", "STANDARD"),
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

"""The embedded local runtime: moto's AWS emulation (with Step Functions
execution on and Lambda invocations running the real handlers), the provider
emulator, and the stack from `template.yaml` deployed into it. One process
tree, no AWS account, no provider key, no Docker."""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx

from tryon_local.cfn import Deployer, Stack
from tryon_local.dynamodb_server import DynamoDBProcess, RemoteMeter
from tryon_local.emulator.config import ModelQuota
from tryon_local.events import ExecutionStatusRule, ScheduledInvoker
from tryon_local.gateway import ApiGateway
from tryon_local.lambdas import FunctionSpec, LambdaRuntime, install_moto_hook
from tryon_local.sqs_poller import SqsPoller

log = logging.getLogger(__name__)

REGION = "us-east-1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_ROOT / "template.yaml"
EMULATOR_API_KEY = "sk-emulator"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class LocalOptions:
    provider_url: str | None = None  # None: the embedded provider emulator
    api_key: str | None = None  # for provider_url; the emulator needs none
    speedup: float = 1.0  # emulator clock speed-up; Step Functions waits shrink alike
    gen_time: tuple[float, float] = (15.0, 30.0)
    seed: int | None = None
    retired_models: tuple[str, ...] = ()  # the embedded emulator answers these as retired
    parameters: dict[str, str] = field(default_factory=dict)  # template overrides
    # Models' limits at the embedded emulator, over the published ones.
    emulator_limits: dict[str, ModelQuota] = field(default_factory=dict)
    # Set last, over the template's variables, e.g. short timeouts for tests.
    function_env: dict[str, str] = field(default_factory=dict)
    warm_workers: int = 1  # workers started per function before the first job
    api_port: int = 0  # the local HTTP API's port on 127.0.0.1 (0: any free one)
    workdir: Path | None = None  # function logs go to workdir/logs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ScaledTime:
    """`time` for moto's retrier module, with sleeps shortened by the speed-up."""

    def __init__(self, speedup: float) -> None:
        import time

        self._time = time
        self._speedup = speedup

    def sleep(self, seconds: float) -> None:
        self._time.sleep(seconds / self._speedup)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._time, name)


def list_moto_modules_once() -> None:
    """moto lists its package's directory on every request, to tell which service a
    host names (moto 5.2.5: backends.list_of_moto_modules, from the server's
    dispatcher): about a seventh of the local stack's busy time under load (py-spy,
    a catalogue of 250 rows). The list cannot change while the stack runs."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def moto_keeps_only_live_models() -> None:
    """moto keeps every model instance it ever made, in its class's `instances_tracked`
    (moto 5.2.5 BaseModel.__new__), for its dashboard: every DynamoDB item version,
    index projection and transaction backup stays in memory. A 10,000-row catalogue's
    DynamoDB process grew by 6 MB a second, to 13 GB at 2,360 s, on its way out of
    memory. Only S3's keys and uploads are still listed: moto's reset closes their
    files from that list."""
    from moto.core.common_models import BaseModel

    if getattr(BaseModel.__new__, "live_only", False):
        return

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)
        if cls.__module__ == "moto.s3.models" and cls.__name__ in {"FakeKey", "FakeMultipart"}:
            cls.instances_tracked.append(instance)  # type: ignore[attr-defined]
        return instance

    __new__.live_only = True  # type: ignore[attr-defined]
    BaseModel.__new__ = staticmethod(__new__)  # type: ignore[method-assign,assignment]


def _sqs_reads_the_clock_cheaply() -> None:
    """moto's SQS asks for the time of day once per message it looks at (is it visible,
    is it delayed), through datetime arithmetic: a seventh of the local stack's main
    process at catalogue scale (py-spy), its queues holding thousands of messages.
    The same clock, read from time.time()."""
    from moto.sqs import models

    original = models.unix_time_millis
    if getattr(original, "cheap", False):
        return

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else original(dt)

    unix_time_millis.cheap = True  # type: ignore[attr-defined]
    models.unix_time_millis = unix_time_millis


def _step_functions_reuse_clients() -> None:
    """moto's Step Functions builds a new boto3 client for every Lambda task it runs
    (moto 5.2.5 asl.utils.boto_client.boto_client_for): about an eighth of the local
    stack's main process at catalogue scale (py-spy). boto3 clients are safe to share
    between threads; one per region and service, built the same way."""
    import sys

    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (  # noqa: F401
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    if getattr(original, "shared", False):
        return
    clients: dict[tuple[str, str, bool], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, boto_client.botocore_stubber.enabled)
        with lock:
            if key not in clients:
                clients[key] = original(region, service, state_credentials)
            return clients[key]

    boto_client_for.shared = True  # type: ignore[attr-defined]
    for name, module in list(sys.modules.items()):  # each imported it by name
        if name.startswith("moto.stepfunctions") and getattr(
                module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for


def _step_functions_parse_apart() -> None:
    """moto's Step Functions parses a state machine per execution with a Preprocessor
    whose stack of query-language scopes is one list on the class (moto 5.2.5
    asl.parse.preprocessor), shared by executions starting at once on other threads:
    one pops another's scope and the execution's thread dies of IndexError before it
    runs, so its job never ends (seen once in 1,000 looks). Each its own list."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    if getattr(Preprocessor.__init__, "apart", False):
        return
    original = Preprocessor.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._query_language_per_scope = []

    __init__.apart = True  # type: ignore[attr-defined]
    Preprocessor.__init__ = __init__


def _distributed_map_workers_loop() -> None:
    """moto's Distributed Map worker takes its next child by calling itself (moto 5.2.5
    DistributedItemProcessorWorker._eval_pool), one frame per child: a worker that
    ran about 1,000 children died of RecursionError, and a 10,000-row catalogue
    stalled at 9,700 rows (the local stack runs a child per row). The same steps in a
    loop."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.\
        itemprocessor.distributed_item_processor_worker import DistributedItemProcessorWorker

    if getattr(DistributedItemProcessorWorker._eval_pool, "loops", False):
        return

    def _eval_pool(self: Any, job: Any, worker_frame: Any) -> None:
        while True:
            if job is None:
                self._env.delete_frame(worker_frame)
                return
            job_frame = worker_frame.open_inner_frame()
            self._eval_job(env=job_frame, job=job)
            worker_frame.delete_frame(job_frame)
            next_job = (None if isinstance(job.job_output, Exception) or self.stopped()
                        else self._job_pool.next_job())
            if next_job is None:  # a failed child, a stop, or no child left
                self._env.delete_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            self._job_pool.close_job(job)
            job = next_job

    _eval_pool.loops = True  # type: ignore[attr-defined]
    DistributedItemProcessorWorker._eval_pool = _eval_pool


def _scale_step_functions_time(speedup: float) -> None:
    """moto's Wait and Retry sleep in real time; the emulator's clock runs `speedup`
    times faster, so shrink both by the same factor to keep them in step."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds / speedup)

    wait_function.WaitFunction._wait_interval = _wait_interval
    retrier_decl.time = _ScaledTime(speedup)


def _s3_events_name_versions() -> None:
    """moto's S3 event leaves out the object's versionId (and has no sequencer), which
    S3 sends for a versioned bucket such as the inbox; put it back, so that job ids
    come from versions locally as they do in AWS (a re-upload is a new job)."""
    from moto.s3 import notifications

    original = notifications._get_s3_event
    if getattr(original, "adds_version_id", False):
        return

    def _get_s3_event(event_name: Any, bucket: Any, key: Any, notification_id: Any) -> dict:
        event = original(event_name, bucket, key, notification_id)
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version_id
        return event

    _get_s3_event.adds_version_id = True  # type: ignore[attr-defined]
    notifications._get_s3_event = _get_s3_event


def _s3_post_forms_keep_their_policy() -> None:
    """moto stores a presigned POST's file whatever the form's policy says, and drops
    its `tagging` field. Refuse a file outside the policy's content-length-range (400
    EntityTooLarge/EntityTooSmall, as S3 does) and tag the object with the form's
    Tagging document, so that upload forms size and tag locally as they do in AWS (the
    unreferenced-upload lifecycle rule filters on that tag)."""
    import base64

    import xmltodict
    from moto.s3.responses import S3Response

    original = S3Response._bucket_response_post
    if getattr(original, "keeps_policy", False):
        return

    def _bucket_response_post(self: Any, request: Any, bucket_name: str) -> Any:
        form = getattr(self, "form_data", None) or {}
        if "key" not in form or "policy" not in form:
            return original(self, request, bucket_name)
        conditions = json.loads(base64.b64decode(form["policy"])).get("conditions", [])
        size = len(self.body or b"")
        for condition in conditions:
            if isinstance(condition, list) and condition[0] == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if not low <= size <= high:
                    code = "EntityTooLarge" if size > high else "EntityTooSmall"
                    return 400, {"Content-Type": "application/xml"}, (
                        f"<Error><Code>{code}</Code><Message>Your proposed upload is "
                        f"{size} bytes, outside {low}-{high}</Message></Error>")
        answer = original(self, request, bucket_name)
        if form.get("tagging"):
            tags = xmltodict.parse(form["tagging"], force_list={"Tag": True})
            stored = self.backend.get_object(bucket_name, self.querystring["key"][0])
            self.backend.put_object_tagging(stored, {
                tag["Key"]: tag.get("Value") or ""
                for tag in tags["Tagging"]["TagSet"]["Tag"]})
        return answer

    _bucket_response_post.keeps_policy = True  # type: ignore[attr-defined]
    S3Response._bucket_response_post = _bucket_response_post


class LocalStack:
    """Start with `with LocalStack(options) as stack:`; `stack.outputs` are the template's."""

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self.workdir = self.options.workdir or Path(tempfile.mkdtemp(prefix="tryon-local-"))
        self._stoppers: list[Any] = []
        self.emulator: Any = None
        self.outputs: dict[str, Any] = {}
        self.stack: Stack | None = None
        self.pollers: list[SqsPoller] = []

    # --- lifecycle ------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        port = free_port()
        # moto's Step Functions interpreter calls Lambda through this port, and the
        # local stack must never reach a real AWS account. The AWS managed policies
        # SAM attaches to roles (basic execution, X-Ray, SQS polling) must exist.
        os.environ.update({
            "MOTO_PORT": str(port), "AWS_DEFAULT_REGION": REGION,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
        })
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        self.endpoint = f"http://127.0.0.1:{port}"
        self.time_anchor = time.time()  # the functions' clock runs `speedup` times faster from here
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call
        list_moto_modules_once()
        moto_keeps_only_live_models()
        _sqs_reads_the_clock_cheaply()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        self._stoppers.append(server.stop)
        dynamodb = DynamoDBProcess(free_port(), {
            **os.environ, "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PROJECT_ROOT / "infra"), os.environ.get("PYTHONPATH")]))},
            self.workdir / "logs" / "dynamodb.log")
        self._stoppers.append(dynamodb.stop)
        self.endpoints = {"dynamodb": dynamodb.endpoint}
        # moto's backends live in the process: a stack started after another one
        # starts from nothing.
        httpx.post(f"{self.endpoint}/moto-api/reset").raise_for_status()
        httpx.post(f"{self.endpoint}/moto-api/config",
                   json={"stepfunctions": {"execute_state_machine": True}}).raise_for_status()

        provider_url, api_key = self._start_provider()
        self.lambdas = LambdaRuntime(self._function_env(provider_url), self.workdir / "logs",
                                     self.options.function_env)
        self._stoppers.append(self.lambdas.stop)
        install_moto_hook(self.lambdas)
        _scale_step_functions_time(self.options.speedup)
        _distributed_map_workers_loop()
        _step_functions_reuse_clients()
        _step_functions_parse_apart()
        _s3_events_name_versions()
        _s3_post_forms_keep_their_policy()
        self.dynamodb_meter = RemoteMeter(dynamodb.endpoint)

        self.clients = EndpointSession(boto3.Session(region_name=REGION, **FAKE_CREDENTIALS),
                                       self.endpoint, self.endpoints)
        secret_arn = self.client("secretsmanager").create_secret(
            Name="tryon/dashscope-api-key", SecretString=api_key)["ARN"]
        deployer = Deployer(self.clients, REGION, PROJECT_ROOT / "functions")
        self.stack = deployer.deploy(TEMPLATE, {
            "ProviderApiKeySecretArn": secret_arn,
            "ProviderBaseUrl": provider_url,
            **self.options.parameters,
        })
        self.outputs = deployer.outputs(self.stack)
        self._warm_functions()
        for mapping in self.stack.event_source_mappings:
            poller = SqsPoller(self.clients, mapping, REGION)
            poller.start()
            self.pollers.append(poller)
            self._stoppers.append(poller.stop)
        self.lambda_client = self.client("lambda")
        self.gateway = ApiGateway(self.stack.rest_apis["Api"], self._invoke,
                                  self.options.api_port)
        self.gateway.start()
        self._stoppers.append(self.gateway.stop)
        self.event_loops = [
            *(ScheduledInvoker(self.clients, s, self.options.speedup)
              for s in self.stack.schedules),
            *(ExecutionStatusRule(self.clients, r, REGION) for r in self.stack.event_rules),
        ]
        for loop in self.event_loops:
            loop.start()
            self._stoppers.append(loop.stop)

    def stop(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception:  # stop the rest regardless
                log.exception("stopping the local stack")

    def _start_provider(self) -> tuple[str, str]:
        if self.options.provider_url:
            if not self.options.api_key:
                raise SystemExit("--provider-url needs DASHSCOPE_API_KEY in the environment")
            return self.options.provider_url, self.options.api_key
        from tryon_local.emulator import EmulatorConfig, serve_in_thread

        config = EmulatorConfig(
            api_keys=frozenset({EMULATOR_API_KEY}), gen_time=self.options.gen_time,
            speedup=self.options.speedup, seed=self.options.seed,
            model_quotas=self.options.emulator_limits,
            retired_models=frozenset(self.options.retired_models))
        self.emulator = serve_in_thread(config, host="127.0.0.1", port=0)
        self._stoppers.append(self.emulator.stop)
        return self.emulator.base_url, EMULATOR_API_KEY

    def _function_env(self, provider_url: str) -> dict[str, str]:
        """What every local "Lambda container" sees besides its template variables."""
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "SYSTEMROOT", "TMPDIR")}
        return {
            **keep,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoints["dynamodb"],
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": "local",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "PYTHONUNBUFFERED": "1",
            "TIME_SCALE": str(self.options.speedup),
            "TIME_ANCHOR": str(self.time_anchor),
            # Results come from the provider this stack drives, on loopback over http.
            "LOCAL_RESULT_URL_HOSTS": urlsplit(provider_url).hostname or "",
            # Webhook receivers on this machine: http to loopback (never elsewhere).
            "WEBHOOK_ALLOW_LOOPBACK": "1",
        }

    def _warm_functions(self) -> None:
        """Start one worker per function in parallel, so the first job pays no cold start."""
        functions = [FunctionSpec.from_api(config) for config in
                     self.client("lambda").list_functions()["Functions"]]
        with ThreadPoolExecutor(max_workers=len(functions) or 1) as pool:
            list(pool.map(lambda spec: self.lambdas.warm(spec, self.options.warm_workers),
                          functions))

    def _invoke(self, function: str, event: dict[str, Any]) -> tuple[Any, bool]:
        """Invoke a function as API Gateway does (synchronously, through moto's Lambda)."""
        answer = self.lambda_client.invoke(FunctionName=function,
                                           Payload=json.dumps(event).encode())
        return json.loads(answer["Payload"].read() or b"null"), "FunctionError" in answer

    @property
    def api_url(self) -> str:
        """The HTTP API's base URL, ending in /v1 (the bearer-key API's stage)."""
        return self.gateway.base_url

    def create_api_key(self, name: str, daily_quota: int | None = None) -> str:
        """A key for integration `name` (created if new), as `tryon keys create` makes it."""
        from tryon.adapters.integrations import Integrations

        integrations = Integrations(self.outputs["CredentialsTableName"],
                                    self.resource("dynamodb"))
        return integrations.create_key(name, daily_quota, time.time())[0]

    def write_state(self, path: Path) -> Path:
        """What `tryon jobs|keys|budget --local` needs to reach this stack from another
        process: the endpoint, the outputs and the function whose settings it reads."""
        state = {
            "endpoint": self.endpoint, "endpoints": self.endpoints, "region": REGION,
            "outputs": self.outputs,
            "api_url": self.api_url, "api_function": self.stack.refs["ApiFunction"],
            # Given to every function besides its template variables (_function_env):
            # the operator's budget day and timestamps must count time as they do.
            "clock": {"scale": self.options.speedup, "anchor": self.time_anchor},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_name(f".{path.name}.tmp")
        written.write_text(json.dumps(state, indent=2))
        written.replace(path)  # a reader never sees half a file
        return path

    # --- clients ----------------------------------------------------------------

    def client(self, service: str) -> Any:
        return self.clients.client(service)

    def resource(self, service: str) -> Any:
        return self.clients.resource(service)

    def subscribe_queue(self, name: str) -> str:
        """An SQS queue subscribed to the notification topic (a stand-in subscriber)."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=self.outputs["NotificationTopicArn"],
                                     Protocol="sqs", Endpoint=arn)
        return url


class EndpointSession:
    """A boto3 session whose clients talk to the embedded endpoint, or to a service's
    own (DynamoDB's process)."""

    def __init__(self, session: boto3.Session, endpoint: str,
                 endpoints: dict[str, str] | None = None) -> None:
        self._session = session
        self._endpoint = endpoint
        self._endpoints = endpoints or {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:  # boto3 sessions are not thread-safe when creating clients
            return self._session.client(service, endpoint_url=self._url(service))

    def resource(self, service: str) -> Any:
        with self._lock:
            return self._session.resource(service, endpoint_url=self._url(service))

    def _url(self, service: str) -> str:
        return self._endpoints.get(service, self._endpoint)


def notifications_from(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Drain a subscriber queue: [{"message": body, "attributes": {...}}]."""
    received = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return received
        for message in messages:
            envelope = json.loads(message["Body"])
            received.append({
                "message": json.loads(envelope["Message"]),
                "attributes": {k: v["Value"] for k, v in
                               envelope.get("MessageAttributes", {}).items()},
            })
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


"""The moto internals the local runtime replaces or wraps (infra/tryon_local/lambdas.py
and runtime.py) still exist in the pinned moto, with the shape the runtime calls:
a moto upgrade that moves one fails here, not as a silent local misbehaviour."""

import inspect

from moto.awslambda.models import LambdaFunction
from moto.dynamodb.models import DynamoDBBackend
from moto.s3 import notifications
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from tryon_local.moto_dynamodb import WriteCounter


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_lambda_invocations_go_through_the_one_method_the_runtime_replaces():
    assert parameters(LambdaFunction._invoke_lambda)[:2] == ["self", "event"]


def test_step_functions_waits_and_retries_sleep_where_the_runtime_scales_them():
    assert parameters(wait_function.WaitFunction._wait_interval) == [
        "self", "env", "wait_seconds"]
    assert hasattr(retrier_decl, "time") and hasattr(retrier_decl.time, "sleep")


def test_s3_events_are_built_by_the_function_the_runtime_wraps():
    assert parameters(notifications._get_s3_event) == [
        "event_name", "bucket", "key", "notification_id"]


def test_dynamodb_writes_pass_through_the_backend_methods_the_benchmarks_count():
    for operation in WriteCounter.OPERATIONS:
        assert callable(getattr(DynamoDBBackend, operation)), operation


def test_sqs_reads_its_clock_through_the_name_the_runtime_replaces():
    from moto.sqs import models
    from tryon_local.runtime import _sqs_reads_the_clock_cheaply

    before = models.unix_time_millis()
    _sqs_reads_the_clock_cheaply()
    assert abs(models.unix_time_millis() - before) < 5_000
    assert models.unix_time_millis.cheap


def test_a_distributed_map_worker_runs_more_children_than_pythons_recursion_limit():
    import sys
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.\
        itemprocessor.distributed_item_processor_worker import DistributedItemProcessorWorker
    from tryon_local.runtime import _distributed_map_workers_loop

    _distributed_map_workers_loop()
    children = [SimpleNamespace(n=n, job_output=None) for n in range(3 * sys.getrecursionlimit())]
    pending, ran, closed, deleted = list(children), [], [], []
    frame = SimpleNamespace(open_inner_frame=lambda: "inner", delete_frame=lambda f: None)
    worker = SimpleNamespace(
        _env=SimpleNamespace(delete_frame=deleted.append), stopped=lambda: False,
        _eval_job=lambda env, job: ran.append(job.n),
        _job_pool=SimpleNamespace(next_job=lambda: pending.pop(0) if pending else None,
                                  close_job=lambda job: closed.append(job.n)))
    DistributedItemProcessorWorker._eval_pool(worker, pending.pop(0), frame)
    assert ran == closed == list(range(len(children))) and deleted == [frame]


def test_step_functions_lambda_tasks_share_one_client_per_service():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from tryon_local.runtime import _step_functions_reuse_clients

    _step_functions_reuse_clients()
    first = lambda_eval_utils.boto_client_for(region="eu-central-1", service="lambda")
    assert lambda_eval_utils.boto_client_for("eu-central-1", "lambda") is first
    assert first.meta.service_model.service_name == "lambda"
    assert lambda_eval_utils.boto_client_for("eu-central-1", "s3") is not first


def test_state_machines_parsed_at_once_keep_their_own_scopes():
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from tryon_local.runtime import _step_functions_parse_apart

    _step_functions_parse_apart()
    first, second = Preprocessor(), Preprocessor()
    first._query_language_per_scope.append("JSONPath")
    assert second._query_language_per_scope == []


def test_moto_forgets_a_dynamodb_item_no_table_holds_but_still_lists_s3_keys():
    import gc
    import weakref

    import boto3
    from moto import mock_aws
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.s3.models import FakeKey
    from tryon_local.runtime import moto_keeps_only_live_models

    moto_keeps_only_live_models()
    moto_keeps_only_live_models()  # a second stack in the process: patched once
    item = Item(DynamoType({"S": "JOB#1"}), None, {"pk": {"S": "JOB#1"}})
    gone = weakref.ref(item)
    del item
    gc.collect()
    assert gone() is None  # moto 5.2.5 kept every item version it ever made
    with mock_aws():  # moto's reset closes S3 keys' files from its list of them
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="listed-keys")
        listed = len(FakeKey.instances_tracked)
        s3.put_object(Bucket="listed-keys", Key="k", Body=b"x")
        assert len(FakeKey.instances_tracked) == listed + 1

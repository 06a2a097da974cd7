"""The IAM API's mapping of principals to integrations (moto, in process; the handler
called with the events API Gateway sends): a role is known by its account and name
whatever its path, a user by its whole ARN; a principal acts for one integration at
a time, and is allowed or revoked alone; and the mapping holds on the IAM API only."""

import pytest
import test_api_auth
from moto_stages import DAY_ONE
from test_api_auth import ROLE, SESSION, call
from tryon.adapters.integrations import role_of

handlers = test_api_auth.handlers  # its fixture, for the tests here

SSO_ROLE = ("arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/"
            "AWSReservedSSO_Retail_0123abcd")
SSO_SESSION = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Retail_0123abcd/anna@x.io"
USER = "arn:aws:iam::123456789012:user/partners/bob"


@pytest.fixture
def integrations(handlers):
    from tryon import wiring

    return wiring.stage_context().integrations  # the table the API function reads


def status(handlers, user_arn: str, **fields) -> int:
    return call(handlers, api="iam", user_arn=user_arn, **fields)["status"]


def test_a_role_is_known_by_account_and_name_whatever_its_path(handlers, integrations):
    path_free = "arn:aws:iam::123456789012:role/AWSReservedSSO_Retail_0123abcd"
    assert role_of(SSO_ROLE) == role_of(SSO_SESSION) == path_free
    assert role_of("arn:aws-cn:iam::123456789012:role/a/b/ops") == (
        "arn:aws-cn:iam::123456789012:role/ops")
    assert role_of(USER) == USER  # a user's userArn carries its path: matched exactly
    assert status(handlers, SSO_SESSION) == 401
    integrations.allow_principal("acme", SSO_ROLE, DAY_ONE)
    assert status(handlers, SSO_SESSION) == 200
    assert integrations.get("acme")["principals"] == {path_free}  # stored path-free
    # The same role name in another account is another role.
    assert status(handlers, SSO_SESSION.replace("123456789012", "210987654321")) == 401

    integrations.allow_principal("acme", USER, DAY_ONE)
    assert status(handlers, USER) == 200
    assert status(handlers, "arn:aws:iam::123456789012:user/bob") == 401


def test_a_principal_is_allowed_and_revoked_alone(handlers, integrations):
    key, key_id = integrations.create_key("acme", 5, DAY_ONE)
    integrations.allow_principal("acme", ROLE, DAY_ONE)
    integrations.allow_principal("acme", SSO_ROLE, DAY_ONE)
    integrations.revoke_principal("acme", SSO_SESSION, DAY_ONE)  # any form of its ARN
    assert status(handlers, SSO_SESSION) == 401
    assert status(handlers, SESSION) == 200  # the other principal and the key stay
    assert integrations.authenticate(key, 7).key_id == key_id
    [listed] = integrations.list()
    assert listed["principals"] == [ROLE] and not listed["revoked_at"]
    with pytest.raises(KeyError, match="has no IAM principal"):
        integrations.revoke_principal("acme", SSO_ROLE, DAY_ONE)
    with pytest.raises(KeyError, match="no integration named 'nobody'"):
        integrations.revoke_principal("nobody", ROLE, DAY_ONE)
    integrations.allow_principal("acme", SSO_ROLE, DAY_ONE)  # allowed again
    assert status(handlers, SSO_SESSION) == 200


def test_a_principal_mapped_again_leaves_its_old_integration(handlers, integrations):
    assert integrations.allow_principal("acme", ROLE, DAY_ONE) is None
    assert integrations.allow_principal("shop", ROLE, DAY_ONE) == "acme"
    assert "principals" not in integrations.get("acme")  # no longer listed there
    assert integrations.get("shop")["principals"] == {ROLE}
    assert integrations.for_principal(SESSION, 7).name == "shop"
    # Acme's revocations no longer reach it: it acts for shop only.
    with pytest.raises(KeyError, match="has no IAM principal"):
        integrations.revoke_principal("acme", ROLE, DAY_ONE)
    integrations.revoke("acme", None, DAY_ONE)
    assert integrations.for_principal(SESSION, 7).name == "shop"
    assert status(handlers, SESSION) == 200


def test_the_mapping_is_trusted_on_the_iam_api_only_without_an_authorizer(handlers,
                                                                           integrations):
    integrations.allow_principal("acme", ROLE, DAY_ONE)
    named = {"integration": "acme", "key_id": "k1", "daily_quota": "5"}
    assert status(handlers, SESSION) == 200
    assert status(handlers, SESSION, authorizer=named) == 401  # not the IAM API's way
    assert status(handlers, None) == 401
    assert call(handlers, api="bearer", user_arn=SESSION)["status"] == 401
    assert call(handlers, api="other", user_arn=SESSION)["status"] == 401

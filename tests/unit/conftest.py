import pytest
from fakes import FakeStack
from moto_stages import moto_stages  # noqa: F401  (the fixture, for the tests here)


@pytest.fixture
def fake() -> FakeStack:
    """The stages on in-memory fakes, on a clock the test moves."""
    return FakeStack()

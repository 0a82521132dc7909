import pytest

from .harness import Harness


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    """The host harness as shipped."""
    return Harness(tmp_path_factory.mktemp("harness"))


@pytest.fixture(scope="session")
def broken_harness(tmp_path_factory):
    """The harness built with a wrong bit layout (``QSPARSE_BREAK_LAYOUT``)."""
    return Harness(tmp_path_factory.mktemp("broken"), defines=["QSPARSE_BREAK_LAYOUT"])

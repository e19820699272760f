"""Compatibility tests: the vendors' official SDKs, unchanged, against the local API.

scripts/test.sh serves the API with `cargo lambda watch` and exports GRANTS_BASE_URL, GRANTS_API_KEY
(an admin key of a fresh tenant, GRANTS_TENANT) and GRANTS_MEMBER_KEY before running pytest.
"""
import os
import uuid

import pytest


@pytest.fixture(scope="session")
def base_url() -> str:
    return os.environ["GRANTS_BASE_URL"]


@pytest.fixture(scope="session")
def api_key() -> str:
    return os.environ["GRANTS_API_KEY"]


@pytest.fixture(scope="session")
def tenant() -> str:
    """The tenant GRANTS_API_KEY belongs to (Paygentic's merchantId)."""
    return os.environ["GRANTS_TENANT"]


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex

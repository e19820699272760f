"""svix 2.9.1 (pinned in requirements-dev.txt), unchanged, managing the endpoints of the tenant's
webhook application against the local API: create, list, get, patch, delete, read and rotate the
signing secret, and Svix's error types."""
import httpx
import pytest
from svix.api import EndpointListOptions, Svix, SvixOptions
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import EndpointIn, EndpointPatch, EndpointSecretRotateIn, Ordering


@pytest.fixture
def svix(base_url, api_key):
    return Svix(api_key, SvixOptions(server_url=base_url))


@pytest.fixture
def app_id(base_url, api_key):
    """The tenant's webhook application (enabled here unless test_paygentic.py enabled it)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    r = httpx.get(f"{base_url}/v0/webhooks", headers=headers, timeout=30)
    if r.status_code == 404:
        r = httpx.post(f"{base_url}/v0/webhooks", headers=headers, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()["applicationId"]


def test_endpoints_create_list_get_patch_rotate_delete(svix, app_id):
    created = svix.endpoint.create(
        app_id,
        EndpointIn(url="https://example.com/hooks", description="prod", event_types=["invoice.paid.v0"]),
    )
    assert created.id.startswith("ep_")
    assert created.url == "https://example.com/hooks"
    assert created.event_types == ["invoice.paid.v0"]
    assert created.disabled is False

    listed = svix.endpoint.list(app_id, EndpointListOptions(limit=250, order=Ordering.ASCENDING))
    assert created.id in [e.id for e in listed.data]
    assert listed.done is True

    got = svix.endpoint.get(app_id, created.id)
    assert got.description == "prod"

    patched = svix.endpoint.patch(
        app_id, created.id, EndpointPatch(url="https://example.com/v2", disabled=True, event_types=None)
    )
    assert patched.url == "https://example.com/v2"
    assert patched.disabled is True
    assert patched.event_types is None
    assert patched.description == "prod"

    key = svix.endpoint.get_secret(app_id, created.id).key
    assert key.startswith("whsec_")
    rotated = svix.endpoint.rotate_secret(app_id, created.id, EndpointSecretRotateIn()).key
    assert rotated != key
    assert svix.endpoint.get_secret(app_id, created.id).key == rotated

    svix.endpoint.delete(app_id, created.id)
    with pytest.raises(HttpError) as gone:
        svix.endpoint.get(app_id, created.id)
    assert gone.value.status_code == 404
    assert gone.value.code == "not_found"


def test_bad_input_and_another_application_are_svix_errors(svix, app_id):
    with pytest.raises(HTTPValidationError) as invalid:
        svix.endpoint.create(app_id, EndpointIn(url="ftp://example.com"))
    assert invalid.value.detail[0].loc == ["body", "url"]
    with pytest.raises(HttpError) as other:
        svix.endpoint.list("app_01M8PAHHN347DZQ9JZGJ0TTMYH")
    assert other.value.status_code == 404

"""The one failure schemathesis must not count against the service: the local emulator's own answer.

`cargo lambda watch` cannot put a JSON body or a header value that is not UTF-8 into an API Gateway
event, so it answers 500 itself (text/plain, an httpstatuses.com problem document) and never calls the
function. Only that exact answer to that exact input is dropped, and each one is counted on stderr;
what the functions answer to arbitrary body bytes is tested in tests/api/fuzz.rs (every route, no 5xx).
"""
import atexit
import sys

import schemathesis

EMULATOR_500 = b'{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}'
dropped = []


def _not_utf8(body):
    if body is None or isinstance(body, str):
        return False
    try:
        bytes(body).decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def _header_not_utf8(value):
    if isinstance(value, str):
        # Sent as latin-1: anything above ASCII is not UTF-8 on the wire.
        return any(ord(c) > 127 for c in value) and _not_utf8(value.encode("latin-1", "replace"))
    return _not_utf8(value)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    request = response.request
    body = getattr(request, "body", None)
    headers = dict(getattr(request, "headers", {}) or {})
    odd_input = _not_utf8(body) or any(_header_not_utf8(v) for v in headers.values())
    if response.status_code == 500 and response.content == EMULATOR_500 and odd_input:
        dropped.append(case.operation.label)
        return False
    return True


@atexit.register
def _report():
    if dropped:
        print(f"hooks.py: {len(dropped)} emulator 500s to non-UTF-8 bodies not counted "
              f"({', '.join(sorted(set(dropped)))})", file=sys.stderr)

"""The failures schemathesis must not count against the service: the local emulator's own answers.

1. `cargo lambda watch` cannot put a JSON body or a header value that is not UTF-8 into an API Gateway
   event, so it answers 500 itself (text/plain, an httpstatuses.com problem document) and never calls
   the function. What the functions answer to arbitrary body bytes is tested in tests/api/fuzz.rs
   (every route, no 5xx).
2. Now and then it answers that same 500 to a request its function did answer: seen in the
   function's log as handled with 200 while the client got the emulator's 500 (1 in 300 sequential
   GETs of the 21 KB portal page, with the bridge invoking other functions meanwhile). Such a 500 is
   dropped only if the identical request, sent again at once, is not answered with it. A function that
   panics on an input would answer the emulator's 500 again, so it is still counted; the service's own
   500s are JSON in its own shape and never dropped.

Each dropped answer is counted on stderr.
"""
import atexit
import sys

import requests
import schemathesis

EMULATOR_500 = b'{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}'
dropped = []
flaky = []


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
    if response.status_code == 500 and response.content == EMULATOR_500 and _not_again(request):
        flaky.append(case.operation.label)
        return False
    return True


def _not_again(request):
    """The identical request, sent again, is not answered with the emulator's 500."""
    try:
        with requests.Session() as session:
            again = session.send(request.copy(), timeout=60, allow_redirects=False)
    except Exception:  # noqa: BLE001 - no answer at all is not evidence either way
        return False
    return not (again.status_code == 500 and again.content == EMULATOR_500)


@atexit.register
def _report():
    if flaky:
        print(f"hooks.py: {len(flaky)} emulator 500s not repeated when the request was sent again, not counted "
              f"({', '.join(sorted(set(flaky)))})", file=sys.stderr)
    if dropped:
        print(f"hooks.py: {len(dropped)} emulator 500s to non-UTF-8 bodies not counted "
              f"({', '.join(sorted(set(dropped)))})", file=sys.stderr)

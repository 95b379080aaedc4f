"""The Lambda runtime inside one host-process execution environment.

Runs under the runtime's interpreter (``.local/lambda-runtime-python3.13``), stdlib only, as a
script, so it plays the part of AWS's ``/var/runtime/bootstrap`` plus LocalStack's init:

1. imports the handler (cold start) with the function's code folder first on ``sys.path``;
2. serves ``POST /invoke`` on an ephemeral 127.0.0.1 port and reports that port with
   ``POST $LOCALSTACK_RUNTIME_ENDPOINT/status/$LOCALSTACK_RUNTIME_ID/ready``
   (an import failure is reported to ``.../status/<id>/error`` instead);
3. runs each invocation on the main thread, one at a time, and posts its logs, then its
   result to ``.../invocations/<id>/response`` or an AWS-shaped error to ``.../error``.

Function timeouts and crashes are handled by the executor in LocalStack, which owns the process.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import queue
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO

RUNTIME_ENDPOINT = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
RUNTIME_ID = os.environ["LOCALSTACK_RUNTIME_ID"]
# Lambda caps the log tail it returns; keep the per-invocation buffer bounded as well.
MAX_LOG_CHARS = 256 * 1024


# No proxy: LocalStack is on loopback, and a user's HTTP(S)_PROXY must not catch it. Built once:
# build_opener loads the system's CA certificates (43 ms of CPU), and each invocation posts twice.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(path: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 - http URL from LocalStack
        f"{RUNTIME_ENDPOINT}{path}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with OPENER.open(request, timeout=30) as response:
        response.read()


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The shape AWS's Python runtime reports for an unhandled exception."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class Tee(io.TextIOBase):
    """Writes to the process stream (the function's log file) and to the invocation's buffer."""

    def __init__(self, stream: TextIO, buffer: list[str]) -> None:
        self._stream = stream
        self._buffer = buffer

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._stream.flush()
        if sum(map(len, self._buffer)) < MAX_LOG_CHARS:
            self._buffer.append(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class LambdaContext:
    """The attributes and method of AWS's Python ``context`` object that handlers use."""

    def __init__(self, request_id: str, invoked_arn: str, timeout_s: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = invoked_arn
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{handler}': expected 'module.function'")
    module = importlib.import_module(module_name.replace("/", "."))
    function: Callable[[Any, Any], Any] = getattr(module, function_name)
    return function


def init_error_type(exc: BaseException) -> str:
    """The errorType AWS's Python runtime reports when the handler cannot be loaded."""
    if isinstance(exc, SyntaxError):
        return "Runtime.UserCodeSyntaxError"
    if isinstance(exc, ImportError):
        return "Runtime.ImportModuleError"
    if isinstance(exc, AttributeError):
        return "Runtime.HandlerNotFound"
    return type(exc).__name__


def serve_invocations(invocations: queue.Queue[dict[str, Any]]) -> int:
    """Accept ``POST /invoke`` in a background thread; the main thread runs the function."""

    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/invoke":
                self.send_response(404)
            else:
                invocations.put(body)
                self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the function's log is for the function's output

    server = HTTPServer(("127.0.0.1", 0), InvokeHandler)
    threading.Thread(target=server.serve_forever, name="invoke-server", daemon=True).start()
    return server.server_address[1]


def exit_with_parent() -> None:
    """LocalStack stops environments itself; this covers LocalStack being killed hard."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def run_one(
    function: Callable[[Any, Any], Any], invocation: dict[str, Any], log: list[str]
) -> None:
    request_id = invocation["invoke-id"]
    os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id") or ""
    timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    context = LambdaContext(request_id, invocation.get("invoked-function-arn", ""), timeout_s)
    log.clear()
    started = time.monotonic()
    print(f"START RequestId: {request_id} Version: {context.function_version}")
    outcome = "response"
    try:
        result = function(json.loads(invocation.get("payload") or "null"), context)
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            outcome, body = "error", json.dumps(error_payload(exc, "Runtime.MarshalError")).encode()
    except Exception as exc:  # noqa: BLE001 - any unhandled exception fails the invocation
        outcome = "error"
        # The first frame is this function: the stack trace starts in the user's code, as in AWS.
        exc.__traceback__ = exc.__traceback__.tb_next if exc.__traceback__ else None
        payload = error_payload(exc)
        print(
            f"[ERROR] {payload['errorType']}: {payload['errorMessage']}\n"
            + "".join(traceback.format_exception(exc)),
            file=sys.stderr,
        )
        body = json.dumps({**payload, "requestId": request_id}).encode()
    duration_ms = (time.monotonic() - started) * 1000
    print(f"END RequestId: {request_id}")
    print(
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Memory Size: {context.memory_limit_in_mb} MB"
    )
    # LocalStack attaches the logs it holds when the response arrives: logs first.
    base = f"/invocations/{request_id}"
    post(f"{base}/logs", json.dumps({"logs": "".join(log)}).encode())
    post(f"{base}/{outcome}", body)


def main() -> None:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    # As in AWS: the function's folder comes first on sys.path and is the working directory.
    # sys.path[0] is this script's folder, which the function must not see.
    sys.path[0] = task_root
    os.chdir(task_root)
    threading.Thread(target=exit_with_parent, name="parent-watch", daemon=True).start()

    log: list[str] = []
    sys.stdout = Tee(sys.stdout, log)
    sys.stderr = Tee(sys.stderr, log)

    try:
        function = load_handler(os.environ["_HANDLER"])
    except Exception as exc:  # noqa: BLE001 - whatever the import raised, it is an init error
        error_type = init_error_type(exc)
        print(
            f"[ERROR] {error_type}: {exc}\n" + "".join(traceback.format_exception(exc)),
            file=sys.stderr,
        )
        post(f"/status/{RUNTIME_ID}/error", json.dumps(error_payload(exc, error_type)).encode())
        sys.exit(1)

    invocations: queue.Queue[dict[str, Any]] = queue.Queue()
    port = serve_invocations(invocations)
    post(f"/status/{RUNTIME_ID}/ready", json.dumps({"port": port}).encode())
    while True:
        run_one(function, invocations.get(), log)


if __name__ == "__main__":
    main()

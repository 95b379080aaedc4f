"""A LocalStack Lambda runtime executor that runs each execution environment as a host process.

Modelled on LocalStack's ``DockerRuntimeExecutor`` (localstack-core 2026.3.0): one executor per
execution environment; LocalStack's own assignment service, event source mappings, retries and
log handling stay in charge. Where the Docker executor starts a container running LocalStack's Go
init, this one starts ``bootstrap.py`` under the runtime's interpreter, which speaks the same
executor-endpoint protocol (ready / logs / response / error).
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import requests
from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    ShutdownDuringStartup,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from werkzeug import Request

from localstack_hostexec import runtime_python

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# Time a finished handler gets to deliver its result before the invocation counts as timed out.
TIMEOUT_GRACE_S = 1.0
STOP_GRACE_S = 3.0
LOG_TAIL_BYTES = 64 * 1024


class HostExecutorEndpoint(ExecutorEndpoint):
    """The stock endpoint, except that the process reports the port it bound in its ready call.

    Binding port 0 in the process and reporting it avoids a pick-then-bind race between
    environments starting at the same time.
    """

    def status_ready(self, request: Request, executor_id: str) -> Response:
        self.container_port = int(json.loads(request.data)["port"])
        return super().status_ready(request, executor_id)


def _error(request_id: str, error_type: str, message: str) -> bytes:
    return json.dumps(
        {"errorType": error_type, "errorMessage": message, "requestId": request_id}
    ).encode()


class HostRuntimeExecutor(RuntimeExecutor):
    executor_endpoint: HostExecutorEndpoint
    process: subprocess.Popen[bytes] | None

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = HostExecutorEndpoint(
            self.id, container_address=HOST, container_port=None
        )
        self.process = None
        self._env: dict[str, str] = {}
        self._python = Path()
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        config_ = self.function_version.config
        runtime = runtime_python.check_supported(config_.runtime)
        if config_.package_type != PackageType.Zip or config_.code is None:
            raise LambdaRuntimeException("the host executor runs zip packages only")
        self._python = runtime_python.interpreter(runtime)
        code_dir = str(config_.code.get_unzipped_code_location())
        self._env = {
            # Not the host's environment: a function sees only what Lambda would give it.
            "PATH": f"{self._python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            # LocalStack's variables: region, function name, memory, timeout, _HANDLER, the
            # role's credentials, AWS_ENDPOINT_URL, the runtime endpoint, then the function's own.
            **{key: str(value) for key, value in env_vars.items()},
            "LAMBDA_TASK_ROOT": code_dir,  # reserved in AWS: the function cannot override it
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        }
        self.executor_endpoint.start()
        self._spawn()

    def _spawn(self) -> None:
        """Start the process and block until it is ready (or fails to become so)."""
        self.executor_endpoint.startup_future = Future()
        log_path = self._log_path()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            # Same process group as LocalStack (no new session), so `stop` of the dev tool can
            # take down LocalStack and every function process with one killpg.
            self.process = subprocess.Popen(
                [str(self._python), str(BOOTSTRAP)],
                env=self._env,
                cwd=self._env["LAMBDA_TASK_ROOT"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        LOG.debug("Started host process %s for environment %s", self.process.pid, self.id)
        self._wait_ready(self.process)

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        future = self.executor_endpoint.startup_future
        assert future is not None  # set by _spawn
        while True:
            try:
                future.result(timeout=0.1)
                return
            except TimeoutError:
                # A process that died without reporting would otherwise cost the full
                # LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT.
                if process.poll() is not None and not future.done():
                    raise LambdaRuntimeException(
                        f"function process exited with status {process.returncode} during init; "
                        f"log tail:\n{self.get_logs()[-2000:]}"
                    ) from None
            except CancelledError as e:
                raise ShutdownDuringStartup(  # type: ignore[no-untyped-call]
                    "environment stopped during startup"
                ) from e

    def stop(self) -> None:
        self._kill()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # noqa: BLE001 - already unregistered: nothing to release
            LOG.debug("Error while stopping executor endpoint %s: %s", self.id, e)

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # --- invocation ------------------------------------------------------------------------

    def invoke(self, payload: dict[str, Any]) -> InvocationResult:
        with self._lock:
            request_id = payload["invoke-id"]
            if self.process is None or self.process.poll() is not None:
                # As AWS resets a sandbox after a timeout or a runtime exit: a fresh process
                # (a new cold start) for the next invocation.
                self._spawn()
            endpoint = self.executor_endpoint
            endpoint.invocation_future = Future()
            endpoint.logs = None
            response = requests.post(
                f"http://{HOST}:{endpoint.container_port}/invoke",
                json=payload,
                proxies={"http": "", "https": ""},
                timeout=10,
            )
            response.raise_for_status()
            return self._await_result(request_id, endpoint.invocation_future)

    def _await_result(self, request_id: str, future: Future[InvocationResult]) -> InvocationResult:
        timeout_s = float(self.function_version.config.timeout)
        deadline = time.monotonic() + timeout_s + TIMEOUT_GRACE_S
        process = self.process
        while True:
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                pass
            if future.done():
                continue
            if process is None or process.poll() is not None:
                code = process.returncode if process else "unknown"
                message = (
                    f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
                )
                return InvocationResult(
                    request_id,
                    _error(request_id, "Runtime.ExitError", message),
                    is_error=True,
                    logs=message + "\n",
                )
            if time.monotonic() > deadline:
                # A Python thread cannot be interrupted: the process goes, as a sandbox in AWS.
                self._kill()
                message = f"RequestId: {request_id} Task timed out after {timeout_s:.2f} seconds"
                LOG.info("[%s] %s", self.function_version.id.function_name, message)
                return InvocationResult(
                    request_id,
                    _error(request_id, "Sandbox.Timedout", message),
                    is_error=True,
                    logs=message + "\n",
                )

    # --- addresses and logs ----------------------------------------------------------------

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        # LocalStack listens on loopback (GATEWAY_LISTEN); functions run on the same host.
        return HOST

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        prefix: str = self.executor_endpoint.get_endpoint_prefix()  # type: ignore[no-untyped-call]
        return f"http://{HOST}:{port}{prefix}"

    def _log_path(self) -> Path:
        return (
            runtime_python.state_dir()
            / "lambda-logs"
            / f"{self.function_version.id.function_name}.log"
        )

    def get_logs(self) -> str:
        path = self._log_path()
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")

    # --- per-version preparation -----------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        # Raising here marks the function Failed with this message as its StateReason.
        config_ = function_version.config
        runtime = runtime_python.check_supported(config_.runtime)
        if config_.layers:
            raise LambdaRuntimeException("the host executor does not support layers")
        runtime_python.ensure(runtime)  # seconds on first use, then a stat
        if config_.code:
            config_.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # nothing beyond LocalStack's own unzipped code, which LocalStack removes

    @classmethod
    def validate_environment(cls) -> bool:
        missing = [r for r in runtime_python.SUPPORTED_RUNTIMES if not runtime_python.is_ready(r)]
        if missing:
            LOG.warning("Lambda runtime venvs not created yet (will be on first use): %s", missing)
        return True


__all__ = ["HostExecutorEndpoint", "HostRuntimeExecutor"]

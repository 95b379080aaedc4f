"""Registers the host executor with LocalStack (``LAMBDA_RUNTIME_EXECUTOR=host``).

LocalStack finds runtime executors through the ``localstack.lambda.runtime_executor`` entry-point
group (see pyproject.toml); ``load`` is called only when the executor is selected, so importing
this module stays cheap.
"""

from __future__ import annotations

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "host"

    def load(self, *args: Any, **kwargs: Any) -> type:
        from localstack_hostexec.executor import HostRuntimeExecutor

        return HostRuntimeExecutor

"""Lambda-backed custom resources (``Custom::*``) for LocalStack's CloudFormation.

LocalStack's community edition has no provider for ``AWS::CloudFormation::CustomResource``
(it is a Pro feature; without one, the resource is skipped and never runs). This one does
what CloudFormation does: it invokes the ``ServiceToken`` function with the request
(``Create``/``Update``/``Delete``, ``ResourceProperties``, ``OldResourceProperties``,
``PhysicalResourceId``) and a ``ResponseURL``, here a one-shot HTTP server on 127.0.0.1
that takes the function's PUT. ``SUCCESS`` makes ``Data`` the resource's attributes and
``PhysicalResourceId`` its Ref; ``FAILED`` fails the resource with the function's reason.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

ANSWER_TIMEOUT_S = 60.0  # after the function returned (it answers before it returns)


class _Answer:
    """A one-shot ``ResponseURL``: the first PUT's JSON body."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self.received = threading.Event()
        answer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                answer.body = json.loads(self.rfile.read(length) or b"{}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                answer.received.set()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/response"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CustomResourceProvider(ResourceProvider[dict[str, Any]]):
    TYPE = "AWS::CloudFormation::CustomResource"
    SCHEMA: dict[str, Any] = {  # noqa: RUF012 - LocalStack reads it from the class
        "typeName": TYPE,
        "properties": {
            "ServiceToken": {"type": "string"},
            "PhysicalResourceId": {"type": "string"},
        },
        "required": ["ServiceToken"],
        "primaryIdentifier": ["/properties/PhysicalResourceId"],
        "additionalProperties": True,
    }

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        return self._call(request, "Create")

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        return self._call(request, "Update")

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        return self._call(request, "Delete")

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        raise NotImplementedError

    def _call(
        self, request: ResourceRequest[dict[str, Any]], request_type: str
    ) -> ProgressEvent[dict[str, Any]]:
        previous = dict(request.previous_state or {})
        current = dict(request.desired_state or previous)
        physical_id = previous.get("PhysicalResourceId") or current.get("PhysicalResourceId")
        properties = {k: v for k, v in current.items() if k != "PhysicalResourceId"}
        answer = _Answer()
        try:
            event: dict[str, Any] = {
                "RequestType": request_type,
                "ResponseURL": answer.url,
                "StackId": request.stack_id,
                "RequestId": str(uuid.uuid4()),
                "ResourceType": request.resource_type,
                "LogicalResourceId": request.logical_resource_id,
                "ResourceProperties": properties,
            }
            if request_type != "Create" and physical_id:
                event["PhysicalResourceId"] = physical_id
            if request_type == "Update":
                event["OldResourceProperties"] = {
                    k: v for k, v in previous.items() if k != "PhysicalResourceId"
                }
            result = request.aws_client_factory.lambda_.invoke(
                FunctionName=properties["ServiceToken"], Payload=json.dumps(event).encode()
            )
            if not answer.received.wait(ANSWER_TIMEOUT_S) or answer.body is None:
                error = result.get("FunctionError")
                return ProgressEvent(
                    status=OperationStatus.FAILED,
                    message=f"the custom resource function did not answer ({error or 'no PUT'})",
                )
        finally:
            answer.close()
        body = answer.body
        if body.get("Status") != "SUCCESS":
            return ProgressEvent(
                status=OperationStatus.FAILED, message=str(body.get("Reason") or "FAILED")
            )
        if request_type == "Delete":
            return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})
        model = {
            **properties,
            **(body.get("Data") or {}),
            "PhysicalResourceId": str(
                body.get("PhysicalResourceId") or physical_id or uuid.uuid4()
            ),
        }
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


class CustomResourceProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::CloudFormation::CustomResource"

    def __init__(self) -> None:
        self.factory: type[ResourceProvider[Any]] | None = None

    def load(self) -> None:
        self.factory = CustomResourceProvider

"""Secrets Manager / SSM adapter (Powertools Parameters, cached in memory).

boto3 is imported only when a secret is actually configured, which keeps the cold
start short when the configuration comes from plain environment variables.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import SecretShapeError

DEFAULT_MAX_AGE_SECONDS = 300


class SecretSource:
    """Reads secrets and SecureString parameters with a ``max_age`` cache."""

    def __init__(self, max_age: int | None = None) -> None:
        if max_age is None:
            max_age = int(os.environ.get("SECRETS_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
        self.max_age = max_age
        self._secrets: Any = None
        self._ssm: Any = None

    def secret_string(self, secret_id: str) -> str:
        if self._secrets is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._secrets = SecretsProvider(boto_config=_provider_config())
        value = self._secrets.get(secret_id, max_age=self.max_age)
        if not isinstance(value, str):
            raise SecretShapeError("the secret has no SecretString")
        return value

    def secure_parameter(self, name: str) -> str:
        if self._ssm is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            self._ssm = SSMProvider(boto_config=_provider_config())
        value = self._ssm.get(name, max_age=self.max_age, decrypt=True)
        if not isinstance(value, str):
            raise SecretShapeError("the parameter has no string value")
        return value


def _provider_config() -> Any:
    """The botocore config of a provider, made just before it (botocore's body log quieted)."""
    # botocore logs every response body at DEBUG ("Response body: ..."): for GetSecretValue
    # and GetParameter(WithDecryption) that is the secret itself, in clear, in any log that
    # runs at DEBUG (a root logger at DEBUG, Lambda's ApplicationLogLevel=DEBUG).
    parsers = logging.getLogger("botocore.parsers")
    if parsers.getEffectiveLevel() < logging.INFO:
        parsers.setLevel(logging.INFO)
    # Bounded waits: a Secrets Manager outage must fail the batch quickly (it stays
    # in the queue), not hold the invocation until the function times out.
    from botocore.config import Config

    return Config(
        connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}
    )

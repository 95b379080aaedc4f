"""Raw SQS query-protocol requests (stdlib only), for probing what 0.14.3 answers.

0.14.3 checks no signatures, so a bare ``GET ?Action=...`` (or a form POST) is a full request.
Its answers are XML in the ``http://queue.amazonaws.com/doc/2012-11-05/`` namespace;
``Answer.find``/``findall``/``text`` take namespace-free paths.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

API_VERSION = "2012-11-05"
TIMEOUT_S = 30.0

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: Mapping[str, str]

    def xml(self) -> ET.Element:
        root = ET.fromstring(self.body)  # noqa: S314 - our own loopback LocalStack's answer
        for element in root.iter():  # drop namespaces: "{ns}Tag" -> "Tag"
            element.tag = element.tag.rsplit("}", 1)[-1]
        return root

    def find(self, path: str) -> ET.Element | None:
        return self.xml().find(path)

    def findall(self, path: str) -> list[ET.Element]:
        return self.xml().findall(path)

    def text(self, path: str) -> str | None:
        element = self.find(path)
        return None if element is None else element.text


def call(
    url: str,
    action: str,
    params: Mapping[str, str] | None = None,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request to ``url`` (endpoint or queue URL); HTTP errors are answers, not exceptions."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    query = {"Action": action, "Version": API_VERSION, **(params or {})} if action else {}
    encoded = urllib.parse.urlencode(query)
    if method == "GET":
        target = f"{url}?{encoded}" if encoded else url
        request = urllib.request.Request(target, method="GET")  # noqa: S310 - checked above
    else:
        data = body if body is not None else encoded.encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with _opener.open(request, timeout=TIMEOUT_S) as response:
            return Answer(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.read().decode(errors="replace"), dict(e.headers))


def attribute_params(names: list[str], prefix: str = "AttributeName") -> dict[str, str]:
    """``AttributeName.1=All`` style list parameters."""
    return {f"{prefix}.{i}": name for i, name in enumerate(names, start=1)}

"""PII guard: no raw ip/device_id in any log line or test output of the whole session.

Every raw value that enters the masker (``Masker.mask_login``, the one method the
pipeline calls; ``mask_ip``/``mask_device_id`` go through it) and every value the
traffic generator makes up for the queues (``localdev.traffic.login``: what the
deployed function masks in another process) is recorded. Every line the handler's
Powertools logger and the standard logging tree write, every test's captured output
and the deployed function's logs are kept. At the end a raw value found in that text
fails the session. Only values shaped like real PII are recorded (IPv4/IPv6
addresses, NNN-NN-NNNN ids): hypothesis also feeds tiny strings such as "0" that occur
in any log line.

Under pytest-xdist each worker hands what it saw (values and lines) to the controller
through a folder the controller names, and the controller checks them all together: a
value masked in one worker is also searched for in every other worker's lines.

Registered by ``tests/conftest.py``; ``tests/unit/test_pii_guard.py`` proves it fails.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PII_SHAPE = re.compile(r"\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]{4,}|\d{3}-\d{2}-\d{4}")


# This machine's own addresses: every test that names a local server prints them (and
# hypothesis' ip_addresses() likes to generate them), so a masked 127.0.0.1 would "leak"
# through any "cannot connect to Postgres at 127.0.0.1" line. No test login comes from them.
MACHINE_ADDRESSES = frozenset(("127.0.0.1", "0.0.0.0", "::1", "::"))


class _KeepLines(logging.Handler):
    def __init__(self, lines: list[str], *, every_attribute: bool = False) -> None:
        super().__init__(logging.DEBUG)
        self._lines = lines
        self._every_attribute = every_attribute

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if self._every_attribute:  # whatever a formatter might print: message, args, extra
            line += " " + repr(vars(record))
        self._lines.append(line)


class PiiGuard:
    """A pytest plugin object; one per session."""

    def __init__(self, function_logs: Path | None = None) -> None:
        self.raw_values: set[str] = set()
        self.lines: list[str] = []
        self._function_logs = function_logs
        self._undo: list[Callable[[], None]] = []
        self._share: Path | None = None  # xdist: where the workers leave what they saw
        self._worker = False

    def record(self, *values: object) -> None:
        for value in values:
            if isinstance(value, str) and PII_SHAPE.fullmatch(value.strip()):
                if value.strip() in MACHINE_ADDRESSES:
                    continue
                self.raw_values.add(value.strip())

    def leaked(self) -> list[str]:
        text = "\n".join(self.lines)
        logs = self._function_logs
        if logs is not None and logs.is_dir():
            text += "\n".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
        return sorted(standing_alone(self.raw_values, text))

    # -- pytest hooks --------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        worker_input = getattr(config, "workerinput", None)
        if worker_input is not None:
            self._share = Path(worker_input["pii_guard_dir"])
            self._worker = True
        from login_etl.masking import Masker
        from login_etl.telemetry import logger

        guard = self
        mask_login = Masker.mask_login

        def recording_mask_login(
            masker: Masker, ip: str | None, device_id: str | None
        ) -> tuple[str | None, str | None]:
            guard.record(ip, device_id)
            return mask_login(masker, ip, device_id)

        Masker.mask_login = recording_mask_login  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(Masker, "mask_login", mask_login))
        self._wrap_traffic()

        keeper = _KeepLines(self.lines)
        keeper.setFormatter(logger.registered_formatter)
        logger.addHandler(keeper)  # Powertools' logger does not propagate to the root
        self._undo.append(lambda: logger.removeHandler(keeper))
        root_keeper = _KeepLines(self.lines, every_attribute=True)
        logging.getLogger().addHandler(root_keeper)
        self._undo.append(lambda: logging.getLogger().removeHandler(root_keeper))

    def _wrap_traffic(self) -> None:
        try:
            from localdev import traffic
        except ImportError:  # outside the repository (a test's own pytest run)
            return
        guard, login = self, traffic.login

        def recording_login(*args: Any, **kwargs: Any) -> dict[str, str | None]:
            made = login(*args, **kwargs)
            guard.record(made.get("ip"), made.get("device_id"))
            return made

        traffic.login = recording_login
        self._undo.append(lambda: setattr(traffic, "login", login))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # What a test printed or logged (captured by pytest, shown only on failure). Under
        # xdist the controller gets every worker's reports: it keeps them.
        if self._worker:
            return
        self.lines.extend(text for _, text in report.sections if text)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:  # xdist controller, once per worker
        if self._share is None:
            self._share = Path(tempfile.mkdtemp(prefix="login-etl-pii-guard-"))
            self._undo.append(lambda: shutil.rmtree(str(self._share), ignore_errors=True))
        node.workerinput["pii_guard_dir"] = str(self._share)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        worker_input = getattr(session.config, "workerinput", None)
        if self._worker and worker_input is not None and self._share is not None:  # hand over
            seen = {"values": sorted(self.raw_values), "lines": self.lines}
            (self._share / f"{worker_input['workerid']}.json").write_text(json.dumps(seen))
            return
        if self._share is not None:  # xdist controller: take in every worker's
            for handed in sorted(self._share.glob("*.json")):
                seen = json.loads(handed.read_text())
                self.raw_values.update(seen["values"])
                self.lines.extend(seen["lines"])
        leaked = self.leaked()
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"PII guard: {len(self.raw_values)} raw ip/device_id values seen, "
                f"{len(self.lines)} log lines and outputs checked, {len(leaked)} leaked"
            )
            if leaked:
                reporter.write_line(f"PII guard: leaked values (first 5): {leaked[:5]}", red=True)
        if leaked:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        while self._undo:
            self._undo.pop()()


# Next to a value, one of these makes it part of a longer one ("7.0.0.1" in "127.0.0.1").
_EDGE = r"[0-9A-Za-z:.\-]"
_TOKEN = re.compile(rf"{_EDGE}+")


def standing_alone(values: set[str], text: str) -> set[str]:
    """The ``values`` that stand on their own somewhere in ``text``: with no ``_EDGE``
    character just before or after.

    A value made of ``_EDGE`` characters only (every real address and id) stands alone exactly
    when it is one of the text's maximal runs of them: one pass over the text and a set lookup
    per value. A scan of the text per value took 38 s at the end of a measured suite run (22,703
    values). The rest (hypothesis' non-ASCII digits, which PII_SHAPE's digit class admits) are
    searched for one by one.
    """
    runs = set(_TOKEN.findall(text))
    return {
        value
        for value in values
        if value in runs or (not _TOKEN.fullmatch(value) and _as_token(value, text))
    }


def _as_token(value: str, text: str) -> bool:
    return re.search(rf"(?<!{_EDGE}){re.escape(value)}(?!{_EDGE})", text) is not None

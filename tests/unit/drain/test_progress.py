"""Progress display: in place on a terminal, plain lines otherwise; the summary line."""

from __future__ import annotations

import io
from collections import Counter

from login_etl.pipeline import BatchResult
from login_etl_drain.progress import ProgressDisplay, Stats, summary_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def stats_with_one_batch() -> Stats:
    stats = Stats()
    result = BatchResult(
        failed_message_ids=["m9"], written=8, duplicates=1, rejections=Counter(invalid_json=1)
    )
    stats.add_batch(10, result, not_deleted=0)
    return stats


def test_on_a_terminal_the_line_is_rewritten_in_place() -> None:
    stats, out = stats_with_one_batch(), Terminal()
    now = [0.0]
    display = ProgressDisplay(stats, out, clock=lambda: now[0])
    now[0] = 1.0  # a refresh is due
    display.tick()
    display.clear()
    text = out.getvalue()
    assert text.startswith("\r\x1b[2Kreceived 10 | written 8 | duplicates 1 | rejected 1")
    assert "\n" not in text
    assert text.endswith("\r\x1b[2K")


def test_elsewhere_plain_lines_at_the_interval() -> None:
    stats, out = stats_with_one_batch(), io.StringIO()
    now = [0.0]
    display = ProgressDisplay(stats, out, interval_s=60, clock=lambda: now[0])
    now[0] = 59
    display.tick()
    assert out.getvalue() == ""  # not due yet
    now[0] = 61
    display.tick()
    assert out.getvalue().startswith("login-etl drain: received 10 | written 8")
    assert out.getvalue().endswith(" s\n")


def test_summary_names_rejection_reasons_and_what_is_left() -> None:
    stats = stats_with_one_batch()
    line = summary_line(stats.snapshot(), 2.0, (0, 1))
    assert line.startswith("login-etl drain: received 10 | written 8 | duplicates 1 | rejected 1")
    assert "| 1 batches | 5 msg/s | 2.0 s" in line
    assert line.endswith("| rejections: invalid_json 1 | queue: 0 visible, 1 in flight")


def test_the_summary_names_unverified_redrive_identities() -> None:
    from login_etl.pipeline import BatchResult
    from login_etl_drain.progress import Stats, summary_line

    stats = Stats()
    stats.add_batch(2, BatchResult(written=2, unverified_identities=1), 0)
    line = summary_line(stats.snapshot(), 1.0, None)
    assert "unverified redrive identities 1 (written as new messages)" in line
    stats_clean = Stats()
    stats_clean.add_batch(1, BatchResult(written=1), 0)
    assert "unverified" not in summary_line(stats_clean.snapshot(), 1.0, None)

"""The documentation stays true to the tree: links, paths, make targets, the README's length.

Checks README.md and docs/*.md:

- every relative link points at a file or folder that exists (and, with ``#anchor``, at a
  heading of that page);
- every backticked repo path (``handler/``, ``drain/``, ``localdev/``, ``tests/``, ``docs/``,
  ``events/``, ``.ci/``) exists, or is a git-ignored file the tooling generates;
- every ``make <target>`` in code is a target of the Makefile;
- the README's first screen (the lines before its first ``## `` heading) is short.

And every file git knows (tracked, or untracked but not ignored) is free of references to
files outside the repository or that no longer exist.

No servers; git is the only tool called.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve()

FIRST_SCREEN_MAX_LINES = 60
REPO_PATH_PREFIXES = ("handler/", "drain/", "localdev/", "tests/", "docs/", "events/", ".ci/")
FORBIDDEN_REFERENCES = ("CONTRACT.md", "events/README.md", "../shared", "/work/")

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
REPO_PATH = re.compile(r"^((?:handler|drain|localdev|tests|docs|events|\.ci)/[^\s:`,;)]*)")
GLOB_CHARACTERS = frozenset("*?[]{}<>…")
MAKE_CALL = re.compile(r"(?:^|[\s;&|(])make\s+([A-Za-z][\w.-]*)")
MAKE_RULE = re.compile(r"^([A-Za-z0-9_.%-][A-Za-z0-9_.% -]*?)\s*::?(?!=)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


# --- reading markdown ---------------------------------------------------------------------


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, line


def fenced_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) inside fenced code blocks."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            yield number, line


def code_spans(line: str) -> list[str]:
    return [match.group(2).strip() for match in CODE_SPAN.finditer(line)]


def without_code_spans(line: str) -> str:
    return CODE_SPAN.sub("", line)


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            anchor = heading_anchor(match.group(2))
            number = 1
            unique = anchor
            while unique in found:
                unique = f"{anchor}-{number}"
                number += 1
            found.add(unique)
    return found


# --- the checks, as functions of text (so each can be shown to fail) ----------------------


def prose(text: str) -> str:
    """The text with code blocks and code spans blanked out; line numbers stay the same."""
    lines = text.splitlines()
    kept = dict(prose_lines(text))
    return "\n".join(
        without_code_spans(kept[number]) if number in kept else ""
        for number in range(1, len(lines) + 1)
    )


def broken_links(page: Path, text: str) -> list[str]:
    """Relative links whose file (or heading) does not exist."""
    problems: list[str] = []
    searched = prose(text)
    for match in LINK.finditer(searched):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        number = searched.count("\n", 0, match.start()) + 1
        where = f"{page.relative_to(REPO)}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where} (no such file)")
        elif (
            fragment
            and destination.suffix == ".md"
            and destination.is_file()
            and fragment not in anchors(destination.read_text(encoding="utf-8"))
        ):
            problems.append(f"{where} (no such heading)")
    return problems


def repo_path_of(span: str) -> str | None:
    """The repo path a code span names, without ``:line`` or ``::test``; None if it names none."""
    match = REPO_PATH.match(span)
    if match is None:
        return None
    path = match.group(1).rstrip(".")
    if GLOB_CHARACTERS.intersection(span.split()[0]):
        return None
    return path


def missing_repo_paths(page: Path, text: str) -> list[str]:
    """Backticked repo paths that neither exist nor are files the tooling generates."""
    problems: list[str] = []
    for number, line in prose_lines(text):
        for span in code_spans(line):
            path = repo_path_of(span)
            if path is None or (REPO / path).exists() or git_ignores(path):
                continue
            problems.append(f"{page.relative_to(REPO)}:{number}: `{span}`")
    return problems


def make_calls(text: str) -> list[tuple[int, str]]:
    """``make <target>`` in code spans and code blocks (prose "make" is an English verb)."""
    calls: list[tuple[int, str]] = []
    for number, line in prose_lines(text):
        for span in code_spans(line):
            calls.extend((number, target) for target in MAKE_CALL.findall(span))
    for number, line in fenced_lines(text):
        code = line.split("#", 1)[0] if line.lstrip().startswith("make") else line
        calls.extend((number, target) for target in MAKE_CALL.findall(code))
    return calls


def makefile_targets(makefile: str) -> set[str]:
    targets: set[str] = set()
    for line in makefile.splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        match = MAKE_RULE.match(line)
        if match:
            targets.update(match.group(1).split())
    return targets


def unknown_make_targets(page: Path, text: str, targets: set[str]) -> list[str]:
    return [
        f"{page.relative_to(REPO)}:{number}: make {target}"
        for number, target in make_calls(text)
        if target not in targets
    ]


def first_screen(text: str) -> list[str]:
    """The lines before the first ``## `` heading outside code blocks."""
    lines = text.splitlines()
    for number, line in prose_lines(text):
        if line.startswith("## "):
            return lines[: number - 1]
    return lines


def forbidden_references(name: str, text: str) -> list[str]:
    return [
        f"{name}:{number}: {reference}"
        for number, line in enumerate(text.splitlines(), start=1)
        for reference in FORBIDDEN_REFERENCES
        if reference in line
    ]


# --- git ------------------------------------------------------------------------------------


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


def git_ignores(path: str) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path],
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=60,
    )
    return result.returncode == 0


def files_git_knows() -> list[Path]:
    """Tracked files and untracked files that are not ignored, as they are on disk now."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    names = sorted({name for name in listed.split("\0") if name})
    return [REPO / name for name in names if (REPO / name).is_file()]


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


# --- tests on the real tree -----------------------------------------------------------------


def test_relative_links_point_at_existing_files_and_headings() -> None:
    problems = [
        problem
        for page in doc_pages()
        for problem in broken_links(page, page.read_text(encoding="utf-8"))
    ]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_backticked_repo_paths_exist() -> None:
    problems = [
        problem
        for page in doc_pages()
        for problem in missing_repo_paths(page, page.read_text(encoding="utf-8"))
    ]
    assert not problems, "paths that do not exist:\n" + "\n".join(problems)


def test_make_targets_in_the_docs_exist() -> None:
    targets = makefile_targets((REPO / "Makefile").read_text(encoding="utf-8"))
    problems = [
        problem
        for page in doc_pages()
        for problem in unknown_make_targets(page, page.read_text(encoding="utf-8"), targets)
    ]
    assert not problems, "make targets the Makefile does not have:\n" + "\n".join(problems)


def test_readme_first_screen_is_short() -> None:
    screen = first_screen((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(screen) <= FIRST_SCREEN_MAX_LINES, (
        f"README.md has {len(screen)} lines before its first '## ' heading "
        f"(at most {FIRST_SCREEN_MAX_LINES})"
    )


def test_no_file_refers_outside_the_repository_or_to_removed_files() -> None:
    problems: list[str] = []
    for path in files_git_knows():
        if path.resolve() == THIS_FILE:
            continue
        text = text_of(path)
        if text is not None:
            problems.extend(forbidden_references(str(path.relative_to(REPO)), text))
    assert not problems, "references outside the repo or to removed files:\n" + "\n".join(problems)


# --- each check can fail --------------------------------------------------------------------


def test_the_link_check_catches_a_missing_file_and_a_missing_heading() -> None:
    page = REPO / "docs" / "example.md"
    text = (
        "[ok](../README.md) [web](https://example.com) [gone](../no-such-file.md)\n"
        "[bad anchor](contract.md#no-such-heading) [good anchor](contract.md#the-table)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    problems = broken_links(page, text)
    assert len(problems) == 2
    assert "no-such-file.md (no such file)" in problems[0]
    assert "no-such-heading (no such heading)" in problems[1]


def test_the_path_check_catches_a_missing_path_and_skips_globs() -> None:
    text = (
        "`handler/app.py:12` `tests/static/test_docs.py::test_x` `handler/no_such.py`\n"
        "`tests/*/conftest.py` `python -m login_etl` `drain/<module>.py`\n"
    )
    problems = missing_repo_paths(REPO / "docs" / "example.md", text)
    assert problems == ["docs/example.md:1: `handler/no_such.py`"]


def test_the_make_check_catches_an_unknown_target_and_ignores_the_verb() -> None:
    text = (
        "Run `make test` or `make db-init`; a new key would make new masks differ.\n"
        "```sh\nmake up && make no-such-target   # make believe\n```\n"
    )
    problems = unknown_make_targets(REPO / "README.md", text, {"test", "db-init", "up"})
    assert problems == ["README.md:3: make no-such-target"]


def test_makefile_targets_are_read_from_rules_not_variables() -> None:
    makefile = "PY := python\n.PHONY: a b\nsetup: $(STAMP) ## x\n\t$(PY) -m x\ndown: ## y\n"
    assert makefile_targets(makefile) == {".PHONY", "setup", "down"}


def test_the_first_screen_ends_at_the_first_section_outside_code() -> None:
    text = "# title\n```\n## not a heading\n```\nmore\n## Section\nbody\n"
    assert first_screen(text) == ["# title", "```", "## not a heading", "```", "more"]
    long_readme = "# title\n" + "line\n" * FIRST_SCREEN_MAX_LINES + "## Section\n"
    assert len(first_screen(long_readme)) > FIRST_SCREEN_MAX_LINES


def test_the_reference_check_catches_each_forbidden_reference() -> None:
    text = "\n".join(f"see {reference} here" for reference in FORBIDDEN_REFERENCES)
    assert len(forbidden_references("x.py", text)) == len(FORBIDDEN_REFERENCES)
    assert forbidden_references("x.py", "see docs/contract.md") == []

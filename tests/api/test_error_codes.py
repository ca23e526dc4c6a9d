"""Every error EPA raises has a stable code and one HTTP status, decided in ``epa.api.errors``; the
codes and statuses are listed in one table in docs/api.md, and this test keeps the two in step."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import epa
from epa.api.errors import HTTP_CODES, status_for
from epa.domain.status import InvalidStatusTransition
from epa.errors import EpaError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def all_errors() -> list[type[EpaError]]:
    for module in pkgutil.walk_packages(epa.__path__, "epa."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: list[type[EpaError]] = []
    todo: list[type[EpaError]] = [EpaError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_a_device_status_transition_that_is_not_allowed_is_a_409_with_its_code() -> None:
    error = InvalidStatusTransition("device 0000:3d:01.1: cannot go from removed to claimed")
    assert status_for(error) == 409
    assert error.code == "invalid_status_transition"


def test_every_error_code_is_in_the_table_of_docs_api_md_with_its_status() -> None:
    table = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\| `([a-z_]+)` \| (\d{3}) \|", DOCS.read_text(), flags=re.MULTILINE)
    }
    codes = {cls.code: status_for(cls.__new__(cls)) for cls in all_errors()}
    # The framework's own answers (a wrong method, a path that is not there) have codes too.
    codes.update({code: status for status, code in HTTP_CODES.items()})
    assert codes == table

"""The demo's waits retry only while the API is not up yet: a refused token or a server that failed
stops the demo at once with that error, instead of a timeout that hides it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from epa.cli.demo import Children, DemoFailed, _wait
from epa.errors import EpaError, ServiceUnavailable, Unauthorized


@pytest.mark.parametrize("error", [Unauthorized("token refused"), DemoFailed("server s-1 failed: no VF")])
def test_an_error_that_waiting_cannot_cure_ends_the_wait_at_once(tmp_path: Path, error: EpaError) -> None:
    calls = []

    def probe() -> bool | None:
        calls.append(1)
        raise error

    with pytest.raises(type(error), match=error.message):
        _wait("something", probe, threading.Event(), Children(tmp_path, {}))
    assert len(calls) == 1


def test_an_api_that_is_not_up_yet_is_waited_for(tmp_path: Path) -> None:
    answers: list[Exception | bool] = [ServiceUnavailable("connection refused"), True]

    def probe() -> bool | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert _wait("the API", probe, threading.Event(), Children(tmp_path, {})) is True
    assert answers == []

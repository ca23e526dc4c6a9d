"""A server's statuses and the moves between them, decided in one table (epa.domain.server)."""

from __future__ import annotations

import pytest

from epa.domain.server import InvalidServerTransition, ServerStatus, check_server_transition
from epa.errors import InvalidInput

S = ServerStatus
ALLOWED = {
    (S.SCHEDULED, S.BUILDING),
    (S.BUILDING, S.ACTIVE),
    (S.ACTIVE, S.STOPPED),
    (S.STOPPED, S.ACTIVE),
}


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_every_move_is_allowed_or_refused_by_name(old: ServerStatus, new: ServerStatus) -> None:
    allowed = (
        old is not S.DELETED and new is not S.DELETED and ((old, new) in ALLOWED or new in (old, S.ERROR, S.DELETING))
    )
    if allowed:
        check_server_transition("s-1", old, new)
    else:
        with pytest.raises(InvalidServerTransition, match=f"server s-1: cannot go from {old.value} to {new.value}"):
            check_server_transition("s-1", old, new)


def test_a_status_that_is_not_one_names_the_value_and_the_choices() -> None:
    assert S.parse("active") is S.ACTIVE
    with pytest.raises(InvalidInput, match=r"server status \('runing'\) must be one of scheduled, building"):
        S.parse("runing")

"""The Database handle: transactions commit or roll back whole, and library errors become EPA's."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from epa.errors import Conflict, ServiceUnavailable
from epa.inventory import Database, create_host, list_hosts
from epa.inventory.schema import HostRow, utcnow


def new_host(name: str) -> HostRow:
    return HostRow(name=name, enabled=True, generation=0, created_at=utcnow())


def test_an_error_rolls_the_whole_transaction_back(db: Database) -> None:
    class Boom(Exception):
        pass

    def write_then_fail() -> None:
        with db.transaction() as session:
            session.add(new_host("a"))
            session.flush()
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()
    assert list_hosts(db) == []


def test_a_unique_violation_is_a_conflict_and_leaves_nothing(db: Database) -> None:
    create_host(db, "a")

    def add_two() -> None:
        with db.transaction() as session:
            session.add(new_host("b"))
            session.add(new_host("a"))  # what a concurrent create_host would hit

    with pytest.raises(Conflict, match="conflicts with existing data") as e:
        add_two()
    assert e.value.__cause__ is not None
    with db.transaction(readonly=True) as session:
        assert session.execute(select(func.count()).select_from(HostRow)).scalar_one() == 1


def test_an_unreachable_server_is_service_unavailable() -> None:
    # Port 1 on localhost: nothing listens, the connection is refused at once.
    db = Database.connect("postgresql+psycopg://postgres@127.0.0.1:1/epa?connect_timeout=2")
    try:
        with pytest.raises(ServiceUnavailable, match="unavailable") as e:
            db.migrate()
        assert e.value.__cause__ is not None
        with pytest.raises(ServiceUnavailable):
            list_hosts(db)
    finally:
        db.dispose()


def test_display_url_hides_the_password() -> None:
    db = Database.connect("postgresql+psycopg://epa:s3cret@db.example:5432/epa")
    assert "s3cret" not in db.url_for_display and "s3cret" not in repr(db)
    db.dispose()

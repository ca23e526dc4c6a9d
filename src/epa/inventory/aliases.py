"""PCI aliases (Nova's ``[pci] alias``): create, list, read, delete (refused while a flavor uses one)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from epa.domain.alias import Alias, AliasSpec
from epa.errors import Conflict, NotFound
from epa.inventory.db import Database
from epa.inventory.schema import AliasRow, FlavorAliasRow, FlavorRow


def _to_alias(row: AliasRow) -> Alias:
    # The specs were validated when stored; parsing them again rebuilds the exact value.
    return Alias(row.name, tuple(AliasSpec.parse(s, f"alias {row.name}") for s in row.specs))


def _alias_row(session: Session, name: str) -> AliasRow:
    row = session.execute(select(AliasRow).where(AliasRow.name == name)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"alias {name!r} does not exist")
    return row


def create_alias(db: Database, alias: Alias) -> Alias:
    with db.transaction() as session:
        if session.execute(select(AliasRow.id).where(AliasRow.name == alias.name)).first() is not None:
            raise Conflict(f"alias {alias.name!r} already exists")
        session.add(
            AliasRow(
                name=alias.name,
                specs=[s.to_json() for s in alias.specs],
                numa_policy=alias.numa_policy.value,
                device_type=alias.device_type.value if alias.device_type else None,
            )
        )
    return alias


def list_aliases(db: Database) -> list[Alias]:
    """Every alias, sorted by name."""
    with db.transaction(readonly=True) as session:
        return [_to_alias(r) for r in session.execute(select(AliasRow).order_by(AliasRow.name)).scalars()]


def known_aliases(db: Database) -> dict[str, Alias]:
    """Every alias by name: what ``Flavor.parse`` checks a flavor's requests against."""
    return {a.name: a for a in list_aliases(db)}


def get_alias(db: Database, name: str) -> Alias:
    with db.transaction(readonly=True) as session:
        return _to_alias(_alias_row(session, name))


def delete_alias(db: Database, name: str) -> None:
    """Delete alias ``name``; ``Conflict`` naming the flavors while any flavor requests it."""
    with db.transaction() as session:
        row = _alias_row(session, name)
        users = session.execute(
            select(FlavorRow.name)
            .join(FlavorAliasRow, FlavorAliasRow.flavor_id == FlavorRow.id)
            .where(FlavorAliasRow.alias_id == row.id)
            .order_by(FlavorRow.name)
        ).scalars()
        flavors = list(users)
        if flavors:
            raise Conflict(f"alias {name!r} is used by flavor(s) {', '.join(flavors)}")
        # The foreign key (ON DELETE RESTRICT) refuses it too if a flavor is created meanwhile.
        session.execute(delete(AliasRow).where(AliasRow.id == row.id))

"""Flavors: create (every alias it requests must exist), list, read, delete."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from epa.domain.alias import NumaPolicy, parse_pci_requests
from epa.domain.flavor import Flavor, InvalidFlavor
from epa.domain.pci_group import parse_pci_groups
from epa.errors import Conflict, NotFound
from epa.inventory.db import Database
from epa.inventory.schema import AliasRow, FlavorAliasRow, FlavorRow


def _to_flavor(row: FlavorRow) -> Flavor:
    requests = parse_pci_requests(row.pci_alias)
    return Flavor(
        name=row.name,
        vcpus=row.vcpus,
        memory_mb=row.memory_mb,
        pci_alias=row.pci_alias,
        pci_requests=requests,
        numa_policy=NumaPolicy(row.numa_policy) if row.numa_policy is not None else None,
        numa_nodes=row.numa_nodes,
        disk_gb=row.disk_gb,
        image=row.image,
        pci_group=row.pci_group,
        pci_groups=parse_pci_groups(row.pci_group, {r.alias for r in requests}),
    )


def create_flavor(db: Database, flavor: Flavor) -> Flavor:
    """Store ``flavor``; ``Conflict`` if the name is taken, ``InvalidFlavor`` if an alias it requests
    does not exist (any more: ``Flavor.parse`` checked them against a snapshot)."""
    names = [r.alias for r in flavor.pci_requests]
    with db.transaction() as session:
        if session.execute(select(FlavorRow.id).where(FlavorRow.name == flavor.name)).first() is not None:
            raise Conflict(f"flavor {flavor.name!r} already exists")
        alias_ids = dict(session.execute(select(AliasRow.name, AliasRow.id).where(AliasRow.name.in_(names))).all())
        missing = [n for n in names if n not in alias_ids]
        if missing:
            raise InvalidFlavor(f"flavor {flavor.name}: pci_passthrough:alias alias {missing[0]!r} does not exist")
        row = FlavorRow(
            name=flavor.name,
            vcpus=flavor.vcpus,
            memory_mb=flavor.memory_mb,
            pci_alias=flavor.pci_alias,
            numa_policy=flavor.numa_policy.value if flavor.numa_policy is not None else None,
            numa_nodes=flavor.numa_nodes,
            disk_gb=flavor.disk_gb,
            image=flavor.image,
            pci_group=flavor.pci_group,
        )
        session.add(row)
        session.flush()
        if names:
            session.execute(insert(FlavorAliasRow), [{"flavor_id": row.id, "alias_id": alias_ids[n]} for n in names])
    return flavor


def list_flavors(db: Database) -> list[Flavor]:
    """Every flavor, sorted by name."""
    with db.transaction(readonly=True) as session:
        return [_to_flavor(r) for r in session.execute(select(FlavorRow).order_by(FlavorRow.name)).scalars()]


def get_flavor(db: Database, name: str) -> Flavor:
    with db.transaction(readonly=True) as session:
        row = session.execute(select(FlavorRow).where(FlavorRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"flavor {name!r} does not exist")
        return _to_flavor(row)


def delete_flavor(db: Database, name: str) -> None:
    with db.transaction() as session:
        deleted = session.execute(delete(FlavorRow).where(FlavorRow.name == name)).rowcount  # type: ignore[attr-defined]
        if not deleted:
            raise NotFound(f"flavor {name!r} does not exist")

"""Many API processes claiming on one host at once (PostgreSQL): each with its own connection pool,
random overlapping device sets (PFs against their own VFs included) and releases in between, until
the pool runs dry. The database must never grant a device twice nor a PF beside its own VF."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from sqlalchemy import text

from epa.domain.address import PciAddress
from epa.domain.flavor import Flavor
from epa.domain.host import HostReport
from epa.domain.server import ClaimedDevice
from epa.domain.status import DeviceStatus
from epa.inventory import Database, apply_report, create_host, list_devices
from epa.inventory.claims import ClaimConflict, ClaimPlan, NewServer, claim, release
from epa.inventory.records import ServerRecord
from epa.inventory.servers import list_servers
from epa.inventory.snapshots import load_snapshots

THREADS = 16
MAX_ATTEMPTS = 60
RELEASING_ATTEMPTS = 20  # the first attempts of each thread may also release what it holds
VCPUS = 2  # 40 CPUs on node 0: CPU may run out too, after 20 servers
POOL = [
    "0000:18:00.0",
    *(f"0000:18:02.{i}" for i in range(8)),
    "0000:18:00.1",
    *(f"0000:18:0a.{i}" for i in range(8)),
    "0000:af:00.0",
]


@dataclass
class Outcome:
    held: dict[str, tuple[str, ...]] = field(default_factory=dict)
    claimed: int = 0
    released: int = 0
    conflicts: int = 0
    unexpected: list[BaseException] = field(default_factory=list)


def exhausted(db: Database) -> bool:
    (snap,) = load_snapshots(db, ["nfv-1"])
    free = {str(d.address) for d in snap.free} & set(POOL)
    node0 = snap.cells[0]
    return not free or node0.cpus - node0.used_cpus < VCPUS


def worker(url: str, seed: int, barrier: threading.Barrier, out: Outcome) -> None:
    rng = random.Random(seed)
    db = Database.connect(url)
    server = NewServer(f"vm-{seed}", Flavor(name="f", vcpus=VCPUS, memory_mb=1024))
    try:
        barrier.wait()
        for attempt in range(MAX_ATTEMPTS):
            if attempt < RELEASING_ATTEMPTS and out.held and rng.random() < 0.25:
                victim = rng.choice(sorted(out.held))
                release(db, victim)
                del out.held[victim]
                out.released += 1
                continue
            if attempt >= RELEASING_ATTEMPTS and exhausted(db):
                return
            picks = rng.sample(POOL, rng.choice([1, 1, 2, 3]))
            devices = tuple(ClaimedDevice(PciAddress.parse(a), i, f"r{i}") for i, a in enumerate(picks))
            try:
                record: ServerRecord = claim(db, server, ClaimPlan("nfv-1", (0,), {0: VCPUS}, {0: 1024}, devices))
            except ClaimConflict:
                out.conflicts += 1
                continue
            out.held[record.id] = tuple(sorted(picks))
            out.claimed += 1
    except BaseException as e:
        out.unexpected.append(e)
    finally:
        db.dispose()


def test_concurrent_claims_never_grant_a_device_twice(pg_db: Database, pg_url: str, nfv_report: HostReport) -> None:
    create_host(pg_db, "nfv-1")
    apply_report(pg_db, "nfv-1", 0, nfv_report)
    barrier = threading.Barrier(THREADS)
    outcomes = [Outcome() for _ in range(THREADS)]
    threads = [threading.Thread(target=worker, args=(pg_url, i, barrier, outcomes[i])) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Every attempt either succeeded or was refused as a claim conflict; nothing else went wrong.
    assert [e for o in outcomes for e in o.unexpected] == []
    assert sum(o.claimed for o in outcomes) > 0 and sum(o.conflicts for o in outcomes) > 0
    held = {sid: addrs for o in outcomes for sid, addrs in o.held.items()}

    devices, _ = list_devices(pg_db, host="nfv-1")
    by_address = {str(d.device.address): d for d in devices}
    in_use = {a: d for a, d in by_address.items() if d.status.in_use}
    with pg_db.engine.connect() as connection:
        claims = connection.execute(
            text("SELECT c.server_id, d.address FROM claims c JOIN devices d ON d.id = c.device_id")
        ).all()
        used_cpus = connection.execute(text("SELECT coalesce(sum(cpus), 0) FROM server_cells")).scalar_one()
    claimed_addresses = [address for _sid, address in claims]
    # No device in two claims; every claimed device has exactly one claim, and its owner is that server.
    assert len(claimed_addresses) == len(set(claimed_addresses))
    assert set(in_use) == set(claimed_addresses)
    assert all(in_use[address].owner == sid for sid, address in claims)
    assert all(d.status is DeviceStatus.CLAIMED for d in in_use.values())
    # No PF in use beside one of its own VFs.
    for address, d in in_use.items():
        parent = d.device.parent_addr
        assert parent is None or str(parent) not in in_use, address
    # What the threads hold is exactly what the database says is claimed, server by server.
    assert sum(len(a) for a in held.values()) == len(in_use)
    assert {sid: tuple(sorted(a for s, a in claims if s == sid)) for sid in held} == held
    assert {s.id for s in list_servers(pg_db, host="nfv-1")} == set(held)
    assert used_cpus == VCPUS * len(held) <= 40
    assert sum(o.claimed - o.released for o in outcomes) == len(held)

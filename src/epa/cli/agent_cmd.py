"""``epa agent``: run this host's agent, which reports its PCI inventory and NUMA cells to the API."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import click
import platformdirs

from epa.agent import Agent, WarningLog, read_host_facts
from epa.agent.boot import Boot
from epa.agent.images import ImageCache
from epa.agent.reconcile import Reconciler, VfBackend
from epa.agent.rediscovery import ScanWake, listen_for_pci_uevents
from epa.agent.sriov_provision import provisioning
from epa.agent.vfio_bind import SysfsVfio
from epa.cli.client_settings import with_client
from epa.client import ApiClient
from epa.config import load_config, parse_device_spec_args
from epa.config.sriov import VfProvision
from epa.crashpoints import armed
from epa.discovery import ScanResult
from epa.discovery.libvirt_nodedev import scan_libvirt
from epa.discovery.pci_ids import load_pci_ids
from epa.discovery.sysfs import scan_sysfs
from epa.domain.device_spec import DeviceSpec
from epa.domain.host import NumaCell
from epa.errors import InvalidInput
from epa.hostnet.simulated import simulated_netlink
from epa.hostnet.vf import apply_vf_config
from epa.libvirt_client import DEFAULT_DEADLINE_S, open_connection
from epa.virt import DomainType

log = logging.getLogger("epa.agent")


def _specs(
    config_path: Path | None, device_specs: tuple[str, ...]
) -> tuple[tuple[DeviceSpec, ...], tuple[VfProvision, ...]]:
    """The device_specs (config file, then --device-spec) and the config's [[sriov]] VF provisioning."""
    specs: list[DeviceSpec] = []
    sriov: tuple[VfProvision, ...] = ()
    if config_path is not None:
        config = load_config(config_path)
        specs.extend(config.device_specs)
        sriov = config.sriov
        for warning in config.warnings:
            log.warning("%s", warning)
    specs.extend(parse_device_spec_args(device_specs, first_index=len(specs)))
    return tuple(specs), sriov


def _facts(sysfs_root: Path, procfs_root: Path) -> Callable[[], tuple[NumaCell, ...]]:
    warnings = WarningLog(log)

    def read() -> tuple[NumaCell, ...]:
        facts = read_host_facts(sysfs_root, procfs_root)
        warnings.update(facts.warnings)
        return facts.numa_cells

    return read


def _scanner(sysfs_root: Path, libvirt_uri: str | None) -> Callable[[], ScanResult]:
    names = load_pci_ids()
    if libvirt_uri is not None:
        uri = libvirt_uri
        return lambda: scan_libvirt(uri, names)
    return lambda: scan_sysfs(sysfs_root, names)


def _vf_backend(mode: str | None, sysfs_root: Path) -> VfBackend | None:
    """``netlink`` configures real PFs; ``simulated`` the simulated PF driver of a simulated /sys
    (the default when the sysfs root is not /sys); ``off`` leaves VFs alone."""
    chosen = mode or ("netlink" if sysfs_root == Path("/sys") else "simulated")
    if chosen == "off":
        return None
    if chosen == "simulated":
        netlink = simulated_netlink(sysfs_root)
        return lambda config: apply_vf_config(config, netlink)
    return apply_vf_config


@contextlib.contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    """Log the agent's events to stderr, one line each, while the command runs."""
    logger = logging.getLogger("epa")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@click.command()
@click.option("--host-name", default=None, help="The host's name on the server (default: this hostname).")
@click.option(
    "--sysfs-root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Read a /sys-shaped tree here (default: /sys).",
)
@click.option(
    "--procfs-root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("/proc"),
    show_default=True,
    help="Where meminfo is read for a host without NUMA nodes.",
)
@click.option("--libvirt", "libvirt_uri", metavar="URI", default=None, help="Read devices from libvirt.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="An EPA TOML config or a nova.conf; its [pci] device_spec entries apply, and EPA TOML's "
    "[[sriov]] tables (pf, num_vfs, driver) make the PFs' VFs before each scan.",
)
@click.option("--device-spec", "device_specs", multiple=True, metavar="JSON|@FILE", help="Repeatable.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds between scans.",
)
@click.option(
    "--heartbeat-every",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Send a heartbeat (no device list) every N scans while the inventory is unchanged.",
)
@click.option(
    "--full-report-every",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Send the full inventory instead of every Nth heartbeat (a safety net).",
)
@click.option(
    "--hypervisor",
    "hypervisor_uri",
    metavar="URI|none",
    default="qemu:///system",
    show_default=True,
    help="libvirt URI where the host's servers are made (test:///NODE.xml for a simulated host); "
    "'none': report the inventory only.",
)
@click.option(
    "--vf-config",
    type=click.Choice(["netlink", "simulated", "off"]),
    default=None,
    help="How VFs of direct ports are configured (default: netlink on /sys, the simulated PF driver "
    "of any other sysfs root).",
)
@click.option(
    "--hypervisor-deadline",
    "hypervisor_deadline_s",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_DEADLINE_S,
    show_default=True,
    metavar="SECONDS",
    help="How long a libvirt call that may hang (connect, define, start, destroy) is waited for: past it the "
    "server is in error naming the step, or the host shows its hypervisor unreachable.",
)
@click.option(
    "--domain-type",
    type=click.Choice([t.value for t in DomainType]),
    default=None,
    help="The libvirt domain type of the host's servers (default: test for test:/// URIs, else kvm); qemu "
    "emulates (TCG), for hosts without KVM.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where servers' seeds, console logs and disks are kept (default: the user data dir's agent/).",
)
@click.option(
    "--image-cache",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The image cache (default: STATE_DIR/images).",
)
@click.option(
    "--image-cache-size",
    "image_cache_gb",
    type=click.FloatRange(min=0.001),
    default=50.0,
    show_default=True,
    metavar="GIB",
    help="At most this much of cached images; unused ones are evicted, least recently used first.",
)
@click.option(
    "--image-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Images the operator distributes, as IMAGE_DIR/NAME/PART (checked by sha256): nothing is fetched.",
)
@click.option("--once", is_flag=True, help="Scan, report and reconcile once, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@with_client
def agent(
    api: ApiClient,
    host_name: str | None,
    sysfs_root: Path | None,
    procfs_root: Path,
    libvirt_uri: str | None,
    config_path: Path | None,
    device_specs: tuple[str, ...],
    interval: float,
    heartbeat_every: int,
    full_report_every: int,
    hypervisor_uri: str,
    vf_config: str | None,
    hypervisor_deadline_s: float,
    domain_type: str | None,
    state_dir: Path | None,
    image_cache: Path | None,
    image_cache_gb: float,
    image_dir: Path | None,
    once: bool,
    verbose: bool,
) -> None:
    """Report this host's PCI devices and NUMA cells to the EPA server, and keep them current."""
    if sysfs_root is not None and libvirt_uri is not None:
        raise InvalidInput("--sysfs-root and --libvirt are alternatives; give one of them")
    with _logging_to_stderr(verbose):
        crash_at = armed()
        if crash_at:
            log.warning("crash points armed (EPA_CRASH_AT): %s", ", ".join(sorted(crash_at)))
        specs, sriov = _specs(config_path, device_specs)
        root = sysfs_root or Path("/sys")
        scan = _scanner(root, libvirt_uri)
        provisioner = None
        if sriov:
            scan = provisioner = provisioning(sriov, root, procfs_root, scan)
        if libvirt_uri is not None:
            log.warning("NUMA cells are read from %s, not from libvirt's capabilities", root)
        the_agent = Agent(
            api,
            host_name or socket.gethostname(),
            scan,
            specs,
            _facts(root, procfs_root),
            interval,
            heartbeat_every=heartbeat_every,
            full_report_every=full_report_every,
        )
        reconciler = None
        if hypervisor_uri != "none":
            uri = hypervisor_uri
            # Per host: the demo runs several agents on one machine, and each removes what its servers left.
            state = state_dir or Path(platformdirs.user_data_dir("epa")) / "agent" / the_agent.host_name
            cache_dir = image_cache or state / "images"
            _make_dirs((state, "--state-dir"), (cache_dir, "--image-cache"))
            cache = ImageCache(cache_dir, int(image_cache_gb * 1024**3), api, image_dir)
            reconciler = Reconciler(
                api,
                the_agent.host_name,
                lambda: open_connection(uri, hypervisor_deadline_s),
                the_agent.latest_report,
                _vf_backend(vf_config, root),
                uri=uri,
                # On the real /sys the agent binds unmanaged devices itself (the embedded driver has no
                # node-device API); a simulated host's test:/// driver keeps libvirt's detach.
                vfio=SysfsVfio(root, procfs_root) if root == Path("/sys") and not uri.startswith("test") else None,
                boot=Boot(cache, state, the_agent.host_name),
                domain_type=DomainType(domain_type) if domain_type else None,
                # VF provisioning refused is host-wide: on the host, not only in this log
                host_warnings=(lambda: provisioner.errors) if provisioner is not None else None,
            )
        try:
            if once:
                the_agent.run_once()
                if reconciler is not None:
                    for failure in Agent.reconcile(reconciler):
                        log.warning("%s", failure)
            else:
                _run_until_signalled(the_agent, reconciler, uevents=root == Path("/sys") and libvirt_uri is None)
        finally:
            if reconciler is not None:
                reconciler.close()


def _make_dirs(*dirs: tuple[Path, str]) -> None:
    """Create the agent's directories up front: one that cannot be made (a read-only home, a file in the
    way) is one line naming it and the option that moves it, not a traceback from deep in the cache."""
    for path, option in dirs:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise click.ClickException(f"cannot create {path} ({e.strerror or e}); choose another with {option}") from e


def _run_until_signalled(the_agent: Agent, reconciler: Reconciler | None, uevents: bool) -> None:
    """Run the loop until SIGTERM or SIGINT; the signal only sets the stop event, so the loop ends
    between two requests and logs that it stopped. With ``uevents`` (the real /sys), kernel PCI uevents
    wake the loop for a scan at once."""
    stop = ScanWake()
    if uevents:
        listen_for_pci_uevents(stop)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # no logging here: a signal handler may interrupt a log call holding its lock

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        the_agent.run(stop, reconciler)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

"""PCI discovery: read a host's PCI functions from sysfs or from libvirt's node-device API."""

from epa.discovery.result import ScanResult

__all__ = ["ScanResult"]

"""Simulated hosts: one description of a server's PCI functions, rendered as a real-shaped ``/sys``
tree (with real symlinks) and as a libvirt ``test:///`` node file. Used by the tests, the benchmarks
and the demo; never by production discovery."""

from epa.simulate.model import SimFunction, SimHost, SimNet

__all__ = ["SimFunction", "SimHost", "SimNet"]

"""EPA (Enhanced Platform Awareness): a control plane that knows the PCIe devices of a VM cloud's hosts."""

__version__ = "0.1.0"

"""The tags of a device_spec: every key that is not a match criterion, normalised the way Nova reads them.

Tags are kept as strings. Boolean tags are normalised to ``"true"`` / ``"false"``; ``resource_class`` and
``traits`` are normalised the way Nova's placement translator does (upper-case, ``CUSTOM_`` prefix for
anything that is not a standard name).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping

from epa.domain.booleans import BOOLEAN_RULE, boolean_word
from epa.errors import DeviceSpecError

# Keys that select devices; everything else in a device_spec is a tag.
MATCH_KEYS = frozenset({"vendor_id", "product_id", "address", "devname"})

BOOLEAN_TAGS = frozenset({"trusted", "remote_managed", "managed", "live_migratable", "one_time_use"})


# The standard resource classes (os-resource-classes) that a PCI device can sensibly be reported as.
# Any other name becomes CUSTOM_<NAME>. Deliberately small: extend it when a new standard class matters.
STANDARD_RESOURCE_CLASSES = frozenset({"PCI_DEVICE", "SRIOV_NET_VF", "VGPU", "PGPU", "FPGA"})

# Namespaces of the standard traits (os-traits) plus the custom one; a trait starting with one of
# these is kept as written (upper-cased), any other gets the CUSTOM_ prefix. Nova keeps only the exact
# names os-traits knows; checking namespaces instead spares us shipping that list, at the price of
# passing a misspelt standard trait (HW_CPU_X86_AVX3) on to placement, which then rejects it.
STANDARD_TRAIT_PREFIXES = ("COMPUTE_", "HW_", "MISC_SHARES_VIA_", "STORAGE_", "OWNER_", "CUSTOM_")

CUSTOM_PREFIX = "CUSTOM_"

_NOT_NAME_CHARS = re.compile(r"[^A-Z0-9_]+")


def _sanitise(name: str) -> str:
    return _NOT_NAME_CHARS.sub("_", name.strip().upper())


def normalise_resource_class(name: str) -> str:
    """``nvidia-t4`` -> ``CUSTOM_NVIDIA_T4``; ``pci_device`` -> ``PCI_DEVICE``; ``CUSTOM_X`` stays.

    Nova upper-cases first and only sanitises names that are not already custom, so ``custom_a-b``
    would reach placement as the invalid ``CUSTOM_A-B``; we sanitise every name.
    """
    clean = _sanitise(name)
    if clean in STANDARD_RESOURCE_CLASSES or clean.startswith(CUSTOM_PREFIX):
        return clean
    return CUSTOM_PREFIX + clean


def normalise_traits(text: str) -> str:
    """``"hw_gpu_api_vulkan, fast-nic"`` -> ``"HW_GPU_API_VULKAN,CUSTOM_FAST_NIC"``.

    Items are stripped (Nova does not strip, so its ``"A, B"`` yields ``CUSTOM__B``), empty items are
    dropped and duplicates removed, first occurrence first.
    """
    result: list[str] = []
    for item in text.split(","):
        if not item.strip():
            continue
        clean = _sanitise(item)
        if not clean.startswith(STANDARD_TRAIT_PREFIXES):
            clean = CUSTOM_PREFIX + clean
        if clean not in result:
            result.append(clean)
    return ",".join(result)


def parse_bool_tag(key: str, value: object) -> str:
    """Strict boolean: JSON true/false or one of the boolean words (epa.domain.booleans), any case."""
    found = boolean_word(value)
    if found is None:
        raise DeviceSpecError(
            f"property {key} ({json.dumps(value, default=str)}) is not a boolean (want {BOOLEAN_RULE})"
        )
    return "true" if found else "false"


def _tag_text(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return json.dumps(value)
    kind = ""
    if isinstance(value, list | tuple):
        kind = ", not a list"
    elif isinstance(value, Mapping):
        kind = ", not an object"
    raise DeviceSpecError(
        f"property {key} ({json.dumps(value, default=str)}) must be a string, a number or a boolean{kind}"
    )


def parse_tags(items: Iterable[tuple[object, object]]) -> tuple[tuple[str, str], ...]:
    """The tag pairs of one spec, in the order written; ``null`` values are dropped.

    Nova's own documentation writes ``"physical_network": null`` for specs that must have no physical
    network, so a null tag means "not set" rather than an error. An empty ``resource_class`` or
    ``traits`` is also "not set", as in Nova.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        if not isinstance(key, str):
            raise DeviceSpecError(f"property name {key!r} must be a string")
        if key in MATCH_KEYS or value is None:
            continue
        if key in BOOLEAN_TAGS:
            text = parse_bool_tag(key, value)
        elif key == "resource_class":
            raw = _tag_text(key, value)
            if not raw.strip():
                continue
            text = normalise_resource_class(raw)
        elif key == "traits":
            text = normalise_traits(_tag_text(key, value))
            if not text:
                continue
        else:
            text = _tag_text(key, value)
        pairs.append((key, text))
    return tuple(pairs)

"""Debian's Chromium for browser tests: where it is and the flags it runs with on this closed network."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that would reach for the network or Google's services at start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

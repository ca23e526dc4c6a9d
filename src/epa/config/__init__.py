"""Configuration: EPA's TOML file or an operator's existing nova.conf, read into parsed device_specs."""

from epa.config.loader import EpaConfig, load_config, parse_device_spec_args

__all__ = ["EpaConfig", "load_config", "parse_device_spec_args"]

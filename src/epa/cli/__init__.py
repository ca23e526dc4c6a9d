"""The ``epa`` command line."""

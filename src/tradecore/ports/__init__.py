"""Ports: the `typing.Protocol`s the application depends on and adapters implement."""

"""Integrations: one module per sink type, behind the interface in `sinks.base`."""

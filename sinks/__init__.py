"""Integrations: one module or package per sink type, behind the interface in
`sinks.base`, listed once in `sinks.registry`."""

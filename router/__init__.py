"""revring-router: routes RevRing post-call webhooks to integrations, durably."""

__version__ = "0.1.0"

"""Handlers of the Verifiable Log API (``openapi/verifiableLog.api.yaml``), one module per tag."""

"""Handlers of Customer Bill Management v2 (``openapi/customerBillManagement.api.yaml``), one module per tag."""

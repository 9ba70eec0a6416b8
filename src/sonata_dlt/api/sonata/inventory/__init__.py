"""Handlers of the Product Inventory Management API (``openapi/productInventoryManagement.api.yaml``, MEF 116 v7)."""

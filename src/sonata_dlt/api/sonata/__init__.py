"""Handlers of the Sonata APIs that call the Sonata domain: ``ordering`` (Product Ordering), ``inventory`` (Product
Inventory) and ``fulfilment`` (the seller fulfilment extension). One package per API, one module per spec tag."""

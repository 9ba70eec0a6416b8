"""The Sonata API domain (MEF LSO Sonata): orders and their state machines, inventory, hubs, product schemas.

- ``ordering``           Product Ordering: orders, tasks, charges, the seller's actions (a package, see its map)
- ``inventory``          Product Inventory: products made, changed and terminated by completed order items
- ``hubs``               hub subscriptions (TMF630 ``/hub``) for every Sonata API that has one
- ``product_schemas``    product-specific configuration checked against MEF product schemas
- ``product_bandwidth``  the committed bandwidth of a product, read from its configuration
- ``auto_fulfilment``    the seller's OSS side for the demo: fulfils orders by itself

May import: ``verifiable_log``, ``core`` and below. Never ``bilateral``, ``startup``, ``api``, ``cli``, ``client``
or ``sandbox``.
"""

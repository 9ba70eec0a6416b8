"""Product Ordering Management v10 handlers, one module per spec tag (services.ordering does the work)."""

"""Product Ordering Management v10 handlers, one module per spec tag (sonata.ordering does the work)."""

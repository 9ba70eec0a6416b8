"""See the package map in sonata_dlt/__init__.py."""

"""Handlers of the APIs that call the bilateral domain: ``customer_bill`` (Sonata Customer Bill Management) and
``smart_bilateral`` (agreements, reports, reconciliation, usage, billing runs, disputes, settlement)."""

"""Reconciliation of a buyer inventory report against a seller report, under the agreement's matching rules.

- ``results``  the DuckDB join that classifies every key; exceptions stored content-addressed, matches derived
- ``runs``     reconciliations: create, read the summary, page through or export the results
"""

"""Billing: rate one bilateral for one period and record the bill.

- ``inputs``       where a run's inputs come from (agreement, product versions, holds, usage), behind a Protocol
- ``bills``        MEF customer bills built from a rated bill; reading and listing them
- ``billing_run``  billing runs: rate, record the bill and its items
"""

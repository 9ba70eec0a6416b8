"""Inventory reports: each party's immutable view of the services active in the bilateral over a period.

- ``report_uploads``     reading uploads: content hash, CSV header, NDJSON / JSON rows checked and rewritten
- ``report_files``       uploads validated by DuckDB and stored, content-addressed, as CSV
- ``row_hashes``         the content hash of a row file in key order, computed by DuckDB and hashlib
- ``inventory_reports``  submitting and reading reports (the service the API calls)
"""

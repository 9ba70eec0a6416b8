"""The row shape of an inventory report: the columns each party reports for a service, and their types.

Both parties report the services active between them in this one shape (and the seller's Sonata product
inventory is exported to it), so the agreement's matching rules can name any column as a key or compared field.

| column         | type          | meaning                                                               |
| -------------- | ------------- | --------------------------------------------------------------------- |
| serviceId      | text          | the service's id as both parties know it (the seller's product id)    |
| buyerReference | text          | the buyer's own reference (Sonata ``externalId``)                     |
| productType    | text          | product type as priced in the agreement (e.g. ``accessEline``)       |
| bandwidthMbps  | decimal       | committed bandwidth in Mbit/s (up to 6 decimals)                      |
| siteA          | text          | first site id                                                         |
| siteZ          | text          | second site id (point-to-point services)                              |
| status         | text          | active, terminated ... as the reporting party sees it                 |
| startDate      | timestamp     | RFC 3339; a value without offset is UTC                               |
| endDate        | timestamp     | RFC 3339; empty while still active                                    |

Every column may be empty (NULL) except the agreement's key fields.
"""

from __future__ import annotations

from enum import StrEnum


class ColumnKind(StrEnum):
    TEXT = "text"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"


REPORT_COLUMNS: dict[str, ColumnKind] = {
    "serviceId": ColumnKind.TEXT,
    "buyerReference": ColumnKind.TEXT,
    "productType": ColumnKind.TEXT,
    "bandwidthMbps": ColumnKind.DECIMAL,
    "siteA": ColumnKind.TEXT,
    "siteZ": ColumnKind.TEXT,
    "status": ColumnKind.TEXT,
    "startDate": ColumnKind.TIMESTAMP,
    "endDate": ColumnKind.TIMESTAMP,
}

# DuckDB types of the columns once loaded (the Parquet schema of a stored report).
DUCKDB_TYPES: dict[ColumnKind, str] = {
    ColumnKind.TEXT: "VARCHAR",
    ColumnKind.DECIMAL: "DECIMAL(18,6)",
    ColumnKind.TIMESTAMP: "TIMESTAMPTZ",
}

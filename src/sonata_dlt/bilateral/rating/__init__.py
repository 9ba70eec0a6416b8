"""The pure rating model: bill lines and totals from terms, product versions, usage and SLA events.

- ``money``    exact minor units, rounding rules, the Sonata ``Money`` wire form
- ``periods``  half-open UTC intervals, calendar months, proration fractions
- ``engine``   the rating engine

Pure: the standard library and ``sonata_dlt.errors`` only (the layer test checks it).
"""

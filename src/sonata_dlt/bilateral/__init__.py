"""The Smart Bilateral domain (W114-style billing and settlement), in the order of a month's business; each stage
imports only the stages before it and the pure rating model:

- ``rating``           the pure rating model and engine (money, periods, prices, proration): imports nothing of ours
                       but ``errors``, so a party node can re-rate a bill with the very same code
- ``report_columns``   the row shape of an inventory report, which agreements' matching rules name
- ``agreement_terms``  an agreement version's terms: JSON model, validation, the engine's ``Terms``
- ``agreements``       agreement versions: proposal, two-sided approval, the version in effect
- ``reports``          inventory reports: uploads, stored files, content hashes (a package, see its map)
- ``reconciliation``   buyer against seller reports under the agreement's matching rules (a package)
- ``usage``            usage records from both parties, totals for billing, usage reconciliation
- ``billing``          billing runs, MEF customer bills and where a run's inputs come from (a package)
- ``disputes``         contesting reconciliation records, bill items or bills
- ``settlement``       netting between two operators that buy from each other

May import: ``sonata``, ``verifiable_log``, ``core`` and below. Never ``startup``, ``api``, ``cli``, ``client`` or
``sandbox``.
"""

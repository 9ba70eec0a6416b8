"""The party side: talk to a sonata-dlt server, verify what it serves, and carry proofs away.

- ``sonata``       aiohttp client for the Sonata APIs and the Verifiable Log (Proof) API; which API serves which
                   recorded resource type
- ``checks``       pure checks shared by the verifier and bundles: leaf records, signed checkpoints, keys, receipts
- ``trust_store``  the verifier's local SQLite memory: pinned host key, every checkpoint seen, last trusted tree
- ``verifier``     one party's verification run, then its cosignature (``sonata-dlt verify``)
- ``bundle``       audit bundles: export from a server, verify with no server (``sonata-dlt bundle``)
"""

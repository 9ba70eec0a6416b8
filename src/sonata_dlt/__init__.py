"""sonata-dlt: a Smart Bilateral server for MEF LSO Sonata, with a verifiable per-bilateral log.

Map of the package (dependencies point down this list, never up):

- ``cli``            the ``sonata-dlt`` command, one module per command group
- ``api``            connexion handlers, one package per Sonata API and one module per spec tag; error mapping
- ``services``       domain rules: orders and their state machines, inventory, charges, hubs, recording
- ``storage``        sqlmodel tables, engine/session handling and group commit, Alembic migrations
- ``notify``         durable outbox and the aiohttp delivery worker for hub listeners
- ``ledger``         anchoring backends behind one Protocol (``local``, ``ethereum``), found by entry point
- ``transparency``   pure RFC 9162 Merkle trees, RFC 8785 canonical JSON, C2SP checkpoints
- ``signing``        Ed25519 keys and C2SP signed notes / cosignatures
- ``client``         aiohttp Sonata client and the verifier
- ``settings``       the one typed settings object
- ``errors``         the one error family (imports nothing)
"""

__version__ = "0.1.0"

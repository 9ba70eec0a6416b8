"""sonata-dlt: a Smart Bilateral server for MEF LSO Sonata, with a verifiable per-bilateral log.

Map of the package, top to bottom: a package imports only packages below it (``tests/test_layers.py`` checks the
order, and that no import cycle exists anywhere). Each package's ``__init__`` maps its own modules.

- ``cli``             the ``sonata-dlt`` command, one module per command group
- ``sandbox``         the reference sandbox: plays a scenario through the public APIs (party-side: no server code)
- ``party_node``      a party's own node: replica, verification, cosigning, alarms (party-side: no server code)
- ``client``          aiohttp Sonata client, verifier, audit bundles, trust store (party-side: no server code)
- ``api``             connexion handlers grouped by the domain they call (``sonata``, ``bilateral``,
                      ``verifiable_log``), one module per spec tag; middleware; error mapping
- ``startup``         start-up wiring: builds the runtime and the writer process
- ``bilateral``       the Smart Bilateral domain: agreements -> reports -> reconciliation -> usage -> billing ->
                      disputes -> settlement, on the pure rating model (``bilateral.rating``)
- ``sonata``          the Sonata API domain: orders and their state machines, inventory, hubs, product schemas
- ``verifiable_log``  the verifiable-log domain: recording, checkpoints, proofs, cosigning, keys, anchoring
- ``core``            parties and the runtime (typed collaborators) every domain is given
- ``notify``          durable outbox and the aiohttp delivery worker for hub listeners
- ``ledger``          anchoring backends behind one Protocol (``local``, ``ethereum``), found by entry point
- ``storage``         sqlmodel tables, engine/session handling and group commit, Alembic migrations
- ``transparency``    pure RFC 9162 Merkle trees, RFC 8785 canonical JSON, C2SP checkpoints
- ``signing``         pure Ed25519 keys and C2SP signed notes / cosignatures
- ``settings``        the one typed settings object; ``logs`` structured logging; ``bilateral_id`` a
                      bilateral's id from its parties' ids
- ``errors``          the one error family (imports nothing)
"""

__version__ = "0.1.0"

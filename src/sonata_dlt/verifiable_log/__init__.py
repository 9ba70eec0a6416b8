"""The verifiable-log domain: every state change as a leaf of its bilateral's RFC 9162 log, checkpoints, proofs,
cosignatures, keys and anchors.

- ``recording``    the one path by which a state change reaches a bilateral's log (leaves, Merkle nodes, head)
- ``changes``      save a recorded resource: bump its version, store its document, append its leaf, in one transaction
- ``checkpoints``  cut checkpoints (by size, time, on demand) and read them with their signatures
- ``cosigning``    a party endorses a checkpoint after a consistency check
- ``keyring``      the host key and the parties' public keys with their validity periods
- ``anchoring``    one ledger anchor per checkpoint, asynchronous, retried
- ``proofs``       roots and inclusion / consistency proofs computed from storage

May import: ``core`` and below (``storage``, ``transparency``, ``signing``, ``ledger``, ``notify``, ``settings``,
``errors``). Never ``sonata``, ``bilateral``, ``startup``, ``api``, ``cli``, ``client`` or ``sandbox``.
"""

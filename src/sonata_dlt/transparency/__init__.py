"""Pure transparency primitives: bytes in, bytes out, nothing from the application but ``errors``.

- ``canonical``   RFC 8785 canonical JSON (``canonical_json``) and the resource fingerprint (``state_hash``)
- ``merkle``      RFC 9162 Merkle trees over stored perfect subtrees: append, roots, proofs, verification
- ``checkpoint``  C2SP tlog-checkpoint note bodies (origin, size, root hash)

Signing those bodies lives in ``sonata_dlt.signing``. See the package map in ``sonata_dlt/__init__.py``.
"""

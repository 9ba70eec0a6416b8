"""Ed25519 keys and C2SP signed notes; bytes in, bytes out, nothing from the application but ``errors``.

- ``keys``  ``SigningKey`` / ``VerifierKey`` in the Go sumdb/note skey and vkey formats, key ids, key files
- ``note``  signed notes (``sign_note``, ``verify_note``) and tlog-cosignature/v1 (``cosign_checkpoint``,
  ``verify_cosignature``)

See the package map in ``sonata_dlt/__init__.py``.
"""

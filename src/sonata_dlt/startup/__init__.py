"""Start-up wiring: what builds a process's ``Runtime`` from the settings, and the writer process.

- ``wiring``          ``start_runtime`` (the server's: schema upgrade, parties, product schemas, keyring, ledger,
                      report store) and ``writer_runtime`` (the writer process's)
- ``writer_process``  group commit of order creates in a spawned process beside the event loop

Sits above the domains: may import ``bilateral``, ``sonata``, ``verifiable_log``, ``core`` and everything under them;
never ``api``, ``cli``, ``client`` or ``sandbox``.
"""

"""The reference sandbox: two operators, a month of business through the public APIs, verified end to end.

Map of the package:

- ``topology``      the operators (a buyer and a seller token each), ports, and the server's settings file
- ``processes``     child processes (server, buyer agents, optional EVM dev node), readiness and clean shutdown
- ``buyer_agent``   a buyer's OSS in its own process and database: hub listener, copies,
                    client verifier and its copies checked, cosigning, alarms
- ``http``          one JSON request as one party (``call``, ``ApiError``)
- ``scenario``      the YAML scenario model (steps, period, expectations); format in ``scenarios/README.md``
- ``documents``     MEF product configurations and Sonata order bodies the scenario sends
- ``runner``        executes a scenario's steps over HTTP, as the buyers' and sellers' OSS; the sellers verify
                    and cosign with the client verifier; the audit bundle step (client bundle export, offline check)
- ``billing``       the billing steps: billing runs, disputes, settlement with netting
- ``verification``  the full end-of-month verification of every log (client verifier, fresh trust store), figures
- ``narration``     step lines, progress and the summary printed for people
- ``session``       one run from start to summary; exit status
"""

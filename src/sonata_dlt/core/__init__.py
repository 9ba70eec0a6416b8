"""The core every domain stands on: who the parties are, and the runtime a service call is given.

- ``parties``  parties, roles and bilaterals: who is calling, which bilateral a request belongs to
- ``runtime``  ``Runtime``: settings, database, party directory and typed collaborators (``Component`` keys that the
               domains define and the start-up wiring fills); group-commit hand-over
- ``paging``   the one paged list query (count, order, offset, limit)

May import: ``storage``, ``transparency``, ``signing``, ``ledger``, ``notify``, ``settings``, ``errors``, ``logs``.
Never a domain (``verifiable_log``, ``sonata``, ``bilateral``), ``startup``, ``api``, ``cli``, ``client``, ``sandbox``.
"""

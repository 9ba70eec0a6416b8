"""``python -m sonata_dlt.cli``: the same as the ``sonata-dlt`` command."""

import sys

from sonata_dlt.cli import main

if __name__ == "__main__":  # not when a spawned child process (the writer) imports it as its parent's main module
    sys.exit(main())

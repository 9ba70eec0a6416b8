"""``python -m sonata_dlt.cli``: the same as the ``sonata-dlt`` command."""

import sys

from sonata_dlt.cli import main

sys.exit(main())

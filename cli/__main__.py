"""``python -m rvcloud.cli``: the ``rvcloud`` command."""

import sys

from rvcloud.cli.main import main

sys.exit(main())

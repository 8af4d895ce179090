"""``python -m bench WORKLOAD ...``: the same as ``kinline bench WORKLOAD ...``."""

import sys

from bench import main

sys.exit(main(sys.argv[1:]))

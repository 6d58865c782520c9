"""`python -m local_router`: the same flags as `beacon router`."""

import logging
import sys

from local_router.cli import main

logger = logging.getLogger(__name__)

if __name__ == "__main__":
    sys.exit(main())

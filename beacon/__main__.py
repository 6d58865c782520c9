"""`python -m beacon` is the `beacon` command."""

import sys

from beacon.entry import main

sys.exit(main())

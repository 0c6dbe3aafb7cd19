"""``python -m montagu_console``."""

import sys

from .cli import main

sys.exit(main())

"""`python -m lavabench` is the `lavabench` command."""

import sys

from lavabench.cli import main

sys.exit(main())

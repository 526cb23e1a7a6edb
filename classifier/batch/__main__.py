"""`python -m classifier.batch`: see classifier/batch/cli.py."""

import sys

from classifier.batch.cli import main

sys.exit(main())

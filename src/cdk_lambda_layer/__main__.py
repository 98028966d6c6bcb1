"""`python -m cdk_lambda_layer` runs the command line."""

import sys

from .cli import main

sys.exit(main())

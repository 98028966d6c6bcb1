"""`python -m cdk_lambda_layer` runs the command line."""

import sys

from .cli.main import main

sys.exit(main())

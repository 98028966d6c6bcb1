"""The command line: `cdk-lambda-layer build [PROJECT] --python 3.12 --arch arm64 ...`.

Progress and the summary go to stderr; `--json` prints one JSON object on stdout for
scripts (keys: layer_zip, fingerprint, packages, ...). Errors print their message and
exit with the error's code, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..errors import LayerBuildError
from .build import build_command
from .cache import cache_command
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return cache_command(args) if args.command == "cache" else build_command(args)
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was published; the next run builds again", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

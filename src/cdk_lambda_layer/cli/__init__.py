"""The command line: the parser (parser.py), ``build`` (build.py), ``cache list|prune`` (cache.py),
and the entry point with its exit codes (main.py).
"""

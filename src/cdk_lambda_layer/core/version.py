"""This library's version: in manifests, cache records and ``--version``."""

__version__ = "0.1.0"

"""Beneath every stage: the one subprocess runner, finding tools and reading their failures,
redaction, index credentials, locks, safe file reads, walks and copies, ELF headers, this library's
folders and version. Nothing here knows a stage; every stage may use it.
"""

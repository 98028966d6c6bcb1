"""Stage 1, the project: pyproject.toml, the tool that owns it and its lock, requirements files and
the local packages they name (load.py: ``Project`` and ``load_project``; check.py: what the files
alone refuse). Files only: construct time reads these, and runs no process.
"""

"""Stage 5, verification of the installed layer before anything is published (layer.py runs every
check): wheel tags (tags.py), exactly the plan (installed.py), RECORD hashes (record.py), files owned
twice (overlap.py), requirements met for the target (requires.py), size (size.py), and what the
runtime's loader will need from its native code (native/).
"""

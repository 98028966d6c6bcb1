"""Stage 6, the package: the build folder and its atomic publication (layout.py), the deterministic
layer.zip (archive.py) and manifest.json (manifest.py).
"""

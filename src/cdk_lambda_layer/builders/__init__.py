"""The builders: the stages in order for one layer. ``LayerRun`` (pipeline.py) is the run every
builder shares (cache, staging, manifest, zip); the local builders (local.py) and the container
builders (container.py) bring their steps; prepare.py holds the steps before an install; modes.py
chooses local, container or auto; summary.py says what a build did.
"""

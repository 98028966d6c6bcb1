"""Stage 4, the install for the target: local packages built into wheels (local_packages.py), the plan
installed on this host (host.py) or in the build image (container/), trimmed (trim.py), compiled to
bytecode (bytecode.py) and imported (import_check.py) by the target's Python (target_python.py);
what a tree holds (inventory.py). bytecode.py, import_check.py, trim.py and inventory.py are
standard library only: the build image runs the very same files.
"""

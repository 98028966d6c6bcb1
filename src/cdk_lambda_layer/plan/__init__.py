"""Stage 3, the plan: the pinned closure exported by the project's own tool (export.py, read by
locked.py), chosen for the Lambda target before anything is installed (wheels.py: markers and wheel
tags for the runtime, every refusal named; model.py: what a plan holds), shaped by the project's
files (shape.py, pinning.py); and where the target's interpreter and the machine's index settings
are found (interpreter.py, machine_config.py).
"""

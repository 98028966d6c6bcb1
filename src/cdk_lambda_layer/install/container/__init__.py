"""The install in the build image: how the container runs (options.py), what the host hands over
(handoff.py) and reads back (report.py), the image itself (images.py), the Docker SDK calls
(docker.py), and the step that runs inside the image (step.py, standard library only).
"""

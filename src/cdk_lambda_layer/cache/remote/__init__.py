"""The remote layer cache on S3, read through and written back around the local one: each fingerprint
built once for a whole fleet of CI runners and laptops.

Layout under ``s3://bucket/prefix/``: ``blobs/<sha256>.zip`` (a layer.zip, named by its content) and
``records/<fingerprint>.json`` (which blob, and what a hit is held to: target, bytecode and import
check, image, sizes, format). The blob is uploaded first and the record last, so a killed upload
never leaves a record pointing at a missing or partial blob; a download is checked against the
record's hash before anything is used. Where it is: location.py; talking to S3: client.py; the
record: record.py; one build's use of it: session.py. A remote that cannot be reached costs a
warning, never a failed build.
"""

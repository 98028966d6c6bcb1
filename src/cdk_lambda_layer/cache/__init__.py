"""Stage 7, the layer cache: finished layers by fingerprint outside cdk.out (store.py, entry.py), proof
that a folder is ours (ownership.py), where it lives (location.py), one build's use of it under the
fingerprint's lock (session.py), what a hit is held to beyond its fingerprint (reuse.py), and
pruning (prune.py).
"""

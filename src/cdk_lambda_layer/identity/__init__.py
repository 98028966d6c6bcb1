"""Stage 2, the layer's identity: the fingerprint (fingerprint.py), one hash of exactly what determines
a layer, which is the CDK asset hash and the cache key; and the rule for which files of a local
package it hashes (sources.py). Files only, no process.
"""

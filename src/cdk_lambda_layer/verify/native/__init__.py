"""The native-code audit: what Lambda's dynamic loader will need from every shared library of the
layer (audit.py), read with pyelftools (elf.py), against what each runtime's OS provides
(policy.py, after auditwheel's manylinux policies).
"""

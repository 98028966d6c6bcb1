"""The package cache: each installed distribution's tree as a build made it for a target, with its
bytecode and its zip members, so that a build whose plan shares packages with an earlier one installs,
compiles and compresses only what changed (key.py: what names an entry; entry.py: one entry and how
it is checked; store.py: finding, restoring and storing entries under their locks; split.py: which
files of a layer belong to which distribution)."""

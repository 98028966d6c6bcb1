"""After the layer passed every check: its new packages kept in the package cache.

Each package installed this build (and each entry whose zip streams were not those of its files,
replaced) becomes an entry: its files out of the verified layer (cache/packages/split.py says which),
copied and hashed on the way, with their raw deflate streams read back out of layer.zip; hits that had
no streams at this zip level get them. A few entries are written at a time, each under its key's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..cache.packages.key import PackageKey
from ..cache.packages.split import split_tree
from ..core.files import walk_files
from ..errors import CacheFolderError
from ..install.inventory import InstalledPackage
from ..package.archive import member_spans
from ..verify.native.elf import ElfInfo
from .incremental import _COPIERS, PackageReuse

logger = logging.getLogger(__name__)


def store_new(
    reuse: PackageReuse,
    site: Path,
    layer_zip: Path | None,
    rejected: Sequence[str],
    files: list[tuple[Path, int]] | None = None,
    packages: list[InstalledPackage] | None = None,
    elf: Mapping[Path, ElfInfo | None] | None = None,
    written: Mapping[str, tuple[int, int, int]] | None = None,
) -> int:
    """Keep each miss as an entry, and zip streams the hits lacked; the number of entries added.
    ``files``, ``packages``: the finished layer's walk and its installed_packages, where known; ``elf``:
    the ELF audit's facts of the layer's shared libraries, kept with the entries that ship them;
    ``written``: member_spans of ``layer_zip`` as its writer noted them (else they are read from it)."""
    if not reuse.active:
        return 0
    native = {
        path.relative_to(site).as_posix(): (info.to_json() if info else None) for path, info in (elf or {}).items()
    }
    split = split_tree(site, walk_files(site) if files is None else files, packages)
    if split.unowned:
        logger.info("package cache: files no package claims (%s): nothing stored", ", ".join(split.unowned[:5]))
        return 0
    stored = 0
    try:
        again = _drop_rejected(reuse, rejected)
        keys = [m.key for m in reuse.reused.misses if m.key is not None] + again
        lacking = [k for k, d in reuse.reused.hits.values() if k not in again and reuse.members_key not in d["members"]]
        wanted = {name for key in [*keys, *lacking] for name in split.owned.get(key.name, ())}
        spans = None
        if layer_zip is not None and reuse.members_key is not None and wanted:
            spans = {n: written[n] for n in wanted if n in written} if written else member_spans(layer_zip, wanted)
        members = (reuse.members_key, layer_zip, spans) if spans is not None else None
        reuse.cache.sweep_leftovers()

        def one(key: PackageKey) -> bool:
            files = split.owned.get(key.name)
            if files is None:
                return False
            with reuse.cache.lock(key.digest):
                facts = {name: native[name] for name in files if name in native}
                return reuse.cache.store(key, site, files, _bytecode_of(files, reuse.bytecode), members, facts)  # type: ignore[arg-type]

        with ThreadPoolExecutor(max_workers=_COPIERS) as pool:  # a few entries at a time, as copy_in
            stored = sum(pool.map(one, keys))
        for key in lacking if spans is not None else ():
            with reuse.cache.lock(key.digest):
                reuse.cache.add_members(key, reuse.members_key, layer_zip, spans)  # type: ignore[arg-type]
    except (OSError, CacheFolderError) as exc:
        reuse.unusable(exc, "storing")
    return stored


def _drop_rejected(reuse: PackageReuse, rejected: Sequence[str]) -> list[PackageKey]:
    """Entries whose streams were not those of their files (consistently tampered) are removed, to be
    stored again from the layer (which passed every check); their keys."""
    wrong, again = set(rejected), []
    for key, document in reuse.reused.hits.values():
        if wrong & set(document["files"]):
            logger.warning("package cache entry %s has zip members that are not its files: replaced", key.name)
            with reuse.cache.lock(key.digest):
                reuse.cache.entry(key.digest).remove()
            again.append(key)
    return again


def _bytecode_of(files: Sequence[str], bytecode: str) -> dict[str, Any]:
    """How many of the package's modules have a .pyc, and which have none (they did not compile)."""
    if bytecode == "none":
        return {"compiled": 0, "failed": []}
    compiled_modules = set()
    for name in files:
        folder, _, file = name.rpartition("/")
        if file.endswith(".pyc") and (folder == "__pycache__" or folder.endswith("/__pycache__")):
            compiled_modules.add((folder[: -len("__pycache__")].rstrip("/"), file[:-4].rpartition(".")[0]))
    compiled, failed = 0, []
    for name in files:
        if name.endswith(".py"):
            folder, _, file = name.rpartition("/")
            if (folder, file[:-3]) in compiled_modules:
                compiled += 1
            else:
                failed.append(name)
    return {"compiled": compiled, "failed": failed}

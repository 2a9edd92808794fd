"""The compile cache: a generated module is kept per user and reused only when phc can verify that
it wrote that file for exactly this compilation.

- **Key**: sha256 over everything that changes the generated module or how it runs: the source
  text and its file name (Physika has no imports, so the source is the only input file), phc's
  version and the hash of its own code, grammar, templates and runtime, the backend, the
  optimisation level, the options (`--set`), and the environment that matters (TRITON_INTERPRET).
- **Folder**: `$PHC_CACHE`, else `$XDG_CACHE_HOME/phc`, else `~/.cache/phc`; created with mode
  0700, and refused (phc then compiles without a cache) when another user owns it or others may
  write to it.
- **Trust**: an entry is `<key>.py` and its manifest `<key>.json`, which records the key, the
  sha256 of the module text and an HMAC of both under a secret kept in the folder (mode 0600). A
  file is used only when all three check out; its verified text is what runs (never re-read from
  disk, never a stale `.pyc`). A corrupt, foreign or planted entry is compiled again, never run.
- **Writes** are atomic (a temporary file in the folder, then `os.replace`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from phc import log

ENV_KEYS = ("TRITON_INTERPRET", "PHC_ADJOINT")     # environment read when the module is emitted or imported


class CacheError(Exception):
    """The cache folder cannot be used (the message says why); phc goes on without it."""


@dataclass
class Entry:
    path: Path
    python: str
    diagnostics: list = field(default_factory=list)     # as dicts (phc.diagnostics.to_dict)
    toplevel: list = field(default_factory=list)        # the program's top-level variable names


def cache_root() -> Path:
    if os.environ.get("PHC_CACHE"):
        return Path(os.environ["PHC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phc"


def compile_key(source: str, filename: str, backend: str, opt: int, options: dict | None = None) -> str:
    from phc import __version__
    from phc.resources import code_hash
    parts = {
        "source": hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest(),
        "filename": filename, "phc": __version__, "code": code_hash(), "backend": backend,
        "opt": opt, "options": sorted((options or {}).items()),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def private_dir(path: Path) -> Path:
    """`path`, created with mode 0700 if missing; CacheError when it is not ours alone."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as e:
        raise CacheError(f"cannot create {path}: {e.strerror or e}") from None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheError(f"{path} belongs to another user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"{path} is writable by other users (make it mode 0700)")
    return path


class Cache:
    def __init__(self, root: Path | None = None):
        self.root = private_dir(root or cache_root())
        self.modules = private_dir(self.root / "modules")
        self._secret = self._load_secret()

    # ---- the secret that makes a manifest ours

    def _load_secret(self) -> bytes:
        path = self.root / "secret"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as e:
            raise CacheError(f"cannot write {path}: {e.strerror or e}") from None
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        try:
            info = path.stat()
            secret = path.read_bytes()
        except OSError as e:
            raise CacheError(f"cannot read {path}: {e.strerror or e}") from None
        if len(secret) != 32 or info.st_mode & 0o077:
            raise CacheError(f"{path} is not phc's (32 bytes, mode 0600)")
        return secret

    def _mac(self, key: str, digest: str) -> str:
        return hmac.new(self._secret, f"{key}:{digest}".encode(), hashlib.sha256).hexdigest()

    # ---- entries

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.modules / f"phk_{key[:32]}.py", self.modules / f"phk_{key[:32]}.json"

    def lookup(self, key: str) -> Entry | None:
        """The verified entry of `key`, or None (missing, corrupt, or not written by phc for it)."""
        py_path, manifest_path = self.paths(key)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            data = py_path.read_bytes()
        except (OSError, ValueError):
            log.log("cache", f"miss {py_path.name}")
            return None
        digest = hashlib.sha256(data).hexdigest()
        ok = (isinstance(manifest, dict) and manifest.get("key") == key
              and manifest.get("sha256") == digest
              and hmac.compare_digest(str(manifest.get("mac", "")), self._mac(key, digest)))
        if not ok:
            log.log("cache", f"rejected {py_path.name}: not written by phc for this key")
            return None
        log.log("cache", f"hit {py_path.name}")
        return Entry(py_path, data.decode("utf-8"), manifest.get("diagnostics", []),
                     manifest.get("toplevel", []))

    def store(self, key: str, python: str, diagnostics: list, toplevel: list) -> Path:
        py_path, manifest_path = self.paths(key)
        data = python.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        manifest = {"key": key, "sha256": digest, "mac": self._mac(key, digest),
                    "diagnostics": diagnostics, "toplevel": toplevel}
        atomic_write(py_path, data)
        atomic_write(manifest_path, json.dumps(manifest).encode())
        log.log("cache", f"stored {py_path.name}")
        return py_path


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it: readers see all or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def open_cache() -> tuple[Cache | None, str | None]:
    """The user's cache, or (None, why not)."""
    try:
        return Cache(), None
    except CacheError as e:
        return None, str(e)

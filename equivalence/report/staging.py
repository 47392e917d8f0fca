"""The report set is staged in a temporary folder and swapped in only when complete.

A report set is ``certificate.json``, ``report.md``, ``report.html`` and every file the certificate lists
in ``artifacts`` (training figures, JSON results and checkpoints, counterexample files). Everything of a
new set — the training section's artifacts included — is written into a hidden staging folder next to
``--out`` (``.<out>.staging-<pid>-<random>``, same file system), and only when every file is complete is the
staging folder swapped with ``--out`` in one atomic ``renameat2(RENAME_EXCHANGE)``; the previous set then
lies in the staging folder and is deleted. So a run that is killed (even ``kill -9``) or runs out of disk
leaves the previous report set intact and no orphan files in ``--out``; a stale staging folder left by a
killed process is removed by the next run that writes the same folder.

Files in ``--out`` that are not part of the previous set (e.g. the user's own notes) are hard-linked into the
staging folder before the swap, so they stay. When ``--out`` holds sub-folders (or other entries that
cannot be linked), or the atomic exchange is not supported by the file system, the set is moved in file by
file instead (artifacts first, ``certificate.json`` last), which still never leaves a half-written file.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from .safe import UntrustedInput, is_plain_name, load_json_file

__all__ = [
    "REPORT_FILES",
    "StagingError",
    "atomic_write",
    "commit",
    "discard",
    "previous_set",
    "stage_for",
    "staging_dir",
]

REPORT_FILES = ("certificate.json", "report.md", "report.html")
_ACTIVE: dict[str, Path] = {}


class StagingError(OSError):
    """The report set could not be written; the previous one (if any) is unchanged."""


def _key(out: Path) -> str:
    return str(Path(os.path.realpath(out)))  # a symlinked --out: the set goes where the link points


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``: a reader
    sees the old file or the new one, never a half-written one. Created ``0666 & ~umask``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; reports are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(out: Path) -> list[Path]:
    """Staging folders of ``out`` left by processes that no longer run."""
    out = Path(os.path.realpath(out))
    parent = out.parent
    if not parent.is_dir():
        return []
    found = []
    prefix = f".{out.name}.staging-"
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    for e in entries:
        if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False):
            pid = e.name[len(prefix) :].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)) and Path(e.path) not in _ACTIVE.values():
                found.append(Path(e.path))
    return found


def stage_for(out: Path) -> Path:
    """The staging folder of ``out`` for this process (created on first use): write the new set's files
    here."""
    k = _key(out)
    if k in _ACTIVE and _ACTIVE[k].is_dir():
        return _ACTIVE[k]
    out = Path(k)
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in _stale(out):
        shutil.rmtree(old, ignore_errors=True)
    d = out.parent / f".{out.name}.staging-{os.getpid()}-{secrets.token_hex(4)}"
    d.mkdir(mode=0o700)
    mode = stat.S_IMODE(os.stat(out).st_mode) if out.is_dir() else 0o777 & ~_umask()
    os.chmod(d, mode)
    _ACTIVE[k] = d
    return d


def staging_dir(out: Path) -> Path | None:
    """The staging folder of ``out`` if this process has one, else ``None``."""
    d = _ACTIVE.get(_key(out))
    return d if d is not None and d.is_dir() else None


@atexit.register
def _discard_all() -> None:
    """At exit (normal or by an exception), no staging folder of this process stays behind."""
    for k in list(_ACTIVE):
        discard(Path(k))


def discard(out: Path) -> None:
    """Delete this process's staging folder of ``out`` (after a failure: nothing of the new set remains)."""
    d = _ACTIVE.pop(_key(out), None)
    if d is not None:
        shutil.rmtree(d, ignore_errors=True)


def previous_set(out: Path) -> set[str]:
    """File names of the report set now in ``out`` (its three report files and its certificate's
    artifacts)."""
    out = Path(out)
    names = {n for n in REPORT_FILES if (out / n).exists()}
    try:
        cert = load_json_file(out / "certificate.json", max_bytes=64 << 20, what="certificate")
    except (UntrustedInput, OSError):
        return names
    arts = cert.get("artifacts") if isinstance(cert, dict) else None
    if isinstance(arts, dict):
        names |= {n for n in arts if is_plain_name(n) and os.path.lexists(out / n)}
    return names


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two folders (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: a hook for tests: called with the staging folder once the new set is complete, just before the swap
before_swap = None


def commit(out: Path, new_names: list[str]) -> None:
    """Swap the complete staged set (files ``new_names`` in the staging folder) into ``out``."""
    k = _key(out)
    d = _ACTIVE.get(k)
    if d is None:
        raise StagingError(f"no staged report set for {out}")
    out = Path(k)
    for name in new_names:
        _fsync_file(d / name)
    _fsync_dir(d)
    if before_swap is not None:
        before_swap(d)
    if not out.exists():
        os.rename(d, out)
        _ACTIVE.pop(k, None)
        _fsync_dir(out.parent)
        return
    old = previous_set(out)
    foreign = [e for e in os.scandir(out) if e.name not in old and e.name not in new_names]
    linkable = all(e.is_file(follow_symlinks=False) for e in foreign)
    cwd_inside = (
        Path(os.getcwd()).resolve() == out.resolve() or out.resolve() in Path(os.getcwd()).resolve().parents
    )
    if linkable and not cwd_inside:
        try:
            for e in foreign:
                os.link(e.path, d / e.name, follow_symlinks=False)
            swapped = _exchange(d, out)
        except OSError:
            swapped = False
        if swapped:
            _ACTIVE.pop(k, None)
            _fsync_dir(out.parent)
            shutil.rmtree(d, ignore_errors=True)  # now the previous set
            return
        for e in foreign:  # undo the links before moving file by file
            try:
                os.unlink(d / e.name)
            except FileNotFoundError:
                pass
    # file by file: artifacts first, the certificate last
    order = sorted(new_names, key=lambda n: (n == "certificate.json", n in REPORT_FILES, n))
    for name in order:
        os.replace(d / name, out / name)
    for name in sorted(old - set(new_names)):
        try:
            os.unlink(out / name)
        except FileNotFoundError:
            pass
    _fsync_dir(out)
    discard(out)


def _fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

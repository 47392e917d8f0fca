"""Reading untrusted files (certificates, counterexample files) and printing their text safely.

A certificate or a counterexample file is *data from someone else*. Reading one must never run code it
names, never follow a path out of its folder, and never hang or crash on a hostile file:

- :func:`load_json_file` checks the size *before* parsing (a 200 MB file is refused at once), reads
  regular files only (never through a symlink), and rejects invalid JSON, nesting deeper than
  :data:`MAX_DEPTH`, integers longer than :data:`MAX_INT_DIGITS` digits and ``NaN`` / ``Infinity``
  literals, each as one :class:`UntrustedInput` line;
- :func:`safe_member` resolves a file name *inside* a folder: plain names only, never a symlink, never
  outside the folder;
- :func:`tty` escapes control characters (ANSI escape sequences, carriage returns, bidirectional
  overrides) so text from a file cannot rewrite the terminal.
"""

import json
import os
import re
import stat
import unicodedata
from pathlib import Path

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "UntrustedInput",
    "is_plain_name",
    "load_json_file",
    "loads",
    "safe_member",
    "tty",
]

MAX_DEPTH = 200
MAX_INT_DIGITS = 60


class UntrustedInput(ValueError):
    """An untrusted file is malformed or hostile; the message is one line naming the problem."""


def _depth(obj, limit: int) -> int:
    """The nesting depth of parsed JSON (iterative: no recursion), stopping once it exceeds ``limit``."""
    stack, worst = [(obj, 1)], 0
    while stack:
        o, k = stack.pop()
        if k > worst:
            worst = k
            if worst > limit:
                return worst
        children = o.values() if isinstance(o, dict) else o
        stack.extend((v, k + 1) for v in children if isinstance(v, dict | list))
    return worst


def _parse_int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        digits = len(s.lstrip("-"))
        raise UntrustedInput(f"an integer with {digits} digits (at most {MAX_INT_DIGITS} are read)")
    return int(s)


def _parse_constant(s: str):
    raise UntrustedInput(f"the non-standard JSON literal {s} (strict JSON has no NaN or Infinity)")


def loads(text: str, *, what: str = "file", max_depth: int = MAX_DEPTH):
    """Parse strict JSON from an untrusted source; :class:`UntrustedInput` (one line) on any problem."""
    too_deep = UntrustedInput(f"{what} nests deeper than {max_depth} levels; a real one nests a few levels")
    try:
        obj = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except RecursionError:  # the C parser gives up at the interpreter's recursion limit, at once
        raise too_deep from None
    except UntrustedInput as e:
        raise UntrustedInput(f"{what} holds {e}") from None
    except json.JSONDecodeError as e:
        raise UntrustedInput(
            f"{what} is not valid JSON (truncated or edited by hand?): {e.msg} at line "
            f"{e.lineno}, column {e.colno}"
        ) from None
    except (ValueError, MemoryError) as e:
        raise UntrustedInput(f"{what} cannot be parsed: {type(e).__name__}: {tty(str(e))[:200]}") from None
    if isinstance(obj, dict | list) and _depth(obj, max_depth) > max_depth:
        raise too_deep
    return obj


def load_json_file(path: Path, *, max_bytes: int, what: str = "file"):
    """Read and parse the JSON file ``path`` (a regular file, not a symlink, at most ``max_bytes``)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UntrustedInput(f"no {what} at {tty(str(path))}") from None
    except OSError as e:
        raise UntrustedInput(f"cannot read {what} {tty(str(path))}: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UntrustedInput(f"{what} {tty(str(path))} is a symbolic link; give the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedInput(f"{what} {tty(str(path))} is not a regular file")
    if st.st_size > max_bytes:
        raise UntrustedInput(
            f"{what} {tty(str(path))} is {st.st_size} bytes; at most {max_bytes} are read "
            "(a real one is far smaller)"
        )
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise UntrustedInput(f"cannot read {what} {tty(str(path))}: {e.strerror}") from None
    if len(data) > max_bytes:
        raise UntrustedInput(f"{what} {tty(str(path))} is larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UntrustedInput(f"{what} {tty(str(path))} is not UTF-8 text (byte {e.start})") from None
    return loads(text, what=f"{what} {tty(str(path))}")


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


def is_plain_name(name: object) -> bool:
    """A file name inside the report folder: letters, digits, ``_ . -``, no path separator, not hidden."""
    return isinstance(name, str) and bool(_PLAIN_NAME.fullmatch(name)) and ".." not in name


def safe_member(folder: Path, name: object) -> Path:
    """``folder / name`` for a plain file name that is a regular file directly inside ``folder`` and not a
    symbolic link; :class:`UntrustedInput` otherwise (``../x``, ``/etc/passwd``, a symlink, a folder)."""
    if not is_plain_name(name):
        raise UntrustedInput(
            f"{tty(repr(name))[:120]} is not a plain file name inside the certificate's folder"
        )
    path = Path(folder) / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UntrustedInput(f"{name} is not in {tty(str(folder))}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UntrustedInput(f"{name} is a symbolic link; links are never followed")
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedInput(f"{name} is not a regular file")
    return path


def tty(s: object) -> str:
    """``s`` with control and format characters (ESC, CR, BEL, bidi overrides, ...) written as escapes."""
    s = str(s)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch == " " or ch.isprintable() and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"):
            out.append(ch)
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out)

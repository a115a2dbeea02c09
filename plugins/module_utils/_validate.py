# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input validation shared by every module: object names, sizes, paths."""

from __future__ import annotations

import os
import re

from ._errors import VirtforgeError

# libvirt object names end up in file names, XML and command lines: keep them boring.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+:-]*")
NAME_MAX = 64

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_UNITS = {
    "": 1, "b": 1, "bytes": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
    "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3,
    "t": 1024 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4,
}
# libvirt's own unit names, for reading XML ("KiB" is libvirt's default for memory).
LIBVIRT_UNITS = dict(_UNITS, kib=1024, mib=1024 ** 2, gib=1024 ** 3, tib=1024 ** 4)


def check_name(value, option="name", kind="name"):
    """Refuse names that would escape a directory, break XML, or confuse libvirt."""
    if value is None:
        return value
    if not isinstance(value, str) or value == "":
        raise VirtforgeError("must be a non-empty string", option=option)
    if len(value) > NAME_MAX:
        raise VirtforgeError("%r is longer than %d characters" % (value, NAME_MAX), option=option)
    if value in (".", "..") or "/" in value or not _NAME_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.match(r"[A-Za-z0-9_.+:-]", c)})
        why = "contains %s" % ", ".join(repr(c) for c in bad) if bad else "is not allowed"
        if value in (".", "..") or ".." == value:
            why = "is a relative path component"
        raise VirtforgeError(
            "%s %r %s" % (kind, value, why),
            option=option,
            fix="Use letters, digits and . _ - + : only, starting with a letter, digit or _",
        )
    return value


def parse_size(value, option, default_unit="b", minimum=None):
    """Parse ``1073741824``, ``"1 GiB"``, ``"512M"``, ``"2G"`` into bytes (binary units for K/M/G/T)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise VirtforgeError("%r is not a size" % (value,), option=option)
    if isinstance(value, (int, float)):
        number, unit = float(value), default_unit
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise VirtforgeError(
                "%r is not a size" % (value,), option=option,
                fix="Give a number with an optional unit, e.g. 2048, '512MiB' or '20G'")
        number, unit = float(match.group(1)), match.group(2) or default_unit
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise VirtforgeError(
            "unknown unit %r in %r" % (unit, value), option=option,
            fix="Use B, KiB, MiB, GiB, TiB (or K, M, G, T; KB, MB, GB for powers of 1000)")
    size = int(number * factor)
    if minimum is not None and size < minimum:
        raise VirtforgeError("%r is below the minimum of %d bytes" % (value, minimum), option=option)
    return size


def xml_size_to_bytes(text, unit):
    """Read a libvirt ``<memory unit='KiB'>N</memory>``-style value into bytes."""
    factor = LIBVIRT_UNITS.get((unit or "KiB").lower())
    if factor is None:
        raise ValueError("unknown libvirt unit %r" % unit)
    return int(text) * factor


def check_positive_int(value, option, maximum=None):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise VirtforgeError("%r is not a whole number" % (value,), option=option)
    if value < 1:
        raise VirtforgeError("must be at least 1, got %d" % value, option=option)
    if maximum is not None and value > maximum:
        raise VirtforgeError("must be at most %d, got %d" % (maximum, value), option=option)
    return value


def confine_path(path, root, option):
    """Resolve ``path`` (relative to ``root`` if relative) and refuse it if it leaves ``root``."""
    root_real = os.path.realpath(root)
    full = path if os.path.isabs(path) else os.path.join(root_real, path)
    real = os.path.realpath(full)
    if real != root_real and not real.startswith(root_real.rstrip(os.sep) + os.sep):
        raise VirtforgeError(
            "%r resolves to %r, outside %r" % (path, real, root_real), option=option,
            fix="Give a name inside the pool or directory it belongs to")
    return real

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every conversion shares: the libguestfs/virt-v2v environment, image facts, records."""

from __future__ import annotations

import contextlib
import json
import os
import signal

from .._errors import VirtforgeError
from .._image.common import atomic_write_text, local_hardware_virtualization
from .._run import guestfs_environment
from .._volume import image_info


def conversion_environment():
    """LIBGUESTFS_BACKEND=direct, and force_tcg where the CPU has no usable hardware virtualization."""
    return guestfs_environment(local_hardware_virtualization())


def source_image(path, option, runner):
    """Facts of a source image (format, virtual size) and an identity that changes when it does."""
    if not os.path.isabs(path):
        raise VirtforgeError("%r is not an absolute path" % path, option=option)
    if not os.path.isfile(path):
        raise VirtforgeError("%s does not exist or is not a file" % path, option=option)
    info = image_info(path, runner)
    st = os.stat(path)
    info["identity"] = dict(path=os.path.realpath(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                            inode=st.st_ino)
    return info


def read_record(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_record(path, record):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n", mode=0o600)


def image_opts(driver, path, size=None, host_device=False):
    """A qemu --image-opts string; commas in the path doubled as QEMU requires."""
    parts = ["driver=%s" % driver]
    if size is not None:
        parts.append("size=%d" % size)
    if host_device:
        parts.append("file.driver=host_device")
    parts.append("file.filename=%s" % path.replace(",", ",,"))
    return ",".join(parts)


class Interrupted(BaseException):
    """A signal (SIGTERM from an async timeout, SIGHUP, Ctrl-C) arrived during a conversion."""


def _interrupted(signum, _frame):
    raise Interrupted("interrupted by signal %d" % signum)


@contextlib.contextmanager
def interruptible():
    """Turn SIGTERM/SIGHUP/SIGINT into an exception, so ``finally`` blocks remove temporary files."""
    old = {}
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        try:
            old[sig] = signal.signal(sig, _interrupted)
        except (ValueError, OSError):  # pragma: no cover - not the main thread
            pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)

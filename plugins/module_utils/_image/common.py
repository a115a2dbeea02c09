# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by image_build and image_customize."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
import time

from .._libvirt import cpu_virtualization_flags
from .._errors import VirtforgeError
from .._run import guestfs_environment

MASK = "********"
QCOW2_MAGIC = b"QFI\xfb"


def canonical_json(obj):
    """The one serialisation that hashes are taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_hash(obj):
    return sha256_text(canonical_json(obj))


def secret_digest(value, purpose):
    """A stand-in for a secret inside a canonical recipe: changes when the secret changes.

    The secret itself is never stored or returned; ``purpose`` salts the digest so the same
    password used in two places does not give the same value.
    """
    if value is None:
        return None
    return "sha256:" + sha256_text("virtforge:%s:%s" % (purpose, value))


def sha256_file(path, chunk=4 * 1024 * 1024):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def temp_name(path):
    """A temporary name in the same directory as ``path`` (so rename is atomic)."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, ".%s.tmp-%d-%s" % (base, os.getpid(), os.urandom(3).hex()))


def atomic_write_text(path, text, mode=0o644, keep_owner=False):
    """``text`` into ``path`` under a temporary name, renamed when complete. With ``keep_owner`` an existing
    file keeps its mode and owner (``mode`` is for a new file)."""
    tmp = temp_name(path)
    uid = gid = None
    if keep_owner and os.path.exists(path):
        stat = os.stat(path)
        mode, uid, gid = stat.st_mode & 0o7777, stat.st_uid, stat.st_gid
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid is not None and os.geteuid() == 0:
            os.chown(tmp, uid, gid)
        os.rename(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def atomic_symlink(target, link):
    tmp = temp_name(link)
    try:
        os.symlink(target, tmp)
        os.rename(tmp, link)
    except BaseException:
        remove_quietly(tmp)
        raise


def remove_quietly(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


@contextlib.contextmanager
def temp_dir(parent, prefix):
    """A working directory that is removed whatever happens (debootstrap trees are large)."""
    os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class PhaseLog(object):
    """Phase lines a user can ``tail -f``, and the timings returned by the module."""

    def __init__(self, path=None, clock=time.monotonic):
        self.path = path
        self.clock = clock
        self.timings = {}
        self._start = clock()
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)

    def line(self, text):
        if not self.path:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self.path, "a") as handle:
            handle.write("%s %s\n" % (stamp, text))

    @contextlib.contextmanager
    def phase(self, name, detail=None):
        self.line("phase %s: start%s" % (name, " (%s)" % detail if detail else ""))
        started = self.clock()
        try:
            yield
        except BaseException as exc:
            self.timings[name] = round(self.clock() - started, 1)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.line("phase %s: FAILED after %.1f s: %s" % (name, self.timings[name], reason))
            raise
        self.timings[name] = round(self.clock() - started, 1)
        self.line("phase %s: done in %.1f s" % (name, self.timings[name]))

    def total(self):
        return round(self.clock() - self._start, 1)


def qcow2_backing_file(path):
    """The backing file name stored in a qcow2 header, None if none or not qcow2.

    Reads 20 bytes of header and the name itself: cheap enough to scan a directory of clones.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
            if len(header) < 20 or header[:4] != QCOW2_MAGIC:
                return None
            offset, size = struct.unpack(">QI", header[8:20])
            if not offset or not size or size > 4096:
                return None
            handle.seek(offset)
            return handle.read(size).decode("utf-8", "replace")
    except OSError:
        return None


def resolve_backing(image_path, backing):
    """A backing file name is relative to the directory of the image that names it."""
    if backing is None:
        return None
    if not os.path.isabs(backing):
        backing = os.path.join(os.path.dirname(os.path.abspath(image_path)), backing)
    return os.path.realpath(backing)


def dependent_images(image, directories):
    """Images in ``directories`` whose qcow2 backing file is ``image`` (linked clones of it)."""
    target = os.path.realpath(image)
    found = []
    seen = set()
    for directory in directories:
        if not directory or not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            real = os.path.realpath(path)
            if real in seen or real == target or not os.path.isfile(real):
                continue
            seen.add(real)
            if resolve_backing(path, qcow2_backing_file(path)) == target:
                found.append(path)
    return found


def pool_directories(conn):
    """Target directories of the storage pools libvirt knows (where linked clones usually live)."""
    from lxml import etree  # pylint: disable=import-outside-toplevel
    found = []
    for pool in conn.listAllStoragePools(0):
        try:
            path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("./target/path")
        except Exception:  # pylint: disable=broad-except
            continue
        if path:
            found.append(path)
    return found


def local_hardware_virtualization(cpuinfo="/proc/cpuinfo", kvm="/dev/kvm"):
    """Can libguestfs's appliance use KVM here? Only with a vmx/svm flag and an openable /dev/kvm.

    (libguestfs runs on this machine whatever libvirt URI is used, so libvirt's capabilities
    are not the question: /dev/kvm may exist without usable VT-x/AMD-V.)
    """
    if not cpu_virtualization_flags(cpuinfo):
        return False
    return os.access(kvm, os.R_OK | os.W_OK)


def guestfs_env():
    return guestfs_environment(local_hardware_virtualization())


def require_tools(runner, tools):
    return dict((tool, runner.which(tool)) for tool in tools)


def mask_secrets(obj, keys):
    """A copy of ``obj`` with the values of ``keys`` replaced by a mask (for diff and results)."""
    if isinstance(obj, dict):
        return dict((k, (MASK if v is not None else None) if k in keys else mask_secrets(v, keys))
                    for k, v in obj.items())
    if isinstance(obj, list):
        return [mask_secrets(v, keys) for v in obj]
    return obj


def check_absolute_path(value, option):
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value or "\x00" in value:
        raise VirtforgeError("%r is not an absolute path" % (value,), option=option,
                             fix="Give an absolute path such as /etc/motd")
    parts = value.split("/")
    if ".." in parts:
        raise VirtforgeError("%r contains '..'" % value, option=option)
    return os.path.normpath(value)


def read_text(path):
    """A file's text, or None when it does not exist."""
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None

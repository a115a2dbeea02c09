# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices as conversion targets and sources: what uses them, their size, their content."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

from .._errors import VirtforgeError

SECTOR = 512


def _sys_name(path):
    st = os.stat(path)
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    link = "/sys/dev/block/%d:%d" % (major, minor)
    return os.path.basename(os.path.realpath(link)), (major, minor)


def check_block_device(path, option):
    """The path is an existing block device; returns its real path."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        raise VirtforgeError("%s does not exist" % path, option=option) from None
    if not stat.S_ISBLK(st.st_mode):
        raise VirtforgeError("%s is not a block device" % path, option=option,
                             fix="Give a disk device such as /dev/sdb (or a loop device for tests)")
    return real


def device_size(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def partitions(path, sysfs="/sys"):
    """Kernel names of the device's partitions (sda1, loop0p1...)."""
    name = _sys_name(path)[0]
    base = os.path.join(sysfs, "class/block", name)
    try:
        return sorted(e for e in os.listdir(base) if e.startswith(name) and
                      os.path.exists(os.path.join(base, e, "partition")))
    except OSError:
        return []


def _mounted_devnums(mountinfo="/proc/self/mountinfo"):
    out = {}
    with open(mountinfo) as handle:
        for line in handle:
            fields = line.split()
            major, minor = fields[2].split(":")
            out[(int(major), int(minor))] = fields[4]
    return out


def users(path, conn=None, mountinfo="/proc/self/mountinfo", swaps="/proc/swaps", sysfs="/sys"):
    """Why the device (or one of its partitions) cannot be written: a list of reasons, empty if free."""
    reasons = []
    name = _sys_name(path)[0]
    names = [name] + partitions(path, sysfs)
    mounted = _mounted_devnums(mountinfo)
    for part in names:
        try:
            with open(os.path.join(sysfs, "class/block", part, "dev")) as handle:
                major, minor = handle.read().strip().split(":")
        except OSError:
            continue
        where = mounted.get((int(major), int(minor)))
        if where:
            reasons.append("/dev/%s is mounted on %s" % (part, where))
        holders = os.path.join(sysfs, "class/block", part, "holders")
        if os.path.isdir(holders) and os.listdir(holders):
            reasons.append("/dev/%s is held by %s (device-mapper, RAID or LVM)"
                           % (part, ", ".join(sorted(os.listdir(holders)))))
    try:
        with open(swaps) as handle:
            for line in handle.readlines()[1:]:
                dev = line.split()[0]
                if os.path.basename(os.path.realpath(dev)) in names:
                    reasons.append("%s is used as swap" % dev)
    except OSError:
        pass
    if conn is not None:
        for dom in conn.listAllDomains(0):
            xml = dom.XMLDesc(0)
            for part in names:
                if ("'/dev/%s'" % part) in xml or ('"/dev/%s"' % part) in xml:
                    reasons.append("/dev/%s is a disk of the libvirt domain %s" % (part, dom.name()))
    if not reasons:
        # The kernel's own answer: an exclusive open fails while anything holds or mounts it.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_EXCL)
            os.close(fd)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                reasons.append("%s is busy (opened exclusively by another program)" % path)
            else:
                raise
    return reasons


def logical_sector_size(path):
    """The block device's logical sector size from sysfs, or None where sysfs does not say."""
    name = os.path.basename(os.path.realpath(path))
    try:
        with open("/sys/class/block/%s/queue/logical_block_size" % name) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def partition_table(path):
    """'gpt', 'mbr' or None from the first two sectors."""
    with open(path, "rb") as handle:
        head = handle.read(2 * SECTOR)
    if len(head) >= 520 and head[512:520] == b"EFI PART":
        return "gpt"
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        return "mbr"
    return None


def sha256_range(path, length, chunk=4 * 1024 * 1024):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        left = length
        while left > 0:
            data = handle.read(min(chunk, left))
            if not data:
                break
            digest.update(data)
            left -= len(data)
    return digest.hexdigest()


MBR_TABLE = 446        # where the four primary entries start in the first sector
MBR_ENTRY = 16


def mbr_entry_offset(number):
    """Byte offset of primary partition ``number``'s (1-4) entry on the disk."""
    return MBR_TABLE + MBR_ENTRY * (number - 1)


def mbr_entry(ptype, start, sectors):
    """A 16-byte MBR partition entry addressed by LBA (CHS fields set to the 'beyond CHS' value)."""
    return (b"\x00\xfe\xff\xff" + bytes([ptype]) + b"\xfe\xff\xff"
            + int(start).to_bytes(4, "little") + int(sectors).to_bytes(4, "little"))


def mbr_partitions(head):
    """Primary MBR partitions from the first sector: list of dict(number, type, start, sectors)."""
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return []
    out = []
    for i in range(4):
        entry = head[mbr_entry_offset(i + 1): mbr_entry_offset(i + 2)]
        ptype = entry[4]
        start = int.from_bytes(entry[8:12], "little")
        sectors = int.from_bytes(entry[12:16], "little")
        if ptype and sectors:
            out.append(dict(number=i + 1, type=ptype, start=start, sectors=sectors))
    return out

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GUID partition tables (UEFI specification, chapter 5), read and rewritten in memory.

What V2P needs on a GPT disk written to a larger device: the backup table moved to the device's
end, the last partition grown, an EFI system partition added in a free entry. ``parse`` reads the
protective MBR, the primary header and its entries from the first sectors and checks both CRC32s;
``layout`` applies the changes and returns the bytes to write: the first sectors (protective MBR
with its size field updated, boot code kept; primary header; entries) and the backup (entries,
then the header in the device's last sector).
"""

from __future__ import annotations

import struct
import uuid
import zlib

SECTOR = 512
SIGNATURE = b"EFI PART"
HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")   # the 92 bytes the header CRC covers
ESP_TYPE = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
# enough for the usual table (128 entries of 128 bytes from sector 2): protective MBR, header, 32 sectors
HEAD_SECTORS = 34


class GPTError(ValueError):
    pass


def _crc(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def entry_sectors(count, size):
    return -(-count * size // SECTOR)


def head_sectors(head):
    """How many of the disk's first sectors hold the protective MBR, the primary header and its entries."""
    if len(head) < 2 * SECTOR or head[SECTOR:SECTOR + 8] != SIGNATURE:
        raise GPTError("no GPT header in sector 1")
    fields = HEADER.unpack_from(head, SECTOR)
    entries_lba, count, size = fields[10], fields[11], fields[12]
    if not 2 <= entries_lba < 2048 or not 0 < count <= 4096 or not 128 <= size <= 4096:
        raise GPTError("unexpected GPT header (entries at sector %d, %d entries of %d bytes)"
                       % (entries_lba, count, size))
    return entries_lba + entry_sectors(count, size)


def parse(head):
    """The table from the disk's first sectors: dict(header fields, entries, head) or GPTError.

    ``entries`` keeps every slot (used or not) as dict(number, type, guid, first, last, attrs, name,
    raw); ``head`` the bytes given (sector 0 is kept as it is when the table is rewritten).
    """
    if len(head) < 2 * SECTOR or head[SECTOR:SECTOR + 8] != SIGNATURE:
        raise GPTError("no GPT header in sector 1")
    fields = HEADER.unpack_from(head, SECTOR)
    (_sig, revision, header_size, header_crc, _reserved, current, backup, first_usable, last_usable,
     disk_guid, entries_lba, count, size, entries_crc) = fields
    if header_size < HEADER.size or header_size > SECTOR:
        raise GPTError("GPT header size %d is not valid" % header_size)
    raw_header = bytearray(head[SECTOR:SECTOR + header_size])
    raw_header[16:20] = b"\0\0\0\0"
    if _crc(bytes(raw_header)) != header_crc:
        raise GPTError("the GPT header's CRC32 does not match (a damaged table)")
    if current != 1 or size < 128 or size % 8 or not 0 < count <= 4096:
        raise GPTError("unexpected GPT header (current LBA %d, %d entries of %d bytes)" % (current, count, size))
    start, length = entries_lba * SECTOR, count * size
    if len(head) < start + length:
        raise GPTError("the GPT entries end at byte %d, beyond the %d bytes read" % (start + length, len(head)))
    array = head[start:start + length]
    if _crc(array) != entries_crc:
        raise GPTError("the GPT entries' CRC32 does not match (a damaged table)")
    entries = []
    for i in range(count):
        raw = array[i * size:(i + 1) * size]
        entries.append(dict(number=i + 1, type=uuid.UUID(bytes_le=raw[0:16]), guid=uuid.UUID(bytes_le=raw[16:32]),
                            first=struct.unpack_from("<Q", raw, 32)[0], last=struct.unpack_from("<Q", raw, 40)[0],
                            attrs=struct.unpack_from("<Q", raw, 48)[0], raw=bytes(raw)))
    return dict(revision=revision, header_size=header_size, backup=backup, first_usable=first_usable,
                last_usable=last_usable, disk_guid=disk_guid, entries_lba=entries_lba, count=count, size=size,
                entries=entries, head=bytes(head[:(entries_lba + entry_sectors(count, size)) * SECTOR]))


def partitions(table):
    """The used entries as dict(number, start, sectors, esp)."""
    return [dict(number=e["number"], start=e["first"], sectors=e["last"] - e["first"] + 1, esp=e["type"] == ESP_TYPE)
            for e in table["entries"] if e["type"].int]


def usable_end(table, disk_sectors):
    """The first sector after the last one a partition may use on a disk of ``disk_sectors``."""
    return disk_sectors - 1 - entry_sectors(table["count"], table["size"])


def _entry(raw, size, first=None, last=None, type_=None, guid=None):
    out = bytearray(raw) if raw else bytearray(size)
    if type_ is not None:
        out[0:16] = type_.bytes_le
        out[16:32] = guid.bytes_le
        out[48:56] = b"\0" * 8
        out[56:128] = "EFI system partition".encode("utf-16-le").ljust(72, b"\0")
    if first is not None:
        struct.pack_into("<Q", out, 32, first)
    if last is not None:
        struct.pack_into("<Q", out, 40, last)
    return bytes(out)


def _header(table, current, backup, entries_lba, entries_crc, last_usable):
    fields = [SIGNATURE, table["revision"], HEADER.size, 0, 0, current, backup, table["first_usable"],
              last_usable, table["disk_guid"], entries_lba, table["count"], table["size"], entries_crc]
    crc = _crc(HEADER.pack(*fields))
    fields[3] = crc
    return HEADER.pack(*fields).ljust(SECTOR, b"\0")


def layout(table, disk_sectors, grow=None, esp=None):
    """The rewritten table for a disk of ``disk_sectors``: dict(head, backup, backup_offset).

    ``grow``: dict(number, last): that partition's new last sector. ``esp``: dict(number, start,
    sectors, guid): a new EFI system partition in that (free) entry. ``head`` replaces the first
    ``len(head)`` bytes (sector 0 with its boot code, only the protective entry's size field
    updated); ``backup`` is written at ``backup_offset``, ending in the disk's last sector.
    """
    size, count = table["size"], table["count"]
    end = usable_end(table, disk_sectors)
    array = []
    for e in table["entries"]:
        raw = e["raw"]
        if grow and e["number"] == grow["number"]:
            if not e["type"].int or grow["last"] < e["last"] or grow["last"] >= end:
                raise GPTError("partition %d cannot end at sector %d" % (e["number"], grow["last"]))
            raw = _entry(raw, size, last=grow["last"])
        if esp and e["number"] == esp["number"]:
            if e["type"].int:
                raise GPTError("entry %d is in use" % e["number"])
            raw = _entry(None, size, first=esp["start"], last=esp["start"] + esp["sectors"] - 1,
                         type_=ESP_TYPE, guid=esp["guid"])
        array.append(raw)
    entries = b"".join(array)
    entries_crc = _crc(entries)
    last_lba = disk_sectors - 1
    nsec = entry_sectors(count, size)
    padded = entries.ljust(nsec * SECTOR, b"\0")
    mbr = bytearray(table["head"][:SECTOR])
    for slot in range(4):
        at = 446 + 16 * slot
        if mbr[at + 4] == 0xEE:
            struct.pack_into("<I", mbr, at + 12, min(last_lba, 0xFFFFFFFF))
    head = bytearray(table["head"])
    head[:SECTOR] = mbr
    head[SECTOR:2 * SECTOR] = _header(table, 1, last_lba, table["entries_lba"], entries_crc, end - 1)
    at = table["entries_lba"] * SECTOR
    head[at:at + nsec * SECTOR] = padded
    backup = padded + _header(table, last_lba, 1, last_lba - nsec, entries_crc, end - 1)
    return dict(head=bytes(head), backup=backup, backup_offset=(last_lba - nsec) * SECTOR)


def read_back(head, tail, disk_sectors):
    """Both tables of a disk from its first sectors (``head``) and last ones (``tail``): the primary's
    parse, after checking that the backup header sits in the last sector, points at the primary, and
    carries the same entries."""
    primary = parse(head)
    if primary["backup"] != disk_sectors - 1:
        raise GPTError("the primary header puts the backup at sector %d, not in the disk's last (%d)"
                       % (primary["backup"], disk_sectors - 1))
    nsec = entry_sectors(primary["count"], primary["size"])
    if len(tail) != (nsec + 1) * SECTOR:
        raise GPTError("%d bytes of the disk's end given, %d expected" % (len(tail), (nsec + 1) * SECTOR))
    # the backup read as a primary: its header with current and backup swapped, entries right after it
    fields = list(HEADER.unpack_from(tail, nsec * SECTOR))
    if fields[0] != SIGNATURE or fields[5] != disk_sectors - 1 or fields[6] != 1:
        raise GPTError("no valid backup GPT header in the disk's last sector")
    raw = bytearray(tail[nsec * SECTOR:nsec * SECTOR + fields[2]])
    raw[16:20] = b"\0\0\0\0"
    if _crc(bytes(raw)) != fields[3]:
        raise GPTError("the backup GPT header's CRC32 does not match")
    want = disk_sectors - 1 - nsec
    if fields[10] != want:
        raise GPTError("the backup GPT header puts its entries at sector %d, not %d" % (fields[10], want))
    entries = tail[:primary["count"] * primary["size"]]
    if entries != b"".join(e["raw"] for e in primary["entries"]):
        raise GPTError("the backup GPT entries differ from the primary ones")
    if _crc(entries) != fields[13]:
        raise GPTError("the backup GPT entries' CRC32 does not match")
    return primary

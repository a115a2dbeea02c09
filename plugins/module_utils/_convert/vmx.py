# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VMware .vmx files: which hard disks virt-v2v reads from one, and the NICs' MAC addresses.

virt-v2v ``-i vmx`` picks a VM's hard disks by controller and ``deviceType``. A disk entry outside
its rules is left out of the conversion without a word, a .vmx naming no disk it reads fails with a
libguestfs error ("you must call guestfs_add_drive before guestfs_launch"), and for a disk file that
does not exist virt-v2v waits about 30 s before "qemu-nbd did not start up" (virt-v2v 2.2.0). The v2v
engine reads the file with the same rules first, so each of these is refused, naming the entry, before
virt-v2v starts. It also reads the NICs' MAC addresses: virt-v2v carries over only generated ones, so
the engine keeps a static one itself.
"""

from __future__ import annotations

import os
import re

from .._errors import VirtforgeError

# deviceType values virt-v2v takes as a hard disk, per controller (None: no deviceType line).
# Measured with virt-v2v 2.2.0, one .vmx per controller and value (docs/conversions.md).
HARD_DISK_TYPES = {
    "ide": ("ata-harddisk",),
    "sata": (None,),
    "nvme": (None,),
    "scsi": (None, "disk", "plaindisk", "rawdisk", "scsi-harddisk"),
}
# the type to write so that virt-v2v reads such an entry (the fix named in errors)
_FIX_TYPE = {"ide": 'deviceType = "ata-hardDisk"', "sata": "no deviceType line",
             "nvme": "no deviceType line", "scsi": 'deviceType = "scsi-hardDisk"'}

_SLOT = re.compile(r"^(ide|sata|scsi|nvme)(\d+):(\d+)$")
_LINE = re.compile(r'^([A-Za-z0-9_.:\-]+)\s*=\s*(?:"(.*)"|([^"\s]\S*))\s*$')
_ETHERNET = re.compile(r"^ethernet(\d+)\.")
_CONTROLLER_ORDER = ("scsi", "sata", "ide", "nvme")


def parse(text, path="the .vmx", option="src"):
    """The key = "value" lines of a .vmx -> {lower-case key: value} (a value without quotes is taken
    too). Comments and blank lines are skipped; any other line is refused with its number."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise VirtforgeError('%s line %d is not key = "value": %r' % (path, number, line[:120]),
                                 option=option, fix="Give the VM's .vmx file as exported by VMware")
        values[match.group(1).lower()] = match.group(2) if match.group(2) is not None else match.group(3)
    return values


def _present(values, slot):
    """VMware (and virt-v2v) skip a device marked present = "FALSE"."""
    return values.get(slot + ".present", "").lower() != "false"


def _slot_order(entry):
    match = _SLOT.match(entry["slot"])
    return _CONTROLLER_ORDER.index(match.group(1)), int(match.group(2)), int(match.group(3))


def disk_entries(values, vmx_dir):
    """(read, left_out): the hard disks virt-v2v reads and the entries that name a .vmdk file but that
    it would leave out, each sorted by controller and slot. Each is dict(slot, controller, device_type,
    path)."""
    read, left_out = [], []
    for key in values:
        if not key.endswith(".filename"):
            continue
        slot = key[:-len(".filename")]
        match = _SLOT.match(slot)
        if not match:
            continue
        if not _present(values, slot):
            continue
        controller = match.group(1)
        device_type = values.get(slot + ".devicetype")
        device_type = device_type.lower() if device_type is not None else None
        filename = values[key]
        entry = dict(slot=slot, controller=controller, device_type=device_type,
                     path=os.path.normpath(os.path.join(vmx_dir, filename)))
        if device_type in HARD_DISK_TYPES[controller]:
            read.append(entry)
        elif filename.lower().endswith(".vmdk"):
            left_out.append(entry)
    return sorted(read, key=_slot_order), sorted(left_out, key=_slot_order)


def read(path, option="src"):
    """The parsed .vmx at path."""
    with open(path, "rb") as handle:
        return parse(handle.read().decode("utf-8", "replace"), path, option)


def nics(values):
    """The VM's NICs (ethernetN entries not marked present = "FALSE"), in port order, each
    dict(slot, mac, static). A static address (addressType "static", the key "address") is one
    virt-v2v 2.2.0 does not read: it takes only generatedAddress."""
    ports = set()
    for key in values:
        match = _ETHERNET.match(key)
        if match:
            ports.add(int(match.group(1)))
    out = []
    for port in sorted(ports):
        slot = "ethernet%d" % port
        if not _present(values, slot):
            continue
        static = values.get(slot + ".addresstype", "").lower() == "static"
        mac = values.get(slot + (".address" if static else ".generatedaddress"))
        out.append(dict(slot=slot, mac=mac.lower() if mac else None, static=static))
    return out


def hard_disks(path, values, option="src"):
    """The hard disk files virt-v2v reads from the .vmx at path (parsed: values); refuses a .vmx that
    would lose a disk, that names none, or whose disk files are missing."""
    found, left_out = disk_entries(values, os.path.dirname(os.path.abspath(path)))
    if left_out:
        entry = left_out[0]
        raise VirtforgeError(
            "%s: %s (%s, deviceType %s) names a disk that virt-v2v would leave out of the conversion"
            % (path, entry["slot"], os.path.basename(entry["path"]), entry["device_type"] or "not set"),
            option=option,
            fix="In a copy of the .vmx give %s %s, or convert that disk on its own (input: disk)"
                % (entry["slot"], _FIX_TYPE[entry["controller"]]))
    if not found:
        raise VirtforgeError("%s names no hard disk (an ideX:Y, sataX:Y, scsiX:Y or nvmeX:Y fileName)" % path,
                             option=option)
    for entry in found:
        if not os.path.isfile(entry["path"]):
            raise VirtforgeError("%s: the disk of %s, %s, does not exist" % (path, entry["slot"], entry["path"]),
                                 option=option, fix="Copy the VM's disk files beside its .vmx")
    return found

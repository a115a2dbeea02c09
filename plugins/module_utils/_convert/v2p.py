# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""V2P: write a guest image onto a block device so it boots on other hardware.

plan (source facts, device checks, record) -> [check mode stops] -> temporary qcow2 overlay of the
source -> generalize in one libguestfs run (with ``firmware: efi`` also: an EFI system partition added
to the partition table, MBR or GPT, and GRUB for UEFI installed on the removable-media path; an image
with an ESP of its own keeps it, with that path made sure of; on GPT the table, with its backup moved to
the device's end, is written by guestfish before the run) -> ``qemu-img convert -n -O raw`` onto the device ->
``qemu-img compare`` of the written range against the overlay -> record (sha256 of the range).
The source image is only ever read (it is the overlay's backing file, opened read-only).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid

from .._errors import VirtforgeError
from . import blockdev, generalize, gpt
from .._image.common import PhaseLog
from .common import (
    Interrupted, conversion_environment, image_opts, interruptible, read_record, source_image, write_record,
)

ARGUMENT_SPEC = dict(
    src=dict(type="path", required=True),
    src_format=dict(type="str", choices=["qcow2", "raw", "vmdk", "vdi", "vhdx", "vpc"]),
    device=dict(type="path", required=True),
    force=dict(type="bool", default=False),
    generalize=dict(type="bool", default=True),
    serial_console=dict(type="bool", default=True),
    extra_modules=dict(type="list", elements="str", default=[]),
    grow_last_partition=dict(type="bool", default=False),
    firmware=dict(type="str", choices=["bios", "efi"], default="bios"),
    esp_size_mib=dict(type="int", default=260),
    work_dir=dict(type="path", default="/var/tmp"),
    record_dir=dict(type="path", default="/var/lib/virtforge/v2p"),
    log_path=dict(type="path"),
)

RECORD_VERSION = 1
ALIGN = 2048                 # partitions start on 1 MiB boundaries (in 512-byte sectors)
ESP_MIN_MIB = 64             # FAT32 needs 65525 clusters: with 512-byte clusters, about 33 MiB
EXTENDED = (0x05, 0x0F, 0x85)
GPT_PROTECTIVE = 0xEE
ESP_TYPE = 0xEF


def options_digest(params):
    keys = ("generalize", "serial_console", "extra_modules", "grow_last_partition", "firmware")
    if params["firmware"] == "efi":
        keys += ("esp_size_mib",)
    return hashlib.sha256(json.dumps({k: params[k] for k in keys}, sort_keys=True).encode()).hexdigest()


class V2P(object):
    def __init__(self, module, runner, connect=None):
        self.module = module
        self.runner = runner
        self.params = module.params
        self.connect = connect
        self.log = PhaseLog(self.params.get("log_path"))
        self.warnings = []

    # ------------------------------------------------------------------ plan
    def plan(self):
        p = self.params
        for i, name in enumerate(p["extra_modules"]):
            if not name or not all(c.isalnum() or c in "_-" for c in name):
                raise VirtforgeError("%r is not a kernel module name" % name, option="extra_modules[%d]" % i)
        src = source_image(p["src"], "src", self.runner)
        fmt = p.get("src_format") or src["format"]
        if src.get("backing") is None and fmt not in ("qcow2", "raw", "vmdk", "vdi", "vhdx", "vpc"):
            raise VirtforgeError("unsupported image format %r" % fmt, option="src_format")
        device = blockdev.check_block_device(p["device"], "device")
        if os.path.realpath(p["src"]) == device:
            raise VirtforgeError("the source and the device are the same", option="device")
        size = blockdev.device_size(device)
        need = int(src["capacity"])
        if size < need:
            raise VirtforgeError("%s holds %d bytes, the image needs %d" % (p["device"], size, need),
                                 option="device", fix="Use a device at least as large as the image's virtual size")
        conn = self.connect() if self.connect else None
        busy = blockdev.users(device, conn=conn)
        if busy:
            raise VirtforgeError("%s is in use: %s" % (p["device"], "; ".join(busy)), option="device",
                                 fix="Unmount it, stop what holds it, or pick another device")
        layout = self._layout_plan(fmt, size, need)
        plan = dict(src=src, format=fmt, device=device, device_size=size, length=layout.get("length", need),
                    options=options_digest(p), record_path=self.record_path(device),
                    grow=layout.get("grow"), esp=layout.get("esp"), gpt=layout.get("gpt"))
        record = read_record(plan["record_path"])
        plan["up_to_date"] = bool(record and self._record_matches(record, plan))
        plan["table"] = blockdev.partition_table(device)
        if not plan["up_to_date"] and plan["table"] and not p["force"]:
            raise VirtforgeError("%s already has a partition table (%s)" % (p["device"], plan["table"].upper()),
                                 option="force", fix="Set force: true to overwrite the device")
        return plan

    def record_path(self, device):
        return os.path.join(self.params["record_dir"], os.path.basename(device) + ".json")

    def _record_matches(self, record, plan):
        if record.get("version") != RECORD_VERSION or record.get("source") != plan["src"]["identity"]:
            return False
        if record.get("options") != plan["options"] or record.get("device_size") != plan["device_size"]:
            return False
        if record.get("length") != plan["length"]:
            return False
        with self.log.phase("record check", "sha256 of %d bytes of %s" % (plan["length"], plan["device"])):
            return blockdev.sha256_range(plan["device"], plan["length"]) == record.get("sha256")

    def _sectors(self, path, fmt, count, skip=0):
        """``count`` sectors of an image from sector ``skip`` (qemu-img dd: any format)."""
        work = tempfile.mkdtemp(prefix=".vf-v2p-", dir=self.params["work_dir"])
        try:
            out = os.path.join(work, "sectors")
            self.runner.run(["qemu-img", "dd", "-f", fmt, "-O", "raw", "bs=512", "count=%d" % (skip + count),
                             "skip=%d" % skip, "if=%s" % path, "of=%s" % out], what="qemu-img dd")
            with open(out, "rb") as handle:
                return handle.read(count * blockdev.SECTOR)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _source_table(self, fmt, option):
        """The image's partitions: ('mbr' or 'gpt', [dict(number, start, sectors, esp, type)], GPT or None)."""
        head = self._sectors(self.params["src"], fmt, gpt.HEAD_SECTORS)
        mbr = blockdev.mbr_partitions(head[:blockdev.SECTOR])
        if not any(x["type"] == GPT_PROTECTIVE for x in mbr):
            return "mbr", [dict(x, esp=x["type"] == ESP_TYPE) for x in mbr], None
        try:
            need = gpt.head_sectors(head)
            if need > gpt.HEAD_SECTORS:
                head = self._sectors(self.params["src"], fmt, need)
            table = gpt.parse(head)
        except gpt.GPTError as exc:
            raise VirtforgeError("the image's GPT cannot be used: %s" % exc, option=option) from None
        return "gpt", [dict(x, type=None) for x in gpt.partitions(table)], table

    def _check_table(self, overlay, plan):
        """The overlay's partition table must hold the grown entry and the new ESP before anything is copied."""
        grow, esp = plan.get("grow"), plan.get("esp")
        if plan.get("gpt"):
            return self._check_gpt(overlay, plan)
        parts = {x["number"]: x for x in blockdev.mbr_partitions(self._sectors(overlay, "qcow2", 1))}
        if grow:
            got = parts.get(grow["number"], {}).get("sectors")
            if got != grow["sectors"]:
                raise VirtforgeError("partition %d was not grown: its table entry has %s sectors, %d expected; "
                                     "nothing was written to the device" % (grow["number"], got, grow["sectors"]),
                                     option="grow_last_partition")
        if esp and not esp.get("existing"):
            got = parts.get(esp["number"], {})
            if (got.get("type"), got.get("start"), got.get("sectors")) != (ESP_TYPE, esp["start"], esp["sectors"]):
                raise VirtforgeError("the EFI system partition %d is not in the partition table as planned (%s); "
                                     "nothing was written to the device" % (esp["number"], got or "no entry"),
                                     option="firmware")

    def _check_gpt(self, overlay, plan):
        """Both GPTs of the overlay: the backup in its last sector, the entries as planned."""
        disk = plan["length"] // blockdev.SECTOR
        nsec = len(plan["gpt"]["backup"]) // blockdev.SECTOR
        try:
            table = gpt.read_back(self._sectors(overlay, "qcow2", len(plan["gpt"]["head"]) // blockdev.SECTOR),
                                  self._sectors(overlay, "qcow2", nsec, skip=disk - nsec), disk)
        except gpt.GPTError as exc:
            raise VirtforgeError("the overlay's GPT is not as planned (%s); nothing was written to the device" % exc,
                                 option="grow_last_partition" if plan.get("grow") else
                                 "firmware" if plan.get("esp") else "src") from None
        parts = {x["number"]: x for x in gpt.partitions(table)}
        grow, esp = plan.get("grow"), plan.get("esp")
        if grow and parts.get(grow["number"], {}).get("sectors") != grow["sectors"]:
            raise VirtforgeError("partition %d was not grown in the GPT; nothing was written to the device"
                                 % grow["number"], option="grow_last_partition")
        if esp and not esp.get("existing"):
            got = parts.get(esp["number"], {})
            if (got.get("esp"), got.get("start"), got.get("sectors")) != (True, esp["start"], esp["sectors"]):
                raise VirtforgeError("the EFI system partition %d is not in the GPT as planned (%s); nothing was "
                                     "written to the device" % (esp["number"], got or "no entry"), option="firmware")

    def _gpt_relocation(self, fmt, size, need):
        """A GPT image copied as it is onto a larger device: its backup table moved to the device's end.

        Nothing else changes. Where that cannot be done (an MBR, a GPT this module cannot read, a device
        with other than 512-byte sectors) the image is copied as it is, as before.
        """
        if size <= need or blockdev.logical_sector_size(self.params["device"]) not in (None, blockdev.SECTOR):
            return {}
        try:
            _kind, _parts, table = self._source_table(fmt, "src")
        except VirtforgeError:
            return {}
        if table is None:
            return {}
        return dict(length=size, gpt=gpt.layout(table, size // blockdev.SECTOR))

    def _layout_plan(self, fmt, size, need):
        """Partition changes: the last partition grown, an EFI system partition added (MBR or GPT).

        With ``firmware: efi`` an image without an ESP gets one as a new partition: at the device's
        end when the last partition grows (which then ends where the ESP starts), otherwise right
        after the image's partitions. An image with an ESP keeps it (``esp.existing``): the guest
        script makes sure firmware without a boot entry finds its loader. On GPT the whole device is
        written (its backup table belongs in the device's last sectors): ``gpt`` holds the new
        tables' bytes. Returns dict(grow, esp, length, gpt) with what applies (length: the bytes of
        the device written).
        """
        p = self.params
        efi = p["firmware"] == "efi"
        if not (p["grow_last_partition"] or efi):
            return self._gpt_relocation(fmt, size, need)
        option = "firmware" if efi else "grow_last_partition"
        sector = blockdev.logical_sector_size(p["device"])
        if sector not in (None, blockdev.SECTOR):
            raise VirtforgeError("%s has %d-byte logical sectors: the partition tables this module writes are laid "
                                 "out for 512-byte sectors" % (p["device"], sector), option=option,
                                 fix="Write the image without grow_last_partition and firmware: efi")
        kind, parts, table = self._source_table(fmt, option)
        if not parts:
            raise VirtforgeError("%s needs a partition table (MBR or GPT) in the image"
                                 % ("firmware: efi" if efi else "grow_last_partition"), option=option)
        disk = size // blockdev.SECTOR
        # the first sector partitions may not use: the device's end (MBR) or its backup GPT's start
        limit = gpt.usable_end(table, disk) if table else disk
        out = dict(length=size) if (p["grow_last_partition"] or table) else {}
        # the image's last used sector: its partitions' end, or (MBR) its size
        used = max(x["start"] + x["sectors"] for x in parts)
        if not table:
            used = max(used, -(-need // blockdev.SECTOR))
        esp_start = None
        have = [x["number"] for x in parts if x["esp"]]
        if efi and have:
            out["esp"] = dict(number=have[0], existing=True)
        elif efi:
            if p["esp_size_mib"] < ESP_MIN_MIB:
                raise VirtforgeError("%d MiB is too small for a FAT32 EFI system partition (at least %d MiB)"
                                     % (p["esp_size_mib"], ESP_MIN_MIB), option="esp_size_mib")
            taken = [x["number"] for x in parts]
            free = [e["number"] for e in table["entries"] if not e["type"].int] if table else [
                n for n in range(1, 5) if n not in taken]
            if not free:
                raise VirtforgeError("the image's %s has no free entry for an EFI system partition" % (
                    "GPT" if table else "MBR (four primary partitions)"), option="firmware")
            sectors = p["esp_size_mib"] * ALIGN
            if p["grow_last_partition"]:
                esp_start = (limit - sectors) // ALIGN * ALIGN
            else:
                esp_start = -(-used // ALIGN) * ALIGN
                if not table:
                    out["length"] = (esp_start + sectors) * blockdev.SECTOR
            if esp_start < used or esp_start + sectors > limit:
                raise VirtforgeError("%s holds %d bytes: too small for the image (%d bytes) and a %d MiB EFI system "
                                     "partition" % (p["device"], size, need, p["esp_size_mib"]), option="device",
                                     fix="Use a larger device, or a smaller esp_size_mib")
            if not table and esp_start + sectors > 0xFFFFFFFF:
                raise VirtforgeError("the device is too large for an MBR partition table", option="firmware")
            out["esp"] = dict(number=free[0], start=esp_start, sectors=sectors, table=kind)
            if not table:
                out["esp"]["entry_offset"] = blockdev.mbr_entry_offset(free[0])
        if p["grow_last_partition"]:
            last = max(parts, key=lambda x: x["start"])
            if last["esp"]:
                raise VirtforgeError("the image's last partition is its EFI system partition (partition %d): "
                                     "growing it would not grow a filesystem that holds data" % last["number"],
                                     option="grow_last_partition", fix="Write it without grow_last_partition")
            if last["type"] in EXTENDED:
                raise VirtforgeError("the last partition is an extended partition", option="grow_last_partition")
            sectors = (esp_start if esp_start is not None else limit) - last["start"]
            if not table and sectors > 0xFFFFFFFF:
                raise VirtforgeError("the device is too large for an MBR partition", option="grow_last_partition")
            out["grow"] = dict(number=last["number"], start=last["start"], sectors=sectors,
                               old_sectors=last["sectors"], table=kind)
            if not table:
                out["grow"]["entry_offset"] = blockdev.mbr_entry_offset(last["number"]) + 12
        if table:
            grow, esp = out.get("grow"), out.get("esp")
            try:
                out["gpt"] = gpt.layout(
                    table, disk,
                    grow=dict(number=grow["number"], last=grow["start"] + grow["sectors"] - 1) if grow else None,
                    esp=dict(esp, guid=uuid.uuid4()) if esp and not esp.get("existing") else None)
            except gpt.GPTError as exc:
                raise VirtforgeError("the image's GPT cannot take the change: %s" % exc, option=option) from None
        return out

    # ----------------------------------------------------------------- apply
    def apply(self, plan):
        p = self.params
        env = conversion_environment()
        os.makedirs(p["work_dir"], exist_ok=True)
        work = tempfile.mkdtemp(prefix=".vf-v2p-", dir=p["work_dir"])
        changes, warnings = [], []
        try:
            overlay = os.path.join(work, "overlay.qcow2")
            with self.log.phase("overlay", "temporary qcow2 overlay on %s" % p["src"]):
                self.runner.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.realpath(p["src"]),
                                 "-F", plan["format"], overlay], what="qemu-img create")
                overlay_size = int(plan["src"]["capacity"])
                if plan["length"] > overlay_size:
                    overlay_size = plan["length"]
                    self.runner.run(["qemu-img", "resize", "-q", overlay, str(overlay_size)], what="qemu-img resize")
            layout = plan.get("grow") or plan.get("esp") or plan.get("gpt")
            uploads = []
            if plan.get("gpt"):
                for name, data, offset in (("gpt-head", plan["gpt"]["head"], 0),
                                           ("gpt-backup", plan["gpt"]["backup"], plan["gpt"]["backup_offset"])):
                    path = os.path.join(work, name)
                    with open(path, "wb") as handle:
                        handle.write(data)
                    uploads.append((path, offset))
            if p["generalize"] or layout:
                phase = ("generalize", "one libguestfs run") if p["generalize"] else (
                    "layout", "one libguestfs run: partition tables and filesystem growth only")
                with self.log.phase(*phase):
                    script = os.path.join(work, "generalize.sh")
                    with open(script, "w") as handle:
                        disk_sectors = overlay_size // blockdev.SECTOR
                        handle.write(generalize.guest_script(
                            disk_sectors, p["extra_modules"], p["serial_console"], plan.get("grow"), plan.get("esp"))
                            if p["generalize"]
                            else generalize.layout_script(plan.get("grow"), plan.get("esp"), disk_sectors))
                    commands = generalize.guestfish_script(script, uploads)
                    _rc, out, _err = self.runner.run(["guestfish", "-a", overlay, "-i"], data=commands.encode(),
                                                     environ=env, what="guestfish (generalize)")
                    self.log.line(out.strip())
                    changes, warnings, done = generalize.parse_output(out)
                    if not done:
                        raise VirtforgeError("the generalization script did not finish: %s"
                                             % "\n".join(out.strip().splitlines()[-10:]))
                if layout:
                    self._check_table(overlay, plan)
            what = "qemu-img convert -O raw to %s (%d bytes)" % (plan["device"], plan["length"])
            with self.log.phase("copy", what):
                self.runner.run(["qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", "-W",
                                 overlay, plan["device"]], what="qemu-img convert")
            with self.log.phase("verify", "qemu-img compare of the written range"):
                self.runner.run(["qemu-img", "compare", "--image-opts",
                                 image_opts("qcow2", overlay),
                                 image_opts("raw", plan["device"], size=plan["length"], host_device=True)],
                                what="qemu-img compare")
                digest = blockdev.sha256_range(plan["device"], plan["length"])
            write_record(plan["record_path"], dict(
                version=RECORD_VERSION, source=plan["src"]["identity"], options=plan["options"],
                device=plan["device"], device_size=plan["device_size"], length=plan["length"], sha256=digest,
                changes=changes))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.warnings.extend(warnings)
        return dict(sha256=digest, guest_changes=changes, guest_warnings=warnings)

    def run(self, check_mode):
        plan = self.plan()
        result = dict(changed=not plan["up_to_date"], device=plan["device"], src=self.params["src"],
                      src_format=plan["format"], virtual_size=int(plan["src"]["capacity"]),
                      device_size=plan["device_size"], bytes_written=0, length=plan["length"],
                      partition_table_before=plan["table"], grow=plan.get("grow"), esp=plan.get("esp"),
                      firmware=self.params["firmware"], verified=False,
                      guest_changes=[], guest_warnings=[], log_path=self.params.get("log_path"))
        if plan["up_to_date"]:
            record = read_record(plan["record_path"]) or {}
            result.update(sha256=record.get("sha256"), verified=True, guest_changes=record.get("changes", []))
        elif not check_mode:
            self.log.line("v2p %s -> %s" % (self.params["src"], plan["device"]))
            try:
                with interruptible():
                    result.update(self.apply(plan))
            except Interrupted as exc:
                raise VirtforgeError("%s; the temporary overlay was removed (the device holds a partial copy)"
                                     % exc) from None
            result.update(bytes_written=plan["length"], verified=True)
        result["timing"] = dict(self.log.timings, total=self.log.total())
        return result


def run_module(module, runner, connect=None):
    v2p = V2P(module, runner, connect)
    result = v2p.run(module.check_mode)
    for warning in v2p.warnings:
        module.warn(warning)
    return result

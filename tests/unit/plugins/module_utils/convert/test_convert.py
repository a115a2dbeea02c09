"""The conversion engines' pure parts: OVA manifests, block device checks, the generalization
script, virt-v2v argument lists, phases and XML fitting, NIC mapping."""

import hashlib
import io
import os
import subprocess
import tarfile
import types

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._convert import blockdev, generalize, ova, v2p, v2v, vmx
from ansible_collections.virtforge.libvirt.plugins.module_utils._convert.domain import base_params, fit_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError


# ------------------------------------------------------------------------------------------ OVA
def _sha(data):
    return hashlib.sha256(data).hexdigest()


def make_ova(tmp_path, files, manifest=None, name="vm.ova"):
    path = tmp_path / name
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        items = dict(files)
        if manifest is not None:
            items["vm.mf"] = manifest.encode()
        for fname, data in items.items():
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


FILES = {"vm.ovf": b"<Envelope/>", "vm-disk1.vmdk": b"x" * 5000}


def good_manifest(files=None):
    files = FILES if files is None else files
    return "".join("SHA256(%s)= %s\n" % (n, _sha(d)) for n, d in files.items())


def test_ova_good(tmp_path):
    out = ova.verify(make_ova(tmp_path, FILES, good_manifest()))
    assert out["ovf"] == "vm.ovf" and out["manifest"] == "vm.mf"
    assert [f["name"] for f in out["files"]] == ["vm.ovf", "vm-disk1.vmdk"]


def test_ova_sha1_and_directory(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    for n, data in FILES.items():
        (d / n).write_bytes(data)
    (d / "vm.mf").write_text("".join("SHA1(%s)= %s\n" % (n, hashlib.sha1(data).hexdigest())
                                     for n, data in FILES.items()))
    assert len(ova.verify(str(d))["files"]) == 2


def test_ova_bad_digest(tmp_path):
    manifest = good_manifest().replace(_sha(FILES["vm-disk1.vmdk"]), "0" * 64)
    with pytest.raises(VirtforgeError, match="SHA256 checksum of vm-disk1.vmdk does not match"):
        ova.verify(make_ova(tmp_path, FILES, manifest))


def test_ova_truncated_disk(tmp_path):
    files = dict(FILES, **{"vm-disk1.vmdk": FILES["vm-disk1.vmdk"][:100]})
    with pytest.raises(VirtforgeError, match="does not match"):
        ova.verify(make_ova(tmp_path, files, good_manifest()))


def test_ova_missing_and_unlisted(tmp_path):
    with pytest.raises(VirtforgeError, match="lists extra.vmdk, which is not in the package"):
        ova.verify(make_ova(tmp_path, FILES, good_manifest() + "SHA256(extra.vmdk)= %s\n" % ("a" * 64)))
    files = dict(FILES, **{"vm-disk2.vmdk": b"y"})
    with pytest.raises(VirtforgeError, match="does not cover vm-disk2.vmdk"):
        ova.verify(make_ova(tmp_path, files, good_manifest(), name="b.ova"))


def test_ova_no_manifest_and_garbage(tmp_path):
    with pytest.raises(VirtforgeError, match="has no manifest"):
        ova.verify(make_ova(tmp_path, FILES))
    assert ova.verify(make_ova(tmp_path, FILES, name="c.ova"), require_manifest=False)["manifest"] is None
    with pytest.raises(VirtforgeError, match="line 1 of the OVA manifest"):
        ova.verify(make_ova(tmp_path, FILES, "MD5(vm.ovf)= abc\n", name="d.ova"))
    with pytest.raises(VirtforgeError, match="outside the package"):
        ova.parse_manifest("SHA256(../etc/passwd)= " + "a" * 64)
    bad = tmp_path / "notatar.ova"
    bad.write_bytes(b"hello")
    with pytest.raises(VirtforgeError, match="not a readable OVA"):
        ova.verify(str(bad))


# ------------------------------------------------------------------------------ block devices
def _mbr(parts):
    head = bytearray(512)
    for i, (ptype, start, sectors) in enumerate(parts):
        off = 446 + 16 * i
        head[off + 4] = ptype
        head[off + 8:off + 12] = start.to_bytes(4, "little")
        head[off + 12:off + 16] = sectors.to_bytes(4, "little")
    head[510:512] = b"\x55\xaa"
    return bytes(head)


def test_partition_tables(tmp_path):
    f = tmp_path / "disk"
    f.write_bytes(_mbr([(0x83, 2048, 4096)]) + b"\0" * 512)
    assert blockdev.partition_table(str(f)) == "mbr"
    f.write_bytes(_mbr([(0xEE, 1, 100)]) + b"EFI PART" + b"\0" * 504)
    assert blockdev.partition_table(str(f)) == "gpt"
    f.write_bytes(b"\0" * 1024)
    assert blockdev.partition_table(str(f)) is None
    assert blockdev.mbr_partitions(_mbr([(0x83, 2048, 4096), (0x82, 6144, 100)])) == [
        dict(number=1, type=0x83, start=2048, sectors=4096), dict(number=2, type=0x82, start=6144, sectors=100)]
    assert blockdev.mbr_partitions(b"\0" * 512) == []


def test_sha256_range(tmp_path):
    f = tmp_path / "d"
    f.write_bytes(b"a" * 100 + b"b" * 100)
    assert blockdev.sha256_range(str(f), 100) == _sha(b"a" * 100)


def test_not_a_block_device(tmp_path):
    f = tmp_path / "file"
    f.write_bytes(b"")
    with pytest.raises(VirtforgeError, match="is not a block device"):
        blockdev.check_block_device(str(f), "device")
    with pytest.raises(VirtforgeError, match="does not exist"):
        blockdev.check_block_device(str(tmp_path / "none"), "device")


def test_users_from_fake_sysfs(tmp_path, monkeypatch):
    """Mounted partitions, holders and swap are all reported, by partition name."""
    sysfs = tmp_path / "sys"
    for name, dev in (("loop9", "7:9"), ("loop9p1", "259:1"), ("loop9p2", "259:2")):
        d = sysfs / "class/block" / (name if name == "loop9" else "loop9/" + name)
        d.mkdir(parents=True)
        (d / "dev").write_text(dev + "\n")
        (d / "holders").mkdir()
        if name != "loop9":
            (d / "partition").write_text("1\n")
            link = sysfs / "class/block" / name
            link.symlink_to(d)
    (sysfs / "class/block/loop9/loop9p2/holders/dm-0").write_text("")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("30 1 259:1 / /mnt/x rw - ext4 /dev/loop9p1 rw\n")
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename Type Size Used Priority\n/dev/loop9p2 partition 100 0 -2\n")
    monkeypatch.setattr(blockdev, "_sys_name", lambda path: ("loop9", (7, 9)))
    reasons = blockdev.users("/dev/loop9", mountinfo=str(mountinfo), swaps=str(swaps), sysfs=str(sysfs))
    assert "/dev/loop9p1 is mounted on /mnt/x" in reasons
    assert any("held by dm-0" in r for r in reasons)
    assert any("used as swap" in r for r in reasons)


# ------------------------------------------------------------------------------ generalization
def test_guest_script_is_valid_shell_and_complete():
    script = generalize.guest_script(4096, ["megaraid_sas"], serial_console=False,
                                     grow=dict(number=1, entry_offset=458, sectors=0x01020304))
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert "MODULES=most" in script and "update-initramfs -u -k all" in script
    assert "ahci" in script and "ata_piix" in script and "megaraid_sas" in script
    assert "console=ttyS" in script and "update-grub" in script
    assert "70-persistent-net.rules" in script
    # the partition size in little-endian octal escapes at the entry's size field of the guest's disk
    assert "printf '\\004\\003\\002\\001' | dd of=/dev/$gdisk bs=1 seek=458 count=4" in script
    assert "[ \"$written\" = %d ]" % 0x01020304 in script
    assert 'resize2fs "$part"' in script
    # the appliance's kernel names are looked up, never assumed
    assert "of=/dev/sda" not in script and "resize2fs /dev/sda" not in script
    assert "blkid -p -s UUID -o value \"$app\"" in script
    assert script.rstrip().endswith("echo VF-DONE")
    kept = generalize.guest_script(4096, serial_console=True)
    assert "sed -i -E 's/ ?console=ttyS" not in kept and "seek=" not in kept


def test_layout_script_grow_only():
    script = generalize.layout_script(dict(number=2, entry_offset=474, sectors=100), None, 4096)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert "update-initramfs" not in script and "partdev 2" in script and "grub-install" not in script


ESP = dict(number=2, entry_offset=462, start=2099200, sectors=532480)


def test_esp_script_writes_the_exact_entry():
    script = generalize.layout_script(None, ESP, 4096)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    entry = blockdev.mbr_entry(0xEF, ESP["start"], ESP["sectors"])
    assert entry[4] == 0xEF and len(entry) == 16
    assert int.from_bytes(entry[8:12], "little") == ESP["start"]
    assert int.from_bytes(entry[12:16], "little") == ESP["sectors"]
    # the octal printf of the script produces exactly those 16 bytes, and the read-back compares them in hex
    line = [x for x in script.splitlines() if x.startswith("printf '") and "seek=462 count=16" in x][0]
    printed = subprocess.run(["sh", "-c", line.split(" | ")[0]], capture_output=True, check=True).stdout
    assert printed == entry
    assert '[ "$written" = %s ]' % entry.hex() in script
    # requirements checked before anything is written; GRUB on the removable path, no NVRAM entry
    assert script.index("/usr/lib/grub/x86_64-efi") < script.index("dd of=/dev/$gdisk")
    assert script.index("mkfs.fat >/dev/null") < script.index("dd of=/dev/$gdisk")
    assert "grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram" in script
    assert "mkfs.fat -F 32" in script and "of=/dev/sda" not in script
    assert "/boot/efi vfat umask=0077 0 1" in script


def test_secure_boot_probe_needs_both_shim_and_signed_grub(tmp_path):
    probe = generalize.SECURE_BOOT_PROBE.replace("/usr/lib", str(tmp_path))
    assert probe != generalize.SECURE_BOOT_PROBE

    def sb():
        return subprocess.run(["sh", "-c", probe + '; echo "[$sb]"'], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert sb() == "[]"
    (tmp_path / "shim").mkdir()
    (tmp_path / "shim" / "shimx64.efi.signed").write_text("")
    assert sb() == "[]"                                  # shim without Debian's signed GRUB
    (tmp_path / "grub" / "x86_64-efi-signed").mkdir(parents=True)
    assert sb() == "[--uefi-secure-boot]"


def _grub_line(script, start):
    return [x.strip() for x in script.splitlines() if x.strip().startswith(start)][0]


@pytest.mark.parametrize("esp", [ESP, dict(number=1, existing=True)], ids=["new", "existing"])
def test_esp_grub_install_failures_unmount_what_the_script_mounted(esp, tmp_path):
    script = generalize.layout_script(None, esp, 4096)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert "--removable --no-nvram $sb" in script
    assert "change 'signed chain for Secure Boot: shim as BOOTX64.EFI, signed GRUB'" in script
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in (("grub-install", "echo no space >&2; exit 1"), ("umount", "echo umount \"$@\"")):
        (bin_dir / tool).write_text("#!/bin/sh\n%s\n" % body)
        (bin_dir / tool).chmod(0o755)
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % bin_dir)
    where = " 1" if esp.get("existing") else ""

    def run(line, mounted):
        line = line.replace("/tmp/vf-grub-efi.log", str(tmp_path / "log"))
        return subprocess.run(["sh", "-c", "mounted=%s; %s" % (mounted, line)],
                              capture_output=True, text=True, check=False, env=env)

    # a failing grub-install: its output, the ESP unmounted, the run failed
    out = run(_grub_line(script, "grub-install "), "1")
    assert out.returncode == 1
    assert out.stdout.splitlines() == ["no space", "umount /boot/efi",
                                       "VF-FAIL: EFI system partition%s: grub-install" % where]
    # grub-install that wrote no BOOTX64.EFI (the path is not there on this machine either)
    out = run(_grub_line(script, "[ -f /boot/efi/EFI/BOOT/BOOTX64.EFI ] ||"), "1")
    assert out.returncode == 1
    assert out.stdout.splitlines() == ["umount /boot/efi", "VF-FAIL: EFI system partition%s: grub-install wrote no "
                                       "EFI/BOOT/BOOTX64.EFI" % where]
    if esp.get("existing"):
        # an ESP that guestfish mounted (the guest's fstab names it) is left mounted
        out = run(_grub_line(script, "grub-install "), "''")
        assert out.returncode == 1 and "umount /boot/efi" not in out.stdout.splitlines()


def test_esp_fstab_line_replaces_an_old_one(tmp_path):
    script = generalize.layout_script(None, ESP, 4096)
    sed = [x for x in script.splitlines() if x.startswith("sed -i ") and "/boot/efi" in x][0]
    fstab = tmp_path / "fstab"
    fstab.write_text("UUID=a / ext4 defaults 0 1\nUUID=B /boot/efi vfat umask=0077 0 1\n# x /boot/efi y\n")
    subprocess.run(["sh", "-c", sed.replace("/etc/fstab", str(fstab))], check=True)
    assert fstab.read_text() == "UUID=a / ext4 defaults 0 1\n# x /boot/efi y\n"


def test_guest_script_with_grow_and_esp():
    script = generalize.guest_script(4096, grow=dict(number=1, entry_offset=458, sectors=100), esp=ESP)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    # grown first (it ends where the ESP starts), then the ESP, then done
    assert script.index("resize2fs") < script.index("mkfs.fat -F 32") < script.index("echo VF-DONE")


def _fake_appliance(root, disks, appliance):
    """sysfs and /dev/disk/by-id of an appliance: disks = {name: (sectors, [partition numbers])}."""
    for name, (sectors, parts) in disks.items():
        block = root / "sys" / "block" / name
        block.mkdir(parents=True)
        (block / "size").write_text("%d\n" % sectors)
        for number in parts:
            (block / ("%s%d" % (name, number))).mkdir()
            (block / ("%s%d" % (name, number)) / "partition").write_text("%d\n" % number)
    (root / "dev" / "disk" / "by-id").mkdir(parents=True)
    (root / "dev" / appliance).write_text("")
    (root / "dev" / "disk" / "by-id" / "scsi-0QEMU_QEMU_HARDDISK_appliance").symlink_to(root / "dev" / appliance)


def _run_prologue(root, sectors, tail):
    script = "\n".join(generalize._prologue(sectors)) + "\n" + tail + "\n"
    proc = subprocess.run(["sh"], input=script.encode(), env=dict(os.environ, VF_ROOT=str(root)),
                          capture_output=True, check=False)
    return proc.returncode, proc.stdout.decode()


@pytest.mark.parametrize("appliance,guest", [("sda", "sdb"), ("sdb", "sda")])
def test_prologue_finds_the_guest_disk_whichever_name_it_got(tmp_path, appliance, guest):
    # the appliance's own disk may come up first: the guest's disk is then sdb
    _fake_appliance(tmp_path, {appliance: (8388608, []), guest: (2048000, [1, 2])}, appliance)
    rc, out = _run_prologue(tmp_path, 2048000, 'echo "disk=$gdisk part=$(partdev 2)"')
    assert rc == 0 and out.strip() == "disk=%s part=/dev/%s2" % (guest, guest)


def test_prologue_refuses_a_missing_or_ambiguous_disk(tmp_path):
    _fake_appliance(tmp_path, {"sda": (8388608, []), "sdb": (2048000, [1]), "sdc": (2048000, [1])}, "sda")
    rc, out = _run_prologue(tmp_path, 2048000, "echo reached")
    assert rc == 1 and "VF-FAIL: two disks of 2048000 sectors" in out and "reached" not in out
    # the appliance's disk is never taken for the guest's, even with the same size
    rc, out = _run_prologue(tmp_path, 8388608, "echo reached")
    assert rc == 1 and "VF-FAIL: the guest disk (8388608 sectors) is not in the appliance" in out


def _fake_initramfs_guest(root, listing):
    """A guest with initramfs-tools and one kernel whose initramfs lists ``listing`` (paths), plus fake
    modinfo (ahci, usb-storage and virtio_blk are modules, sd_mod is built in, the rest missing),
    lsinitramfs and update-initramfs on PATH."""
    (root / "etc" / "initramfs-tools").mkdir(parents=True)
    (root / "lib" / "modules" / "6.1.0-9-amd64").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "boot" / "initrd.img-6.1.0-9-amd64").write_text("initrd")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    tools = {
        "modinfo": 'case "$5" in ahci|usb_storage|virtio_blk) echo "/lib/modules/$2/kernel/$5.ko";; '
                   'sd_mod) echo "(builtin)";; *) exit 1;; esac',
        "lsinitramfs": "printf '%%s\\n' %s" % " ".join(listing),
        "update-initramfs": 'echo "$@" > "$VF_ROOT/regenerated"',
    }
    for name, body in tools.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    return dict(os.environ, VF_ROOT=str(root), PATH="%s:%s" % (bin_dir, os.environ["PATH"]))


def _run_initramfs_lines(env, extra=()):
    """The initramfs part of the guest script under ``sh -e``, its tool logs under $VF_ROOT (not /tmp)."""
    script = "\n".join(["change() { echo \"VF-CHANGE: $*\"; }", "warn() { echo \"VF-WARN: $*\"; }"]
                       + generalize._initramfs_lines(extra))
    for log in ("/tmp/vf-initramfs.log", "/tmp/vf-dracut.log"):
        script = script.replace(log, env["VF_ROOT"] + log.replace("/tmp/", "/"))
    return subprocess.run(["/bin/sh", "-e"], input=script.encode(), env=env, capture_output=True, check=False)


def _run_initramfs(env, extra=()):
    proc = _run_initramfs_lines(env, extra)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    return generalize.parse_output(proc.stdout.decode())[0]


def test_initramfs_with_every_driver_is_kept(tmp_path):
    # compressed and hyphenated file names count; sd_mod is built in and needs no file
    env = _fake_initramfs_guest(tmp_path, ["usr/lib/modules/6.1.0-9-amd64/kernel/drivers/ata/ahci.ko.zst",
                                           "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/usb/storage/usb-storage.ko",
                                           "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/block/virtio_blk.ko"])
    changes = _run_initramfs(env)
    assert changes == ["initramfs kept: it already has every generic storage driver its kernel has:"
                       " ahci sd_mod virtio_blk usb_storage"]
    assert not (tmp_path / "regenerated").exists()
    assert not (tmp_path / "etc" / "initramfs-tools" / "conf.d").exists()
    assert not (tmp_path / "etc" / "initramfs-tools" / "modules").exists()


def test_initramfs_missing_a_driver_is_regenerated(tmp_path):
    env = _fake_initramfs_guest(tmp_path, ["usr/lib/modules/6.1.0-9-amd64/kernel/drivers/block/virtio_blk.ko"])
    (tmp_path / "etc" / "initramfs-tools" / "modules").write_text("loop\n")
    changes = _run_initramfs(env)
    assert changes == ["initramfs: MODULES=most, storage drivers: ahci sd_mod virtio_blk usb_storage"
                       " (missing before: 6.1.0-9-amd64:ahci 6.1.0-9-amd64:usb_storage)",
                       "initramfs regenerated for every installed kernel"]
    assert (tmp_path / "regenerated").read_text() == "-u -k all\n"
    assert "MODULES=most" in (tmp_path / "etc" / "initramfs-tools" / "conf.d" / "virtforge-v2p.conf").read_text()
    modules = (tmp_path / "etc" / "initramfs-tools" / "modules").read_text()
    assert modules == "loop\n# virtforge v2p begin\nahci\nsd_mod\nvirtio_blk\nusb_storage\n# virtforge v2p end\n"
    # a second regeneration replaces the block instead of adding another
    _run_initramfs(env)
    assert (tmp_path / "etc" / "initramfs-tools" / "modules").read_text() == modules


def test_initramfs_extra_module_not_in_it_forces_regeneration(tmp_path):
    env = _fake_initramfs_guest(tmp_path, ["x/ahci.ko", "x/usb-storage.ko", "x/virtio_blk.ko"])
    assert _run_initramfs(env)[0].startswith("initramfs kept")
    # an extra module the kernel lacks is ignored (modinfo fails); one it has and the image lacks is not
    assert _run_initramfs(env, ["nosuchmod"])[0].startswith("initramfs kept")
    (tmp_path / "bin" / "modinfo").write_text('#!/bin/sh\ncase "$5" in ahci|usb_storage|virtio_blk|e1000e) '
                                              'echo "/x/$5.ko";; *) exit 1;; esac\n')
    changes = _run_initramfs(env, ["e1000e"])
    assert changes[-1] == "initramfs regenerated for every installed kernel" and "6.1.0-9-amd64:e1000e" in changes[0]


def test_initramfs_dracut_guest_is_regenerated_without_host_only(tmp_path):
    # a guest without initramfs-tools (the RHEL family): dracut rebuilds every initramfs with all drivers
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dracut").write_text('#!/bin/sh\necho "$@" > "%s"\necho building\n' % (tmp_path / "args"))
    (bin_dir / "dracut").chmod(0o755)
    env = dict(os.environ, VF_ROOT=str(root), PATH="%s:/usr/bin:/bin" % bin_dir)
    proc = _run_initramfs_lines(env)
    assert proc.returncode == 0
    assert generalize.parse_output(proc.stdout.decode())[0] == ["initramfs regenerated with dracut --no-hostonly"]
    assert (tmp_path / "args").read_text() == "--no-hostonly --force --regenerate-all\n"
    # dracut failing: its output, then the failure, and nothing claimed
    (bin_dir / "dracut").write_text("#!/bin/sh\necho no space left >&2\nexit 1\n")
    proc = _run_initramfs_lines(env)
    assert proc.returncode == 1
    assert proc.stdout.decode().splitlines() == ["no space left", "VF-FAIL: dracut"]
    # neither tool: a warning, not a failure
    (bin_dir / "dracut").unlink()
    env["PATH"] = str(bin_dir)
    proc = _run_initramfs_lines(env)
    assert proc.returncode == 0
    assert generalize.parse_output(proc.stdout.decode())[1] == [
        "neither initramfs-tools nor dracut found: initramfs not regenerated"]


def test_parse_output():
    changes, warnings, done = generalize.parse_output("noise\nVF-CHANGE: a\nVF-WARN: b\nVF-DONE\n")
    assert (changes, warnings, done) == (["a"], ["b"], True)
    assert generalize.parse_output("VF-CHANGE: a\n")[2] is False


def test_v2p_options_digest():
    base = dict(generalize=True, serial_console=True, extra_modules=[], grow_last_partition=False,
                firmware="bios", esp_size_mib=260)
    assert v2p.options_digest(base) == v2p.options_digest(dict(base))
    assert v2p.options_digest(base) != v2p.options_digest(dict(base, serial_console=False))
    # the ESP size matters only for UEFI targets
    assert v2p.options_digest(base) == v2p.options_digest(dict(base, esp_size_mib=100))
    efi = dict(base, firmware="efi")
    assert v2p.options_digest(efi) != v2p.options_digest(base)
    assert v2p.options_digest(efi) != v2p.options_digest(dict(efi, esp_size_mib=100))


MIB = 2048  # sectors


def _mbr_slots(*parts):
    head = bytearray(512)
    for number, ptype, start, sectors in parts:
        head[blockdev.mbr_entry_offset(number): blockdev.mbr_entry_offset(number + 1)] = blockdev.mbr_entry(
            ptype, start, sectors)
    head[510:512] = b"\x55\xaa"
    return bytes(head)


def _layout(head, size, need, **params):
    p = dict(src="/img", device="/dev/sdx", firmware="bios", esp_size_mib=260, grow_last_partition=False)
    p.update(params)
    obj = v2p.V2P(types.SimpleNamespace(params=p), runner=None)
    obj._sectors = lambda path, fmt, count, skip=0: head.ljust(count * 512, b"\0")
    return obj._layout_plan("qcow2", size, need)


GIB = 1 << 30
IMAGE = _mbr_slots((1, 0x83, MIB, 2 * GIB // 512 - MIB))   # a 2 GiB image, one partition from 1 MiB to its end


def test_v2p_layout_bios_without_growth_changes_nothing():
    assert _layout(IMAGE, 4 * GIB, 2 * GIB) == {}


def test_v2p_layout_grow_to_the_device_end():
    out = _layout(IMAGE, 4 * GIB, 2 * GIB, grow_last_partition=True)
    assert out["grow"] == dict(number=1, start=MIB, sectors=4 * GIB // 512 - MIB, entry_offset=446 + 12,
                               old_sectors=2 * GIB // 512 - MIB, table="mbr")
    assert "esp" not in out


def test_v2p_layout_esp_after_the_image():
    out = _layout(IMAGE, 4 * GIB, 2 * GIB, firmware="efi")
    assert out["esp"] == dict(number=2, start=2 * GIB // 512, sectors=260 * MIB, entry_offset=446 + 16, table="mbr")
    assert out["length"] == 2 * GIB + 260 * MIB * 512 and "grow" not in out


def test_v2p_layout_esp_at_the_end_when_growing():
    size = 4 * GIB + 12345 * 512          # not a whole MiB: the ESP is aligned down to one
    out = _layout(IMAGE, size, 2 * GIB, firmware="efi", grow_last_partition=True)
    esp = out["esp"]
    assert esp["start"] % MIB == 0 and esp["start"] + esp["sectors"] <= size // 512
    assert size // 512 - (esp["start"] + esp["sectors"]) < MIB
    assert out["grow"]["sectors"] == esp["start"] - MIB and out["length"] == size


def test_v2p_layout_keeps_an_esp_of_the_image():
    head = _mbr_slots((1, 0xEF, MIB, 100 * MIB), (2, 0x83, 101 * MIB, 500 * MIB))
    assert _layout(head, 4 * GIB, 1 * GIB, firmware="efi") == dict(esp=dict(number=1, existing=True))
    grown = _layout(head, 4 * GIB, 1 * GIB, firmware="efi", grow_last_partition=True)
    assert grown["esp"] == dict(number=1, existing=True) and grown["grow"]["number"] == 2
    assert grown["grow"]["sectors"] == 4 * GIB // 512 - 101 * MIB


def test_v2p_layout_takes_the_first_free_slot():
    head = _mbr_slots((1, 0x83, MIB, 1000 * MIB), (3, 0x82, 1001 * MIB, 23 * MIB))
    out = _layout(head, 2 * GIB, 1024 * MIB * 512, firmware="efi")
    assert out["esp"]["number"] == 2 and out["esp"]["entry_offset"] == 446 + 16


@pytest.mark.parametrize("head,size,params,option,text", [
    (IMAGE, 2 * GIB + 100 * MIB * 512, dict(firmware="efi"), "device", "too small for the image"),
    (IMAGE, 2 * GIB + 100 * MIB * 512, dict(firmware="efi", grow_last_partition=True), "device", "too small"),
    (IMAGE, 4 * GIB, dict(firmware="efi", esp_size_mib=32), "esp_size_mib", "too small for a FAT32"),
    # a protective MBR without a valid GPT behind it
    (_mbr_slots((1, 0xEE, 1, 0xFFFFFFFF)), 4 * GIB, dict(firmware="efi"), "firmware", "GPT cannot be used"),
    (_mbr_slots((1, 0xEE, 1, 0xFFFFFFFF)), 4 * GIB, dict(grow_last_partition=True), "grow_last_partition", "GPT"),
    (bytes(512), 4 * GIB, dict(firmware="efi"), "firmware", "needs a partition table (MBR or GPT)"),
    (_mbr_slots(*[(n, 0x83, n * 100 * MIB, 100 * MIB) for n in range(1, 5)]), 4 * GIB, dict(firmware="efi"), "firmware",
     "no free entry"),
    (_mbr_slots((1, 0x83, MIB, 100 * MIB), (2, 0x05, 101 * MIB, 400 * MIB)), 4 * GIB, dict(grow_last_partition=True),
     "grow_last_partition", "extended partition"),
])
def test_v2p_layout_refusals(head, size, params, option, text):
    with pytest.raises(VirtforgeError) as err:
        _layout(head, size, 2 * GIB if head is IMAGE else 1 * GIB, **params)
    assert err.value.option == option and text in err.value.msg


# --------------------------------------------------------------------------------------- v2v
def _params(**kw):
    p = {k: None for k in v2v.ARGUMENT_SPEC}
    p.update({k: v.get("default") for k, v in v2v.ARGUMENT_SPEC.items() if "default" in v})
    p.update(kw)
    return p


@pytest.mark.parametrize("src,expected", [
    ("/x/a.ova", "ova"), ("/x/a.vmx", "vmx"), ("/x/a.vmdk", "disk"), ("/x/a.vhdx", "disk"), ("/x/a.img", "disk")])
def test_detect_input(src, expected):
    assert v2v.detect_input(_params(src=src)) == expected


def test_detect_input_errors():
    assert v2v.detect_input(_params(src_uri="xen+ssh://root@h/", src_name="g")) == "libvirt"
    with pytest.raises(VirtforgeError, match="src_name"):
        v2v.detect_input(_params(src_uri="xen+ssh://root@h/"))
    with pytest.raises(VirtforgeError, match="either src"):
        v2v.detect_input(_params(src="/a.vmdk", src_uri="x", src_name="g"))
    with pytest.raises(VirtforgeError, match="src is required"):
        v2v.detect_input(_params())
    with pytest.raises(VirtforgeError, match="needs src_uri"):
        v2v.detect_input(_params(input="libvirt", src="/a"))


def _converter(**kw):
    module = types.SimpleNamespace(params=_params(**kw), check_mode=False, warn=lambda m: None)
    conv = v2v.Converter(module, runner=None, connect=None)
    conv.networks = {"vflab-net", "default"}
    return conv


def test_v2v_argv():
    conv = _converter(name="g", src="/e/g.ova", pool="p")
    assert conv.v2v_argv(dict(input="ova"), "/out") == [
        "virt-v2v", "-i", "ova", "/e/g.ova", "-o", "local", "-os", "/out", "-of", "qcow2", "-on", "g"]
    conv = _converter(name="g", src="/e/g.vhd", src_format="vpc", format="raw")
    assert conv.v2v_argv(dict(input="disk"), "/o")[:5] == ["virt-v2v", "-i", "disk", "-if", "vpc"]
    conv = _converter(name="g", src_uri="xen+ssh://root@x/", src_name="old", src_password="s")
    argv = conv.v2v_argv(dict(input="libvirt"), "/o", password_file="/w/password")
    assert argv[:8] == ["virt-v2v", "-i", "libvirt", "-ic", "xen+ssh://root@x/", "-ip", "/w/password", "old"]
    assert "s" not in argv


def test_parse_v2v_phases():
    text = "[   0.0] Setting up the source\n[  60.5] Inspecting the source\nnoise\n[ 100.0] Converting\n"
    phases = v2v.parse_v2v_phases(text)
    assert [p["phase"] for p in phases] == ["Setting up the source", "Inspecting the source", "Converting"]
    assert phases[0]["seconds"] == 60.5 and phases[-1]["seconds"] is None


V2V_XML = """<domain type='kvm'><name>g</name><memory unit='KiB'>524288</memory>
<devices>
 <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/o/g-sda'/>
   <target dev='vda' bus='virtio'/></disk>
 <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/></disk>
 <interface type='network'><mac address='00:50:56:AA:BB:CC'/><source network='VM Network'/>
   <model type='virtio'/></interface>
 <vsock model='virtio'><cid auto='yes'/></vsock>
 <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
</devices></domain>"""


def test_fit_xml(tmp_path):
    xml, removed, nics, disks = fit_xml(V2V_XML, vsock_device=str(tmp_path / "no-vsock"))
    assert "type=" not in xml.split(">", 1)[0]
    assert "<vsock" not in xml and "<interface" not in xml and "dev='vda'" not in xml
    assert "guest_agent" in xml and "cdrom" in xml
    assert nics == [dict(type="network", source="VM Network", mac="00:50:56:aa:bb:cc", model="virtio")]
    assert disks == [dict(dev="vda", bus="virtio")]
    assert any("vsock" in r for r in removed) and any("domain type" in r for r in removed)
    present = tmp_path / "vsock"
    present.write_text("")
    assert "<vsock" in fit_xml(V2V_XML, vsock_device=str(present))[0]


def test_domain_params_mapping(tmp_path):
    conv = _converter(name="g", src="/e/g.ova", pool="p", network_map=[dict(source="VM Network", network="vflab-net")])
    plan = dict(v2v_xml=V2V_XML)
    params = conv.domain_params(plan, [("sda", "/pool/g-sda.qcow2")])
    assert params["disks"] == [dict(path="/pool/g-sda.qcow2", format="qcow2", bus="virtio")]
    assert params["interfaces"] == [dict(model="virtio", network="vflab-net", mac="00:50:56:aa:bb:cc")]
    assert params["name"] == "g" and params["state"] == "present" and "xml" in params
    assert set(base_params(None)) >= {"name", "disks", "interfaces", "xml", "state", "wait_timeout"}
    conv = _converter(name="g", src="/e/g.ova", pool="p", keep_macs=False, default_network="default",
                      nic_model="e1000")
    params = conv.domain_params(plan, [("sda", "/pool/g-sda.qcow2")])
    assert params["interfaces"] == [dict(model="e1000", network="default")]


def test_domain_params_unmapped_network():
    conv = _converter(name="g", src="/e/g.ova", pool="p")
    with pytest.raises(VirtforgeError, match="network_map does not map"):
        conv.domain_params(dict(v2v_xml=V2V_XML), [("sda", "/p/g-sda.qcow2")])


def test_domain_params_disk_only_with_macs():
    conv = _converter(name="g", src="/e/g.img", pool="p", inspect=False, default_network="vflab-net",
                      macs=["52:54:00:00:00:01", "52:54:00:00:00:02"], vcpus=2, memory=768)
    params = conv.domain_params(dict(), [("sda", "/p/g-sda.qcow2")])
    assert [i["mac"] for i in params["interfaces"]] == ["52:54:00:00:00:01", "52:54:00:00:00:02"]
    assert params["vcpus"] == 2 and params["memory"] == params["max_memory"] == 768 and params["guest_agent"] is True
    assert params["disks"][0]["bus"] == "virtio"


def test_domain_params_nic_without_source_names_default_network():
    conv = _converter(name="g", src="/e/g.img", pool="p", inspect=False, macs=["52:54:00:00:00:01"])
    with pytest.raises(VirtforgeError, match="NIC 0 of the guest names no source network") as err:
        conv.domain_params(dict(), [("sda", "/p/g-sda.qcow2")])
    assert err.value.option == "default_network" and "None" not in str(err.value)


def test_fit_xml_replaces_sdl_graphics_with_local_vnc():
    xml = ("<domain><name>g</name><devices><video><model type='vga'/></video>"
           "<graphics type='sdl'/><graphics type='vnc' port='-1'/></devices></domain>")
    out, removed, _nics, _disks = fit_xml(xml)
    assert "type=\"sdl\"" not in out and "type='sdl'" not in out
    assert out.count("<graphics") == 2 and 'listen="127.0.0.1"' in out
    assert any("sdl" in r and "VNC" in r for r in removed)


# --------------------------------------------------------------------------------------- vmx
VMX = """.encoding = "UTF-8"
# a VMware Workstation VM
displayName = "web1"
memSize = "512"
sata0.present = "TRUE"
sata0:0.present = "TRUE"
sata0:0.fileName = "web1.vmdk"
SCSI0:1.FileName = "/data/web1-data.vmdk"
scsi0:1.deviceType = "scsi-hardDisk"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "debian.iso"
sata0:1.present = "FALSE"
sata0:1.fileName = "old.vmdk"
ethernet0.virtualDev = "e1000"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0C:29:AA:BB:01"
ethernet2.present = "TRUE"
ethernet2.addressType = "static"
ethernet2.address = "00:50:56:00:00:02"
ethernet2.generatedAddress = "00:0c:29:aa:bb:99"
ethernet1.present = "FALSE"
ethernet1.generatedAddress = "00:0c:29:aa:bb:98"
ethernet10.virtualDev = "vmxnet3"
"""


def test_vmx_parse_is_case_blind_and_refuses_garbage():
    values = vmx.parse(VMX)
    assert values["scsi0:1.filename"] == "/data/web1-data.vmdk" and values["displayname"] == "web1"
    assert vmx.parse('memSize = 512\ndisplayName = ""\n') == {"memsize": "512", "displayname": ""}
    with pytest.raises(VirtforgeError, match='line 2 is not key = "value"') as err:
        vmx.parse('displayName = "a"\nmemSize 512\n', "/e/a.vmx")
    assert err.value.option == "src"


def test_vmx_disks_virt_v2v_reads():
    read, left_out = vmx.disk_entries(vmx.parse(VMX), "/e")
    # sorted by controller and slot; the CD-ROM and the entry with present = "FALSE" are not disks
    assert [(d["slot"], d["path"], d["device_type"]) for d in read] == [
        ("scsi0:1", "/data/web1-data.vmdk", "scsi-harddisk"), ("sata0:0", "/e/web1.vmdk", None)]
    assert left_out == []


@pytest.mark.parametrize("controller,device_type,read", [
    # measured with virt-v2v 2.2.0: which entries it converts
    ("ide", None, False), ("ide", "ata-hardDisk", True), ("sata", None, True), ("sata", "ata-hardDisk", False),
    ("nvme", None, True), ("nvme", "disk", False), ("scsi", None, True), ("scsi", "disk", True),
    ("scsi", "plainDisk", True), ("scsi", "rawDisk", True), ("scsi", "scsi-hardDisk", True),
    ("scsi", "ata-hardDisk", False)])
def test_vmx_rules_per_controller(controller, device_type, read):
    text = '%s0:0.fileName = "a.vmdk"\n' % controller
    if device_type:
        text += '%s0:0.deviceType = "%s"\n' % (controller, device_type)
    got_read, left_out = vmx.disk_entries(vmx.parse(text), "/e")
    assert (len(got_read), len(left_out)) == ((1, 0) if read else (0, 1))


def test_vmx_hard_disks_refusals(tmp_path):
    (tmp_path / "web1.vmdk").write_bytes(b"x")
    good = tmp_path / "good.vmx"
    good.write_text('sata0:0.fileName = "web1.vmdk"\n')
    assert [d["path"] for d in vmx.hard_disks(str(good), vmx.read(str(good)))] == [str(tmp_path / "web1.vmdk")]
    cases = [
        ('ide0:0.fileName = "web1.vmdk"\n',
         'ide0:0 (web1.vmdk, deviceType not set) names a disk that virt-v2v would leave out',
         'give ide0:0 deviceType = "ata-hardDisk"'),
        ('sata0:0.fileName = "web1.vmdk"\nsata0:0.deviceType = "ata-hardDisk"\n',
         'sata0:0 (web1.vmdk, deviceType ata-harddisk) names a disk', "give sata0:0 no deviceType line"),
        ('ide1:0.fileName = "a.iso"\nide1:0.deviceType = "cdrom-image"\n', "names no hard disk", None),
        ('sata0:0.fileName = "missing.vmdk"\n', "missing.vmdk, does not exist", "Copy the VM's disk files"),
    ]
    for text, msg, fix in cases:
        bad = tmp_path / "bad.vmx"
        bad.write_text(text)
        with pytest.raises(VirtforgeError) as err:
            vmx.hard_disks(str(bad), vmx.read(str(bad)))
        assert msg in err.value.msg and err.value.option == "src"
        if fix:
            assert fix in err.value.fix


def test_v2v_vmx_disks_checked_and_named(tmp_path):
    (tmp_path / "a.vmdk").write_bytes(b"x")
    (tmp_path / "b.vmdk").write_bytes(b"x")
    src = tmp_path / "web1.vmx"
    src.write_text('scsi0:0.fileName = "a.vmdk"\nscsi0:1.fileName = "b.vmdk"\n'
                   'ethernet0.addressType = "static"\nethernet0.address = "00:50:56:00:00:01"\n')
    conv = _converter(name="g", src=str(src), pool="p")
    checked = []
    conv.check_disk_image = lambda path, fmt, option: checked.append((path, fmt, option)) or dict(
        format="vmdk", virtual_size=1)
    plan = dict(input="vmx", inspect=True)
    conv.check_source(plan)
    assert checked == [(str(tmp_path / "a.vmdk"), None, "src"), (str(tmp_path / "b.vmdk"), None, "src")]
    assert plan["vmx_disks"][1] == dict(slot="scsi0:1", path=str(tmp_path / "b.vmdk"), file_size=1, format="vmdk",
                                        virtual_size=1)
    assert plan["vmx_nics"] == [dict(slot="ethernet0", mac="00:50:56:00:00:01", static=True)]
    location = types.SimpleNamespace(directory="/pool")
    assert conv.planned_disks(location, plan) == ["/pool/g-sda.qcow2", "/pool/g-sdb.qcow2"]


def test_vmx_nics_in_port_order_with_their_macs():
    assert vmx.nics(vmx.parse(VMX)) == [
        dict(slot="ethernet0", mac="00:0c:29:aa:bb:01", static=False),
        dict(slot="ethernet2", mac="00:50:56:00:00:02", static=True),
        dict(slot="ethernet10", mac=None, static=False)]


V2V_XML_NO_MAC = V2V_XML.replace("<mac address='00:50:56:AA:BB:CC'/>", "")


def test_domain_params_keeps_a_static_vmx_mac_virt_v2v_dropped():
    conv = _converter(name="g", src="/e/g.vmx", pool="p", network_map=[dict(source="VM Network", network="vflab-net")])
    nic = [dict(slot="ethernet0", mac="00:50:56:00:00:02", static=True)]
    params = conv.domain_params(dict(v2v_xml=V2V_XML_NO_MAC, vmx_nics=nic), [("sda", "/pool/g-sda.qcow2")])
    assert params["interfaces"] == [dict(model="virtio", network="vflab-net", mac="00:50:56:00:00:02")]
    assert conv.notes == ["NIC 0 keeps 00:50:56:00:00:02, the static MAC address of the .vmx's ethernet0 (virt-v2v "
                          "does not carry static addresses over)"]
    # a static address wins over a leftover generatedAddress that virt-v2v carried over
    conv = _converter(name="g", src="/e/g.vmx", pool="p", default_network="vflab-net")
    params = conv.domain_params(dict(v2v_xml=V2V_XML, vmx_nics=nic), [("sda", "/pool/g-sda.qcow2")])
    assert params["interfaces"][0]["mac"] == "00:50:56:00:00:02"
    assert conv.notes == ["NIC 0 keeps 00:50:56:00:00:02, the static MAC address of the .vmx's ethernet0 (virt-v2v "
                          "gave it 00:50:56:aa:bb:cc, a leftover generatedAddress)"]
    # a generated MAC is virt-v2v's; keep_macs: false and a NIC count that does not match take nothing from the .vmx
    generated = [dict(nic[0], static=False)]
    for xml, kw, vmx_nics, mac in [(V2V_XML, {}, generated, "00:50:56:aa:bb:cc"), (V2V_XML_NO_MAC, {}, generated, None),
                                   (V2V_XML_NO_MAC, dict(keep_macs=False), nic, None),
                                   (V2V_XML_NO_MAC, {}, nic * 2, None)]:
        conv = _converter(name="g", src="/e/g.vmx", pool="p", default_network="vflab-net", **kw)
        params = conv.domain_params(dict(v2v_xml=xml, vmx_nics=vmx_nics), [("sda", "/pool/g-sda.qcow2")])
        assert params["interfaces"][0].get("mac") == mac and conv.notes == []

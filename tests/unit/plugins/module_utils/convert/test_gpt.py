"""GPT reading and rewriting (V2P onto a larger device), checked against util-linux's sfdisk on real
sparse disk files, and the V2P layout plan on GPT images."""

import json
import shutil
import subprocess
import types
import uuid

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._convert import generalize, gpt, v2p
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

SFDISK = shutil.which("sfdisk") or "/usr/sbin/sfdisk"
MIB = 2048
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69E47DE4E4"


def make_disk(path, mib, script):
    with open(path, "wb") as handle:
        handle.truncate(mib * 1024 * 1024)
    subprocess.run([SFDISK, "-q", str(path)], input=("label: gpt\n" + script).encode(), check=True,
                   capture_output=True)
    return str(path)


def sfdisk_json(path):
    out = subprocess.run([SFDISK, "--json", str(path)], check=True, capture_output=True).stdout
    return json.loads(out)["partitiontable"]


def verify(path):
    """sfdisk's own check of both tables: its output names every problem it finds."""
    proc = subprocess.run([SFDISK, "--verify", str(path)], capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def head_of(path, sectors=gpt.HEAD_SECTORS):
    with open(path, "rb") as handle:
        return handle.read(sectors * 512)


def write_layout(src, dst, mib, out):
    """The image copied onto a larger 'device', then the rewritten tables written as V2P does."""
    with open(src, "rb") as handle:
        data = handle.read()
    with open(dst, "wb") as handle:
        handle.truncate(mib * 1024 * 1024)
        handle.write(data)
        handle.seek(0)
        handle.write(out["head"])
        handle.seek(out["backup_offset"])
        handle.write(out["backup"])


@pytest.fixture
def image(tmp_path):
    # like a UEFI install: ESP first, root last (64 MiB disk)
    return make_disk(tmp_path / "img", 64, "start=2048, size=16MiB, type=%s, name=EFI\n"
                                           "start=34816, type=%s, name=root\n" % (ESP_GUID, LINUX_GUID))


def test_parse_matches_sfdisk(image):
    table = gpt.parse(head_of(image))
    parts = gpt.partitions(table)
    theirs = sfdisk_json(image)["partitions"]
    assert [(p["number"], p["start"], p["sectors"]) for p in parts] == [
        (1, t["start"], t["size"]) for t in theirs[:1]] + [(2, theirs[1]["start"], theirs[1]["size"])]
    assert parts[0]["esp"] and not parts[1]["esp"]
    assert table["count"] == 128 and table["size"] == 128 and table["entries_lba"] == 2
    assert gpt.head_sectors(head_of(image)) == 34
    # sfdisk puts the last usable sector 34 before the disk's end: the same rule as ours
    assert table["last_usable"] == gpt.usable_end(table, 64 * MIB) - 1 == 64 * MIB - 34


def test_damaged_tables_are_refused(image):
    head = bytearray(head_of(image))
    head[1024 + 40] ^= 0xFF                     # an entry's first LBA
    with pytest.raises(gpt.GPTError, match="entries' CRC32"):
        gpt.parse(bytes(head))
    head = bytearray(head_of(image))
    head[512 + 48] ^= 0x01                      # the header's last usable LBA
    with pytest.raises(gpt.GPTError, match="header's CRC32"):
        gpt.parse(bytes(head))
    with pytest.raises(gpt.GPTError, match="no GPT header"):
        gpt.parse(bytes(1024))


def test_grow_and_backup_at_the_new_end(image, tmp_path):
    table = gpt.parse(head_of(image))
    disk = 256 * MIB
    out = gpt.layout(table, disk, grow=dict(number=2, last=gpt.usable_end(table, disk) - 1))
    assert out["backup_offset"] + len(out["backup"]) == disk * 512
    dev = tmp_path / "dev"
    write_layout(image, dev, 256, out)
    rc, text = verify(dev)
    assert rc == 0, text
    theirs = sfdisk_json(dev)
    root = theirs["partitions"][1]
    assert root["start"] + root["size"] == disk - 33       # up to the last usable sector
    assert theirs["lastlba"] == disk - 34
    assert theirs["partitions"][0]["size"] == 16 * MIB     # the ESP untouched
    # sector 0 keeps its boot code; the protective entry now covers the larger disk
    new, old = head_of(dev, 1), head_of(image, 1)
    assert new[:446] == old[:446] and int.from_bytes(new[446 + 12:446 + 16], "little") == disk - 1
    # our own read-back of both tables agrees
    tail = open(dev, "rb").read()[out["backup_offset"]:]
    assert gpt.partitions(gpt.read_back(head_of(dev), tail, disk))[1]["sectors"] == root["size"]


def test_new_esp_in_a_free_entry(tmp_path):
    image = make_disk(tmp_path / "img", 64, "start=2048, type=%s\n" % LINUX_GUID)   # BIOS-style, one partition
    table = gpt.parse(head_of(image))
    disk = 512 * MIB
    end = gpt.usable_end(table, disk)
    esp_start = (end - 100 * MIB) // MIB * MIB
    guid = uuid.uuid4()
    out = gpt.layout(table, disk, grow=dict(number=1, last=esp_start - 1),
                     esp=dict(number=2, start=esp_start, sectors=100 * MIB, guid=guid))
    dev = tmp_path / "dev"
    write_layout(image, dev, 512, out)
    rc, text = verify(dev)
    assert rc == 0, text
    parts = sfdisk_json(dev)["partitions"]
    assert parts[1]["type"] == ESP_GUID and parts[1]["uuid"] == str(guid).upper()
    assert parts[1]["start"] == esp_start and parts[1]["size"] == 100 * MIB
    assert parts[0]["start"] + parts[0]["size"] == esp_start


def test_layout_refuses_what_does_not_fit(image):
    table = gpt.parse(head_of(image))
    with pytest.raises(gpt.GPTError, match="cannot end"):
        gpt.layout(table, 128 * MIB, grow=dict(number=2, last=128 * MIB - 10))
    with pytest.raises(gpt.GPTError, match="in use"):
        gpt.layout(table, 128 * MIB, esp=dict(number=1, start=100 * MIB, sectors=MIB, guid=uuid.uuid4()))


def test_read_back_finds_a_backup_left_at_the_image_end(image, tmp_path):
    dev = tmp_path / "dev"
    with open(image, "rb") as handle:
        data = handle.read()
    with open(dev, "wb") as handle:
        handle.truncate(128 * 1024 * 1024)
        handle.write(data)
    tail = open(dev, "rb").read()[-33 * 512:]
    with pytest.raises(gpt.GPTError, match="not in the disk's last"):
        gpt.read_back(head_of(dev), tail, 128 * MIB)


# ------------------------------------------------------------------------- the V2P plan on GPT
def _layout(path, size, **params):
    p = dict(src=path, device="/dev/sdx", firmware="bios", esp_size_mib=100, grow_last_partition=False)
    p.update(params)
    obj = v2p.V2P(types.SimpleNamespace(params=p), runner=None)

    def sectors(_path, _fmt, count, skip=0):
        return head_of(path, skip + count)[skip * 512:]
    obj._sectors = sectors
    return obj._layout_plan("raw", size, 64 * 1024 * 1024)


def test_v2p_gpt_uefi_image_grows_and_keeps_its_esp(image):
    out = _layout(image, 256 * 1024 * 1024, firmware="efi", grow_last_partition=True)
    assert out["esp"] == dict(number=1, existing=True)
    assert out["grow"]["number"] == 2 and out["grow"]["table"] == "gpt"
    assert out["grow"]["start"] + out["grow"]["sectors"] == 256 * MIB - 33
    assert out["length"] == 256 * 1024 * 1024 and out["gpt"]["backup_offset"] == (256 * MIB - 33) * 512
    # without growing, the whole device is written too: the backup table moves to its end
    keep = _layout(image, 256 * 1024 * 1024, firmware="efi")
    assert keep["length"] == 256 * 1024 * 1024 and "grow" not in keep and keep["esp"]["existing"]


def test_v2p_gpt_bios_image_gets_an_esp(tmp_path):
    image = make_disk(tmp_path / "img", 64, "start=2048, type=%s\n" % LINUX_GUID)
    after = _layout(image, 256 * 1024 * 1024, firmware="efi")
    root = sfdisk_json(image)["partitions"][0]
    # right after the image's partition, on the next MiB boundary
    assert after["esp"]["number"] == 2 and after["esp"]["start"] == -(-(root["start"] + root["size"]) // MIB) * MIB
    both = _layout(image, 256 * 1024 * 1024, firmware="efi", grow_last_partition=True)
    esp = both["esp"]
    assert esp["start"] % MIB == 0 and esp["start"] + esp["sectors"] <= 256 * MIB - 33
    assert both["grow"]["start"] + both["grow"]["sectors"] == esp["start"]
    with pytest.raises(VirtforgeError) as err:
        _layout(image, 100 * 1024 * 1024, firmware="efi")
    assert err.value.option == "device" and "too small" in err.value.msg


def test_v2p_gpt_scripts_do_not_write_mbr_entries(image):
    out = _layout(image, 256 * 1024 * 1024, firmware="efi", grow_last_partition=True)
    script = generalize.layout_script(out["grow"], out["esp"], 256 * MIB)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert "dd of=/dev/$gdisk" not in script and "partx -u -n 2 /dev/$gdisk" in script
    assert "EFI/BOOT/BOOTX64.EFI" in script and "mkfs.fat" not in script   # the image's ESP is kept
    commands = generalize.guestfish_script("/w/generalize.sh", [("/w/gpt-head", 0), ("/w/gpt-backup", 99)])
    lines = commands.splitlines()
    assert lines[:2] == ["upload-offset /w/gpt-head /dev/sda 0", "upload-offset /w/gpt-backup /dev/sda 99"]
    assert lines.index("upload /w/generalize.sh /tmp/virtforge-generalize.sh") == 2


def test_v2p_gpt_does_not_grow_an_esp_that_comes_last(tmp_path):
    image = make_disk(tmp_path / "img", 64, "start=2048, size=32MiB, type=%s\nstart=67584, type=%s\n"
                      % (LINUX_GUID, ESP_GUID))
    with pytest.raises(VirtforgeError) as err:
        _layout(image, 256 * 1024 * 1024, grow_last_partition=True)
    assert err.value.option == "grow_last_partition" and "EFI system partition (partition 2)" in err.value.msg


def test_v2p_refuses_layout_changes_on_4k_sector_devices(image, monkeypatch):
    monkeypatch.setattr(v2p.blockdev, "logical_sector_size", lambda path: 4096)
    with pytest.raises(VirtforgeError) as err:
        _layout(image, 256 * 1024 * 1024, grow_last_partition=True)
    assert err.value.option == "grow_last_partition" and "4096-byte logical sectors" in err.value.msg
    monkeypatch.setattr(v2p.blockdev, "logical_sector_size", lambda path: 512)
    assert _layout(image, 256 * 1024 * 1024, grow_last_partition=True)["grow"]["number"] == 2


def test_read_back_checks_the_backup_entries_crc(image, tmp_path):
    table = gpt.parse(head_of(image))
    out = gpt.layout(table, 128 * MIB)

    def resealed(offset, size):
        """The backup with one header field changed and the header's own CRC made valid again."""
        backup = bytearray(out["backup"])
        at = len(backup) - 512
        backup[at + offset:at + offset + size] = bytes(b ^ 0xFF for b in backup[at + offset:at + offset + size])
        backup[at + 16:at + 20] = bytes(4)
        backup[at + 16:at + 20] = gpt._crc(bytes(backup[at:at + 92])).to_bytes(4, "little")
        return bytes(backup)

    with pytest.raises(gpt.GPTError, match="entries' CRC32 does not match"):
        gpt.read_back(out["head"], resealed(88, 4), 128 * MIB)
    with pytest.raises(gpt.GPTError, match="puts its entries at sector"):
        gpt.read_back(out["head"], resealed(72, 8), 128 * MIB)
    assert gpt.partitions(gpt.read_back(out["head"], out["backup"], 128 * MIB))[1]["number"] == 2


def test_v2p_gpt_copied_as_it_is_gets_its_backup_at_the_device_end(image, tmp_path, monkeypatch):
    out = _layout(image, 256 * 1024 * 1024)                     # firmware: bios, no growth
    assert set(out) == {"length", "gpt"} and out["length"] == 256 * 1024 * 1024
    dev = tmp_path / "dev"
    write_layout(image, dev, 256, out["gpt"])
    rc, text = verify(dev)
    assert rc == 0, text
    before, after = sfdisk_json(image)["partitions"], sfdisk_json(dev)["partitions"]
    assert [(p["start"], p["size"]) for p in after] == [(p["start"], p["size"]) for p in before]
    assert sfdisk_json(dev)["lastlba"] == 256 * MIB - 34
    # nothing to move on a device of the image's size, on 4096-byte sectors, or for an MBR
    assert _layout(image, 64 * 1024 * 1024) == {}
    monkeypatch.setattr(v2p.blockdev, "logical_sector_size", lambda path: 4096)
    assert _layout(image, 256 * 1024 * 1024) == {}

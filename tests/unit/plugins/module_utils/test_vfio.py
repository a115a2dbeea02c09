# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vfio_bind's engine on fake sysfs trees: resolution, refusals, the rules file, apply and its read-back."""

from __future__ import annotations

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _vfio
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

NIC_A, NIC_B, MGMT = "0000:03:00.0", "0000:04:00.0", "0000:01:00.0"
BRIDGE, HBA, AUDIO = "0000:00:1c.0", "0000:05:00.0", "0000:03:00.1"


class Tree(object):
    """A fake sysfs/procfs: PCI devices with drivers and IOMMU groups, NICs with flags, disks, mounts."""

    def __init__(self, root, iommu=True):
        self.root = str(root)
        self.iommu = iommu
        for name in ("e1000e", "virtio-pci", "vfio-pci", "ahci", "snd_hda_intel", "pcieport"):
            self._file("/sys/bus/pci/drivers/%s/unbind" % name)
        self._file("/sys/bus/pci/drivers_probe")
        self._file("/proc/mounts", "/dev/vda1 / ext4 rw 0 0\n")
        self._file("/proc/swaps", "Filename Type Size Used Priority\n")

    def _file(self, rel, text=""):
        path = os.path.join(self.root, rel.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def device(self, address, pci_id, klass, driver=None, group=None):
        rel = "/sys/bus/pci/devices/%s" % address
        vendor, device = pci_id.split(":")
        self._file(rel + "/vendor", "0x%s\n" % vendor)
        self._file(rel + "/device", "0x%s\n" % device)
        self._file(rel + "/class", "0x%06x\n" % klass)
        self._file(rel + "/driver_override", "(null)\n")
        if driver:
            self.link(address, driver)
        if group is not None and self.iommu:
            self._file("/sys/kernel/iommu_groups/%s/devices/%s" % (group, address))
            os.symlink(os.path.join(self.root, "sys/kernel/iommu_groups", str(group)),
                       os.path.join(self.root, rel.lstrip("/"), "iommu_group"))
        return self

    def link(self, address, driver):
        link = os.path.join(self.root, "sys/bus/pci/devices", address, "driver")
        if os.path.islink(link):
            os.unlink(link)
        if driver:
            os.symlink(os.path.join(self.root, "sys/bus/pci/drivers", driver), link)

    def _class_link(self, klass, name, target):
        link = os.path.join(self.root, "sys", "class", klass, name)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(target, link)

    def nic(self, address, name, up=False, master=None):
        # as a virtio NIC: below virtio0/net of its PCI device, found through /sys/class/net
        where = os.path.join(self.root, "sys/bus/pci/devices", address, "virtio0/net", name)
        os.makedirs(where)
        self._class_link("net", name, where)
        self._file("/sys/class/net/%s/flags" % name, "0x1003\n" if up else "0x1002\n")
        if master:
            os.symlink(os.path.join(self.root, "sys/class/net", master),
                       os.path.join(self.root, "sys/class/net", name, "master"))
        return self

    def disk(self, address, name, mounted=False):
        where = os.path.join(self.root, "sys/bus/pci/devices", address, "ata1/host0/target0:0:0/0:0:0:0/block", name)
        os.makedirs(os.path.join(where, name + "1", "holders"))
        os.makedirs(os.path.join(where, "holders"))
        self._file(os.path.join(where, name + "1", "partition")[len(self.root):], "1\n")
        self._class_link("block", name, where)
        self._class_link("block", name + "1", os.path.join(where, name + "1"))
        os.makedirs(os.path.join(self.root, "sys/block"), exist_ok=True)
        os.symlink(where, os.path.join(self.root, "sys/block", name))
        if mounted:
            self._file("/proc/mounts", "/dev/vda1 / ext4 rw 0 0\n/dev/%s1 /srv ext4 rw 0 0\n" % name)
        return self

    def read(self, rel):
        with open(os.path.join(self.root, rel.lstrip("/"))) as handle:
            return handle.read()


@pytest.fixture
def tree(tmp_path):
    t = Tree(tmp_path)
    t.device(NIC_A, "8086:10d3", 0x020000, "e1000e", 12).device(NIC_B, "8086:10d3", 0x020000, "e1000e", 13)
    t.device(MGMT, "1af4:1041", 0x020000, "virtio-pci", 2).nic(MGMT, "enp1s0", up=True)
    t.nic(NIC_A, "enp3s0").nic(NIC_B, "enp4s0", master="bond0")
    t.device(BRIDGE, "8086:a110", 0x060400, "pcieport", 1)
    return t


def _params(**kw):
    base = dict(addresses=[], ids=[], state="present", runtime=True, persistent=True, force=False,
                rules_file=_vfio.RULES_FILE)
    base.update(kw)
    return base


class Runner(object):
    def __init__(self):
        self.calls = []

    def which(self, tool, required=True):
        return "/usr/sbin/" + tool

    def run(self, argv, check=True, **_kw):
        self.calls.append(argv)
        return 0, "", ""


def test_address_and_id_forms():
    assert _vfio.parse_id("8086:10D3") == "8086:10d3" and _vfio.parse_id("8086:10d") is None
    with pytest.raises(VirtforgeError, match=r"addresses\[1\]: 'eth0' is not a PCI address"):
        _vfio.plan(_params(addresses=["03:00.0", "eth0"]), root="/nonexistent")
    with pytest.raises(VirtforgeError, match=r"ids\[0\].*lspci -nn"):
        _vfio.plan(_params(ids=["intel"]), root="/nonexistent")
    with pytest.raises(VirtforgeError, match="addresses: no device given"):
        _vfio.plan(_params(), root="/nonexistent")


def test_plan_binds_a_spare_nic_and_writes_its_rule(tree):
    result = _vfio.plan(_params(addresses=["03:00.0"]), root=tree.root)
    assert result["errors"] == []
    (device,) = result["devices"]
    assert device["address"] == NIC_A and device["action"] == "bind" and device["driver_before"] == "e1000e"
    assert device["id"] == "8086:10d3" and device["vfio_device"] == "/dev/vfio/12"
    assert device["group_devices"] == [NIC_A] and device["interfaces"] == ["enp3s0"]
    assert result["rules"]["changed"] and result["rules"]["before"] == ""
    assert 'KERNEL=="0000:03:00.0", ATTR{driver_override}="vfio-pci"' in result["rules"]["after"]
    assert _vfio.parse_rules(result["rules"]["after"]) == ({NIC_A}, set())


def test_ids_resolve_to_every_device_and_the_rule_matches_by_id(tree):
    result = _vfio.plan(_params(ids=["8086:10D3"], force=True), root=tree.root)
    assert [d["address"] for d in result["devices"]] == [NIC_A, NIC_B]
    assert 'ATTR{vendor}=="0x8086", ATTR{device}=="0x10d3"' in result["rules"]["after"]
    # without force, the bond port is refused, the spare NIC is not
    result = _vfio.plan(_params(ids=["8086:10d3"]), root=tree.root)
    assert len(result["errors"]) == 1 and "enp4s0 is a port of bond0" in result["errors"][0]


def test_refusals(tree):
    errors = _vfio.plan(_params(addresses=[MGMT, BRIDGE]), root=tree.root)["errors"]
    assert any("0000:01:00.0 is a NIC the host uses: enp1s0 is up" in e for e in errors)
    assert any("0000:00:1c.0 is a bridge (class 0x060400)" in e for e in errors)
    # force takes the NIC, never the bridge
    errors = _vfio.plan(_params(addresses=[MGMT, BRIDGE], force=True), root=tree.root)["errors"]
    assert len(errors) == 1 and "bridge" in errors[0]


def test_a_disk_held_by_lvm_is_in_use(tree):
    tree.device(HBA, "8086:2922", 0x010601, "ahci", 20).disk(HBA, "sdc")
    assert _vfio.plan(_params(addresses=[HBA]), root=tree.root)["errors"] == []
    os.makedirs(os.path.join(tree.root, "sys/class/block/sdc1/holders/dm-0"))
    errors = _vfio.plan(_params(addresses=[HBA]), root=tree.root)["errors"]
    assert len(errors) == 1 and "/dev/sdc1 is held by dm-0" in errors[0]


def test_a_disk_the_host_uses_is_refused_even_with_force(tree):
    tree.device(HBA, "8086:2922", 0x010601, "ahci", 20).disk(HBA, "sdb", mounted=True)
    errors = _vfio.plan(_params(addresses=[HBA], force=True), root=tree.root)["errors"]
    assert len(errors) == 1 and "/dev/sdb1 is mounted" in errors[0] and "force does not override" in errors[0]


def test_the_whole_iommu_group_must_leave_the_host(tree):
    tree.device(AUDIO, "8086:1c20", 0x040300, "snd_hda_intel", None)
    tree._file("/sys/kernel/iommu_groups/12/devices/%s" % AUDIO)
    os.symlink(os.path.join(tree.root, "sys/kernel/iommu_groups/12"),
               os.path.join(tree.root, "sys/bus/pci/devices", AUDIO, "iommu_group"))
    errors = _vfio.plan(_params(addresses=[NIC_A]), root=tree.root)["errors"]
    assert len(errors) == 1 and "IOMMU group 12" in errors[0] and "0000:03:00.1 (driver snd_hda_intel)" in errors[0]
    assert _vfio.plan(_params(addresses=[NIC_A, AUDIO]), root=tree.root)["errors"] == []


def test_iommu_off_refuses_now_but_writes_the_boot_binding(tmp_path):
    tree = Tree(tmp_path, iommu=False)
    tree.device(NIC_A, "8086:10d3", 0x020000, "e1000e", 12)
    with pytest.raises(VirtforgeError, match="runtime: the IOMMU is off.*intel_iommu=on"):
        _vfio.plan(_params(addresses=[NIC_A]), root=tree.root)
    result = _vfio.plan(_params(addresses=[NIC_A], runtime=False), root=tree.root)
    assert result["devices"][0]["action"] is None and result["rules"]["changed"]
    # a device not in this host yet: boot-time only is allowed, now is not
    assert _vfio.plan(_params(addresses=["0000:09:00.0"], runtime=False), root=tree.root)["rules"]["changed"]
    with pytest.raises(VirtforgeError, match=r"addresses\[0\]: no PCI device 0000:09:00.0"):
        _vfio.plan(_params(addresses=["0000:09:00.0"]), root=tree.root)


def _fake_kernel(monkeypatch, tree):
    """sysfs writes rebind the fake device the way the kernel does (the override decides)."""
    def bind(self, address, driver):
        _vfio.Sysfs.write(self, "/sys/bus/pci/devices/%s/driver_override" % address, driver)
        tree.link(address, driver)

    def release(self, address):
        _vfio.Sysfs.write(self, "/sys/bus/pci/devices/%s/driver_override" % address, "\n")
        tree.link(address, "e1000e")
    monkeypatch.setattr(_vfio.Sysfs, "bind", bind)
    monkeypatch.setattr(_vfio.Sysfs, "release", release)


def test_apply_binds_writes_the_rules_first_and_is_idempotent(tree, monkeypatch):
    _fake_kernel(monkeypatch, tree)
    runner = Runner()
    rules = os.path.join(tree.root, "etc/udev/rules.d/85-virtforge-vfio.rules")
    result = _vfio.apply(_vfio.plan(_params(addresses=[NIC_A]), root=tree.root), runner, root=tree.root)
    assert result["devices"][0]["driver"] == "vfio-pci"
    assert ["/usr/sbin/modprobe", "vfio-pci"] not in runner.calls  # the fake tree has vfio-pci loaded
    assert ["/usr/sbin/udevadm", "control", "--reload"] in runner.calls
    assert _vfio.parse_rules(open(rules).read()) == ({NIC_A}, set())
    again = _vfio.plan(_params(addresses=[NIC_A]), root=tree.root)
    assert again["devices"][0]["action"] is None and not again["rules"]["changed"]
    # absent: released, its line gone, the file with it
    gone = _vfio.apply(_vfio.plan(_params(addresses=[NIC_A], state="absent"), root=tree.root), runner,
                       root=tree.root)
    assert gone["devices"][0]["action"] == "release" and gone["devices"][0]["driver"] == "e1000e"
    assert not os.path.exists(rules)


def test_apply_gives_the_device_back_when_vfio_does_not_take_it(tree, monkeypatch):
    released = []
    monkeypatch.setattr(_vfio.Sysfs, "bind", lambda self, address, driver: None)  # the driver stays
    monkeypatch.setattr(_vfio.Sysfs, "release", lambda self, address: released.append(address))
    with pytest.raises(VirtforgeError, match="did not bind to vfio-pci \\(driver now e1000e\\)"):
        _vfio.apply(_vfio.plan(_params(addresses=[NIC_A]), root=tree.root), Runner(), root=tree.root)
    assert released == [NIC_A]


def test_rules_keep_other_devices_and_ignore_foreign_lines():
    text = _vfio.render_rules({NIC_A}, {"8086:10d3"}) + 'ACTION=="add", SUBSYSTEM=="net", NAME="x"\n'
    assert _vfio.parse_rules(text) == ({NIC_A}, {"8086:10d3"})
    assert _vfio.render_rules(set(), set()) == ""

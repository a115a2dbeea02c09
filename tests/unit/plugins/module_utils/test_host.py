"""host_info's facts from fixture procfs/sysfs trees and a fake libvirt connection."""

import atexit
import os
import shutil
import tempfile

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _host
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TCG = os.path.join(FIXTURES, "sysfs-tcg")
# IOMMU group members are named by PCI address (0000:00:02.0); ':' is not allowed in the collection's
# file names, so those entries are made here, in a copy of the fixture tree.
INTEL_IOMMU_DEVICES = {"0": ["0000:00:00.0"], "1": ["0000:00:01.0"], "2": ["0000:00:02.0"],
                       "12": ["0000:01:00.0", "0000:01:00.1"]}


def _intel_tree():
    root = tempfile.mkdtemp(prefix="vf-sysfs-")
    atexit.register(shutil.rmtree, root, True)
    tree = os.path.join(root, "sysfs-intel-kvm")
    shutil.copytree(os.path.join(FIXTURES, "sysfs-intel-kvm"), tree)
    for group, devices in INTEL_IOMMU_DEVICES.items():
        directory = os.path.join(tree, "sys", "kernel", "iommu_groups", group, "devices")
        os.makedirs(directory, exist_ok=True)
        for device in devices:
            open(os.path.join(directory, device), "w").close()
    tables = os.path.join(tree, "sys", "firmware", "acpi", "tables")
    os.makedirs(tables, exist_ok=True)
    open(os.path.join(tables, "DMAR"), "w").close()  # VT-d in the firmware
    return tree


INTEL = _intel_tree()


class FakeConn(object):
    def __init__(self, domcaps=None):
        self.domcaps = domcaps
        self.asked = []
        self.closed = False

    def getURI(self):
        return "qemu:///system"

    def getLibVersion(self):
        return 9000000

    def getType(self):
        return "QEMU"

    def getVersion(self):
        return 7002022

    def getDomainCapabilities(self, emulator, arch, machine, virttype, flags):
        self.asked.append(virttype)
        if self.domcaps is None:
            raise RuntimeError("this driver has no domain capabilities")
        return self.domcaps

    def close(self):
        self.closed = True


def domcaps():
    with open(os.path.join(FIXTURES, "domcaps-qemu-tcg.xml")) as handle:
        return handle.read()


def test_intel_kvm_host():
    facts = _host.gather(INTEL)
    assert facts["cpu"] == dict(vendor="GenuineIntel", model="Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", count=4,
                                virtualization_flags=["vmx"], hardware_virtualization=True, virtualization="VT-x")
    assert facts["kvm"] == dict(usable=True, device=True, module="kvm_intel", nested=True, reason=None)
    assert facts["kvm_usable"] is True
    iommu = facts["iommu"]
    assert iommu["enabled"] and iommu["group_count"] == 4
    assert [g["id"] for g in iommu["groups"]] == [0, 1, 2, 12]
    assert iommu["groups"][3]["devices"] == ["0000:01:00.0", "0000:01:00.1"]
    assert iommu["units"] == ["dmar0"] and iommu["kernel_args"] == ["intel_iommu=on", "iommu=pt"]
    assert iommu["firmware"] == "intel" and iommu["suggested_kernel_args"] == ["intel_iommu=on", "iommu=pt"]
    assert facts["numa"]["node_count"] == 2
    assert facts["numa"]["nodes"][1] == dict(id=1, cpus="2-3", memory_total=32768000 * 1024,
                                             memory_free=15000000 * 1024)
    assert facts["hugepages"]["sizes"] == [dict(size=2 * 1024 ** 2, total=512, free=500),
                                           dict(size=1024 ** 3, total=0, free=0)]
    assert facts["hugepages"]["default_size"] == 2 * 1024 ** 2
    assert facts["memory"]["total"] == 65536000 * 1024 and facts["memory"]["available"] == 50000000 * 1024
    assert facts["network"]["bridges"] == [dict(name="br0", ports=["bond0", "vnet0"], stp=False, forward_delay=0,
                                                vlan_filtering=True, mtu=9000, operstate="up")]
    assert facts["network"]["bonds"] == [dict(name="bond0", mode="active-backup", members=["eno1", "eno2"],
                                              active_member="eno1", miimon=100, mtu=9000, operstate="up")]


def test_machine_like_the_build_host_has_no_usable_kvm():
    facts = _host.gather(TCG)
    assert facts["cpu"]["virtualization_flags"] == [] and facts["cpu"]["vendor"] == "AuthenticAMD"
    # /dev/kvm exists, but without vmx/svm KVM is not usable
    assert facts["kvm"]["device"] is True and facts["kvm_usable"] is False
    assert "vmx/svm" in facts["kvm"]["reason"] and facts["kvm"]["nested"] is None and facts["kvm"]["module"] is None
    assert facts["iommu"] == dict(enabled=False, group_count=0, groups=[], units=[], kernel_args=[], firmware=None,
                                  suggested_kernel_args=[])
    assert facts["numa"]["node_count"] == 1
    assert facts["network"] == dict(bridges=[], bonds=[])


def test_flags_without_device(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor : 0\nvendor_id : AuthenticAMD\nflags : fpu svm lm\n")
    nested = tmp_path / "sys" / "module" / "kvm_amd" / "parameters"
    nested.mkdir(parents=True)
    (nested / "nested").write_text("1\n")
    facts = _host.gather(str(tmp_path))
    assert facts["cpu"]["virtualization"] == "AMD-V"
    assert facts["kvm"] == dict(usable=False, device=False, module="kvm_amd", nested=True,
                                reason="/dev/kvm does not exist (kvm module not loaded, or virtualization off in "
                                       "the firmware)")
    # an empty tree: every fact present, nothing invented
    assert facts["numa"] == dict(node_count=0, nodes=[]) and facts["memory"]["total"] is None


def test_libvirt_versions_and_domain_capabilities_for_the_usable_type():
    conn = FakeConn(domcaps())
    facts = _host.gather(TCG, lambda: conn, "qemu:///system")
    lv = facts["libvirt"]
    assert lv["reachable"] and lv["version"] == "9.0.0" and lv["qemu_version"] == "7.2.22"
    assert conn.asked == ["qemu"] and lv["domain_type"] == "qemu" and conn.closed
    caps = lv["domain_capabilities"]
    assert caps["domain"] == "qemu" and caps["arch"] == "x86_64" and caps["max_vcpus"] == 255
    assert caps["emulator"] == "/usr/bin/qemu-system-x86_64"
    assert "virtio" in caps["disk_buses"] and caps["hostdev"] is True
    conn = FakeConn(domcaps())
    _host.gather(INTEL, lambda: conn)
    assert conn.asked == ["kvm"]


def test_libvirt_unreachable_or_limited_is_reported_not_raised():
    def refuse():
        raise VirtforgeError("cannot connect to qemu:///system: no socket", option="uri")

    facts = _host.gather(TCG, refuse, "qemu:///system")
    assert facts["libvirt"] == dict(reachable=False, error="uri: cannot connect to qemu:///system: no socket",
                                    uri="qemu:///system")
    facts = _host.gather(TCG, lambda: FakeConn(None))
    assert facts["libvirt"]["reachable"] and facts["libvirt"]["domain_capabilities"] is None
    assert "no domain capabilities" in facts["libvirt"]["domain_capabilities_error"]
    assert _host.gather(TCG, None)["libvirt"]["reachable"] is False


@pytest.mark.parametrize("number,text", [(9000000, "9.0.0"), (7002022, "7.2.22"), (10010001, "10.10.1"), (0, None)])
def test_version_numbers(number, text):
    assert _host._version(number) == text

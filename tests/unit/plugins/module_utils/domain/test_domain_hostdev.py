"""hostdevs: PCI (VFIO), USB and mediated-device pass-through, and the IOMMU group check on fixture sysfs trees.

The trees are built here under tmp_path: sysfs names PCI devices by address (0000:03:00.1) and the
collection's file names may not contain ':' (ansible-test refuses them), as in test_host.py.
"""

import os
import shutil
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _host
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.device import DeviceManager
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec, validate_item
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import GOLDEN, golden

SPEC = DomainSpec()
VALIDATOR = shutil.which("virt-xml-validate")
NET, AUDIO, BRIDGE, USB_CTRL = 0x020000, 0x040300, 0x060400, 0x0c0330


def make_sysfs(root, groups=None, loose=None):
    """A sysfs tree: ``groups`` {group: {address: (driver or None, class)}}; ``loose`` devices in no group."""
    sys_dir = os.path.join(str(root), "sys")
    devices = os.path.join(sys_dir, "bus", "pci", "devices")
    os.makedirs(os.path.join(sys_dir, "kernel", "iommu_groups"), exist_ok=True)

    def device(address, driver, code, group=None):
        path = os.path.join(devices, address)
        os.makedirs(path)
        with open(os.path.join(path, "class"), "w") as handle:
            handle.write("0x%06x\n" % code)
        if driver:
            os.makedirs(os.path.join(sys_dir, "bus", "pci", "drivers", driver), exist_ok=True)
            os.symlink("../../drivers/%s" % driver, os.path.join(path, "driver"))
        if group is not None:
            os.symlink("../../../../kernel/iommu_groups/%s" % group, os.path.join(path, "iommu_group"))

    for group, members in (groups or {}).items():
        member_dir = os.path.join(sys_dir, "kernel", "iommu_groups", str(group), "devices")
        os.makedirs(member_dir)
        for address, (driver, code) in members.items():
            device(address, driver, code, group)
            os.symlink("../../../../bus/pci/devices/%s" % address, os.path.join(member_dir, address))
    for address, (driver, code) in (loose or {}).items():
        device(address, driver, code)
    return str(root)


@pytest.fixture
def local(host, tmp_path):
    """The fake host as a local QEMU connection whose sysfs is a tree under tmp_path."""
    host.local_files = True
    host.sysfs_root = str(tmp_path)
    return host


def plan_new(params, make_ctx, **kw):
    params = dict(dict(name="vft-hd-unit", vcpus=1, memory=256), **params)
    return SPEC.plan(params["name"], params, None, make_ctx(params["name"], creating=True, **kw))


def refused(params, make_ctx, **kw):
    with pytest.raises(VirtforgeError) as info:
        plan_new(params, make_ctx, **kw)
    return info.value


# ----------------------------------------------------------------------------- sysfs readers (shared with host_info)

def test_sysfs_readers_shared_with_host_info(tmp_path):
    root = make_sysfs(tmp_path, {12: {"0000:03:00.0": ("e1000e", NET), "0000:03:00.1": (None, NET)}},
                      loose={"0000:00:1f.0": ("lpc_ich", 0x060100)})
    assert _host.iommu_groups(root) == {"12": ["0000:03:00.0", "0000:03:00.1"]}
    assert _host.iommu_info(root)["groups"] == [dict(id=12, devices=["0000:03:00.0", "0000:03:00.1"])]
    assert _host.pci_device(root, "0000:03:00.0") == dict(address="0000:03:00.0", driver="e1000e",
                                                          class_code=NET, iommu_group="12")
    assert _host.pci_device(root, "0000:03:00.1")["driver"] is None
    assert _host.pci_device(root, "0000:00:1f.0")["iommu_group"] is None
    assert _host.pci_device(root, "0000:09:00.0") is None


# ----------------------------------------------------------------------------- the IOMMU group check

def test_safe_group_every_member_on_vfio(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {12: {"0000:03:00.0": ("vfio-pci", NET), "0000:03:00.1": ("vfio-pci", NET)}})
    plan = plan_new(dict(hostdevs=[dict(pci="0000:03:00.1")]), make_ctx)
    assert parse_xml(plan.after_xml).find("devices/hostdev/source/address").get("bus") == "0x03"
    assert local.warnings == []


def test_safe_group_with_a_bridge_and_members_on_no_driver_or_pci_stub(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {7: {"0000:00:1c.0": ("pcieport", BRIDGE), "0000:03:00.0": ("e1000e", NET),
                              "0000:03:00.1": (None, NET), "0000:03:00.2": ("pci-stub", AUDIO)}})
    # the device itself may be on a host driver: with managed=yes libvirt rebinds it to vfio-pci
    plan_new(dict(hostdevs=[dict(pci="03:00.0")]), make_ctx)
    assert local.warnings == []


def test_unsafe_member_names_group_member_driver_and_fix(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {12: {"0000:03:00.0": ("e1000e", NET), "0000:03:00.1": ("vfio-pci", NET),
                               "0000:03:00.2": ("snd_hda_intel", AUDIO), "0000:00:1c.0": ("pcieport", BRIDGE)}})
    err = refused(dict(hostdevs=[dict(usb=dict(bus=1, device=2)), dict(pci="0000:03:00.1")]), make_ctx)
    assert err.option == "hostdevs[1].pci"
    assert "IOMMU group 12" in err.msg
    assert "0000:03:00.0 (driver e1000e)" in err.msg and "0000:03:00.2 (driver snd_hda_intel)" in err.msg
    assert "pcieport" not in err.msg
    assert "vfio-pci" in err.fix and "vfio_bind with addresses: [0000:03:00.0]" in err.fix
    assert "whole group" in err.fix


def test_passing_the_whole_group_is_safe(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {12: {"0000:03:00.0": ("e1000e", NET), "0000:03:00.1": ("e1000e", NET)}})
    plan = plan_new(dict(hostdevs=[dict(pci="0000:03:00.0"), dict(pci="0000:03:00.1")]), make_ctx)
    assert len(parse_xml(plan.after_xml).findall("devices/hostdev")) == 2


def test_device_missing(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {12: {"0000:03:00.0": ("vfio-pci", NET)}})
    err = refused(dict(hostdevs=[dict(pci="0000:04:00.0")]), make_ctx)
    assert err.option == "hostdevs[0].pci" and "0000:04:00.0 does not exist" in err.msg
    assert "lspci -D" in err.fix and "iommu_check: false" in err.fix


def test_iommu_off(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, loose={"0000:03:00.0": ("e1000e", NET)})
    err = refused(dict(hostdevs=[dict(pci="0000:03:00.0")]), make_ctx)
    assert err.option == "hostdevs[0].pci" and "IOMMU is off" in err.msg
    assert "intel_iommu=on" in err.fix and "amd_iommu=on" in err.fix


def test_device_outside_every_iommu_group(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {1: {"0000:00:02.0": ("i915", 0x030000)}}, loose={"0000:03:00.0": ("e1000e", NET)})
    err = refused(dict(hostdevs=[dict(pci="0000:03:00.0")]), make_ctx)
    assert "does not cover it" in err.msg and "intel_iommu=on" in err.fix


def test_iommu_check_false_defines_with_a_warning(local, tmp_path, make_ctx):
    make_sysfs(tmp_path)  # IOMMU off, and the device is not there
    plan = plan_new(dict(hostdevs=[dict(pci="0000:81:00.0", iommu_check=False)]), make_ctx)
    assert parse_xml(plan.after_xml).find("devices/hostdev").get("type") == "pci"
    assert len(local.warnings) == 1
    assert local.warnings[0].startswith("hostdevs[0].pci: iommu_check is false: 0000:81:00.0 was not checked")


def test_remote_uri_skips_the_check_with_a_warning(host, make_ctx):
    host.uri = "qemu+ssh://kvm1/system"
    plan_new(dict(hostdevs=[dict(pci="0000:03:00.0")]), make_ctx)
    assert len(host.warnings) == 1
    assert "skipped" in host.warnings[0] and "qemu+ssh://kvm1/system" in host.warnings[0]


def test_unmanaged_device_must_already_be_on_vfio(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {3: {"0000:03:00.0": ("e1000e", NET)}, 4: {"0000:04:00.0": ("vfio-pci", NET)}})
    err = refused(dict(hostdevs=[dict(pci="0000:03:00.0", managed=False)]), make_ctx)
    assert err.option == "hostdevs[0].managed" and "bound to e1000e" in err.msg
    plan = plan_new(dict(hostdevs=[dict(pci="0000:04:00.0", managed=False)]), make_ctx)
    assert parse_xml(plan.after_xml).find("devices/hostdev").get("managed") == "no"


def test_a_bridge_is_not_passed_through(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {2: {"0000:00:1c.0": ("pcieport", BRIDGE)}})
    err = refused(dict(hostdevs=[dict(pci="00:1c.0")]), make_ctx)
    assert "PCI bridge" in err.msg


def test_errors_name_the_domains_item(local, tmp_path, make_ctx):
    make_sysfs(tmp_path)
    err = refused(dict(hostdevs=[dict(pci="0000:03:00.0")]), make_ctx, prefix="domains[2].")
    assert err.option == "domains[2].hostdevs[0].pci"


# ----------------------------------------------------------------------------- XML

GOLDEN_PARAMS = dict(
    name="vft-hd-golden", vcpus=1, memory=256, machine="q35",
    hostdevs=[dict(pci="0000:03:00.1"),
              dict(pci="81:00.0", managed=False, iommu_check=False),
              dict(usb=dict(vendor="0x046D", product="0xc52b")),
              dict(usb=dict(bus=1, device=4)),
              dict(mdev="4B20D080-1B54-4048-85B3-A6A62D165C01"),
              dict(mdev="8e4c7a2e-1a3c-4d7e-9f3a-2b1c0d9e8f7a", model="vfio-ccw")],
)


def validate(path):
    if VALIDATOR is None:
        pytest.fail("virt-xml-validate is missing: install libvirt-clients (make system-deps)")
    return subprocess.run([VALIDATOR, path, "domain"], capture_output=True, text=True, check=False)


def test_hostdevs_match_golden_and_libvirt_schema(make_ctx):
    assert plan_new(GOLDEN_PARAMS, make_ctx).after_xml == golden("hostdev.xml")
    result = validate(os.path.join(GOLDEN, "hostdev.xml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_exact_elements(make_ctx):
    root = parse_xml(plan_new(GOLDEN_PARAMS, make_ctx).after_xml)
    pci, unmanaged, usb_id, usb_addr, mdev, ccw = root.findall("devices/hostdev")
    assert dict(pci.attrib) == dict(mode="subsystem", type="pci", managed="yes")
    assert pci.find("driver").get("name") == "vfio"
    assert dict(pci.find("source/address").attrib) == dict(domain="0x0000", bus="0x03", slot="0x00", function="0x1")
    assert unmanaged.get("managed") == "no"
    assert [(e.tag, e.get("id")) for e in usb_id.find("source")] == [("vendor", "0x046d"), ("product", "0xc52b")]
    assert dict(usb_addr.find("source/address").attrib) == dict(bus="1", device="4")
    assert dict(mdev.attrib) == dict(mode="subsystem", type="mdev", model="vfio-pci")
    assert mdev.find("source/address").get("uuid") == "4b20d080-1b54-4048-85b3-a6a62d165c01"
    assert ccw.get("model") == "vfio-ccw"


def test_idempotent_on_the_produced_xml(make_ctx):
    xml = plan_new(GOLDEN_PARAMS, make_ctx).after_xml
    assert SPEC.plan(GOLDEN_PARAMS["name"], GOLDEN_PARAMS, xml, make_ctx(GOLDEN_PARAMS["name"])).changes == []


# The <hostdev> elements the lab's libvirt 9.0 stored (virsh dumpxml --inactive) for a domain the domain module
# defined with STORED_PARAMS (docs/devices.md, "Pass-through"): it adds guest addresses, managed='no' and
# display='off' on the mdev, and keeps <driver name='vfio'/>.
LIBVIRT_STORED = """<domain type='qemu'><name>vft-hd-stored</name><memory>131072</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os><devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'>
      <source>
        <vendor id='0x046d'/>
        <product id='0xc52b'/>
      </source>
      <address type='usb' bus='0' port='1'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'>
      <source>
        <address bus='1' device='4'/>
      </source>
      <address type='usb' bus='0' port='2'/>
    </hostdev>
    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='off'>
      <source>
        <address uuid='4b20d080-1b54-4048-85b3-a6a62d165c01'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </hostdev>
</devices></domain>"""
STORED_PARAMS = dict(name="vft-hd-stored", hostdevs=[
    dict(pci="0000:81:00.0", iommu_check=False), dict(usb=dict(vendor="0x046d", product="0xc52b")),
    dict(usb=dict(bus=1, device=4)), dict(mdev="4b20d080-1b54-4048-85b3-a6a62d165c01")])
SCSI_HOSTDEV = ("<hostdev mode='subsystem' type='scsi' managed='no'><source><adapter name='scsi_host0'/>"
                "<address bus='0' target='0' unit='0'/></source></hostdev></devices>")


def test_idempotent_on_what_libvirt_stores(make_ctx):
    plan = SPEC.plan("vft-hd-stored", STORED_PARAMS, LIBVIRT_STORED, make_ctx("vft-hd-stored"))
    assert plan.changes == []


def test_update_purge_and_hotplug(make_ctx):
    ctx = make_ctx("vft-hd-stored", running=True)
    params = dict(name="vft-hd-stored", purge_hostdevs=True, hostdevs=[
        dict(pci="0000:81:00.0", managed=False, iommu_check=False), dict(usb=dict(bus=2, device=3)),
        dict(mdev="8e4c7a2e-1a3c-4d7e-9f3a-2b1c0d9e8f7a")])
    plan = SPEC.plan("vft-hd-stored", params, LIBVIRT_STORED.replace("</devices>", SCSI_HOSTDEV), ctx)
    got = {(c.path, c.action): c.live for c in plan.changes}
    assert got == {
        ("hostdevs[0000:81:00.0]", "update"): False,                           # managed: a restart
        ("hostdevs[usb:bus2.device3]", "add"): True,                           # USB: hot-plugged
        ("hostdevs[mdev:8e4c7a2e-1a3c-4d7e-9f3a-2b1c0d9e8f7a]", "add"): False,  # mdev: at the next start
        ("hostdevs[usb:046d:c52b]", "remove"): True,
        ("hostdevs[usb:bus1.device4]", "remove"): True,
        ("hostdevs[mdev:4b20d080-1b54-4048-85b3-a6a62d165c01]", "remove"): False,
    }
    after = parse_xml(plan.after_xml)
    assert after.find("devices/hostdev[@type='pci']").get("managed") == "no"
    assert after.find("devices/hostdev[@type='scsi']") is not None  # not this group's: never purged
    assert len(after.findall("devices/hostdev")) == 4


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("item, option, text", [
    (dict(pci="3:00.1"), "hostdevs[0].pci", "is not a PCI address"),
    (dict(pci="0000:03:00.8"), "hostdevs[0].pci", "is not a PCI address"),
    (dict(pci="0000:03:20.0"), "hostdevs[0].pci", "is not a PCI address"),  # slot is 5 bits
    (dict(pci="0000:03:00.1", usb=dict(bus=1, device=2)), "hostdevs[0].usb", "only one of pci, usb, mdev"),
    (dict(usb=dict(bus=1, device=2), mdev="4b20d080-1b54-4048-85b3-a6a62d165c01"), "hostdevs[0].mdev", "only one"),
    (dict(managed=True), "hostdevs[0]", "needs one of pci, usb or mdev"),
    (dict(usb=dict(vendor="0x46d", product="0xc52b")), "hostdevs[0].usb.vendor", "is not a USB vendor id"),
    (dict(usb=dict(vendor="046d", product="0xc52b")), "hostdevs[0].usb.vendor", "is not a USB vendor id"),
    # YAML reads an unquoted 0x046d as 1133; Ansible hands the module the string "1133"
    (dict(usb=dict(vendor="1133", product="0xc52b")), "hostdevs[0].usb.vendor", "unquoted 0x046d in YAML"),
    (dict(usb=dict(vendor="0x046d", product="0xc52g")), "hostdevs[0].usb.product", "product id"),
    (dict(usb=dict(vendor="0x046d")), "hostdevs[0].usb.product", "go together"),
    (dict(usb=dict(vendor="0x046d", product="0xc52b", bus=1)), "hostdevs[0].usb.bus", "not both"),
    (dict(usb=dict(bus=1)), "hostdevs[0].usb.device", "go together"),
    (dict(usb=dict(bus=0, device=4)), "hostdevs[0].usb.bus", "start at 1"),
    (dict(usb=dict(bus=1, device=128)), "hostdevs[0].usb.device", "1..127"),
    (dict(usb={}), "hostdevs[0].usb", "vendor and product, or bus and device"),
    (dict(mdev="4b20d080-1b54-4048-85b3"), "hostdevs[0].mdev", "not the UUID of a mediated device"),
    (dict(mdev="4b20d080-1b54-4048-85b3-a6a62d165c01", managed=True), "hostdevs[0].managed", "only for pci"),
    (dict(pci="0000:03:00.1", model="vfio-pci"), "hostdevs[0].model", "only for mdev"),
    (dict(usb=dict(bus=1, device=2), iommu_check=False), "hostdevs[0].iommu_check", "only for pci"),
])
def test_bad_hostdev_input(item, option, text, make_ctx):
    err = refused(dict(hostdevs=[item]), make_ctx)
    assert err.option == option and text in err.msg, (err.option, err.msg)


def test_same_device_listed_twice_in_two_spellings(make_ctx):
    err = refused(dict(hostdevs=[dict(pci="03:00.1"), dict(pci="0000:03:00.1")]), make_ctx)
    assert err.option == "hostdevs[1]" and "listed twice" in err.msg


def test_bad_mdev_model_refused_by_the_option_spec():
    with pytest.raises(VirtforgeError) as info:
        validate_item(dict(name="vft-hd-x", hostdevs=[dict(mdev="4b20d080-1b54-4048-85b3-a6a62d165c01",
                                                           model="vfio-gpu")]), 0)
    assert info.value.option == "domains[0]" and "model" in info.value.msg and "vfio-ap" in info.value.msg


# ----------------------------------------------------------------------------- domain_device

class _Module(object):
    def __init__(self, **params):
        self.params = dict(dict(state="present", detach_timeout=30, device=None, devices=None), **params)
        self.check_mode = False


def test_domain_device_runs_the_same_check_naming_devices(local, tmp_path, make_ctx):
    make_sysfs(tmp_path, {12: {"0000:03:00.0": ("e1000e", NET), "0000:03:00.1": ("vfio-pci", NET)}})
    devices = [dict(kind="watchdog"), dict(kind="hostdev", pci="0000:03:00.1")]
    manager = DeviceManager(_Module(devices=devices))
    with pytest.raises(VirtforgeError) as info:
        manager.canonical(manager.items(), make_ctx("vft-hd-unit"))
    assert info.value.option == "devices[1].pci" and "IOMMU group 12" in info.value.msg
    # the whole group in one task is fine; and detaching (state=absent) checks nothing
    devices.append(dict(kind="hostdev", pci="0000:03:00.0"))
    manager = DeviceManager(_Module(devices=devices))
    assert [i for _i, i in manager.canonical(manager.items(), make_ctx("vft-hd-unit"))["hostdevs"]] == [
        dict(type="pci", source="0000:03:00.1", managed=True), dict(type="pci", source="0000:03:00.0", managed=True)]
    manager = DeviceManager(_Module(state="absent", devices=[dict(kind="hostdev", pci="0000:09:00.0")]))
    assert manager.canonical(manager.items(), make_ctx("vft-hd-unit"))["hostdevs"][0][1]["source"] == "0000:09:00.0"


def test_domain_device_iommu_check_false_warns_with_devices_name(local, tmp_path, make_ctx):
    make_sysfs(tmp_path)
    manager = DeviceManager(_Module(device=dict(kind="hostdev", pci="0000:81:00.0", iommu_check=False)))
    manager.canonical(manager.items(), make_ctx("vft-hd-unit"))
    assert local.warnings and local.warnings[0].startswith("devices[0].pci: iommu_check is false")


# ---------------------------------------------------------------- SR-IOV VFs as NICs (interfaces[].pci)
def test_vf_interface_xml_schema_and_idempotency(make_ctx, tmp_path):
    spec = SPEC
    params = dict(name="vft-vf", interfaces=[dict(pci="03:10.1", mac="52:54:00:0f:00:01", vlan=42, iommu_check=False),
                                             dict(network="vflab-net", mac="52:54:00:0f:00:02")])
    ctx = make_ctx("vft-vf", creating=True)
    xml = spec.plan("vft-vf", params, None, ctx).after_xml
    nic = parse_xml(xml).find("devices/interface[@type='hostdev']")
    assert nic.get("managed") == "yes" and nic.find("mac").get("address") == "52:54:00:0f:00:01"
    assert dict(nic.find("source/address").attrib) == dict(type="pci", domain="0x0000", bus="0x03", slot="0x10",
                                                           function="0x1")
    assert nic.find("vlan/tag").get("id") == "42" and nic.find("model") is None
    path = tmp_path / "vf.xml"
    path.write_text(xml)
    assert VALIDATOR, "virt-xml-validate is missing: install libvirt-clients (make system-deps)"
    result = subprocess.run([VALIDATOR, str(path), "domain"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert spec.plan("vft-vf", params, xml, make_ctx("vft-vf")).changes == []
    # the VLAN changes in place; the VF is a PCI device for the hot-plug slot count
    p = spec.plan("vft-vf", dict(params, interfaces=[dict(params["interfaces"][0], vlan=43)]), xml, make_ctx("vft-vf"))
    assert [c.path for c in p.changes] == ["interfaces[52:54:00:0f:00:01]"]
    group = {g.name: g for g in spec.groups}["interfaces"]
    assert group.needs_pci_slot(dict(type="hostdev"))


@pytest.mark.parametrize("nic, option, text", [
    (dict(pci="03:10"), "interfaces[0].pci", "not a PCI address"),
    (dict(type="hostdev"), "interfaces[0].pci", "needs the VF's PCI address"),
    (dict(pci="03:10.1", model="virtio"), "interfaces[0].model", "does not apply"),
    (dict(pci="03:10.1", bandwidth=dict(inbound=dict(average=100))), "interfaces[0].bandwidth", "does not apply"),
    (dict(pci="03:10.1", vlan=4095), "interfaces[0].vlan", "1..4094"),
    (dict(pci="03:10.1", network="vflab-net"), "interfaces[0].pci", "only one of"),
    (dict(network="vflab-net", vlan=5), "interfaces[0].vlan", "SR-IOV VF"),
])
def test_bad_vf_interfaces(nic, option, text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        SPEC.plan("x", dict(name="x", interfaces=[nic]), None, make_ctx("x", creating=True))
    assert info.value.option == option and text in info.value.msg


def test_vf_interface_takes_the_iommu_group_check(make_ctx, local, tmp_path):
    make_sysfs(tmp_path, groups={7: {"0000:03:10.1": ("iavf", NET), "0000:03:10.3": ("iavf", NET)}})
    error = refused(dict(interfaces=[dict(pci="0000:03:10.1")]), make_ctx)
    assert error.option == "interfaces[0].pci" and "IOMMU group 7" in error.msg and "0000:03:10.3 (driver iavf)" \
        in error.msg
    # both VFs of the group to this guest: fine
    plan_new(dict(interfaces=[dict(pci="0000:03:10.1"), dict(pci="0000:03:10.3")]), make_ctx)

"""Device groups written by the engine, compared with golden files and validated with libvirt's RNG schema."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import golden

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")

SPEC = DomainSpec()
VALIDATOR = shutil.which("virt-xml-validate")

DEVICES = dict(
    name="vft-dev-golden", vcpus=1, memory=256, machine="q35",
    controllers=[dict(type="scsi"), dict(type="sata", index=1), dict(type="usb", model="qemu-xhci")],
    disks=[dict(path="/var/lib/libvirt/images/root.qcow2", format="qcow2",
                iotune=dict(read_bytes_sec=10485760, write_bytes_sec=5242880, write_bytes_sec_max=10485760,
                            total_iops_sec=500)),
           dict(path="/var/lib/libvirt/images/data.raw", format="raw", bus="scsi"),
           dict(path="/var/lib/libvirt/images/old.raw", format="raw", bus="sata")],
    interfaces=[dict(network="default", mac="52:54:00:00:00:01",
                     bandwidth=dict(inbound=dict(average=1000, peak=2000, burst=1024, floor=500),
                                    outbound=dict(average=500))),
                dict(bridge="br0", mac="52:54:00:00:00:02", model="e1000e"),
                dict(bridge="br0", mac="52:54:00:00:00:03", model="rtl8139")],
    rngs=[dict(rate_bytes=1024, rate_period=1000)],
    watchdogs=[dict(model="i6300esb", action="poweroff")],
)


def created(params, make_ctx):
    return SPEC.plan(params["name"], params, None, make_ctx(params["name"], creating=True)).after_xml


def validate(path):
    if VALIDATOR is None:
        pytest.fail("virt-xml-validate is missing: install libvirt-clients (make system-deps)")
    return subprocess.run([VALIDATOR, path, "domain"], capture_output=True, text=True, check=False)


def test_devices_match_golden(make_ctx):
    assert created(DEVICES, make_ctx) == golden("devices.xml")


def test_devices_read_back_without_changes(make_ctx):
    xml = created(DEVICES, make_ctx)
    plan = SPEC.plan(DEVICES["name"], DEVICES, xml, make_ctx(DEVICES["name"]))
    assert plan.changes == []


@pytest.mark.parametrize("name", ["devices.xml", "full.xml", "minimal.xml"])
def test_golden_files_pass_libvirt_schema(name):
    result = validate(os.path.join(GOLDEN, name))
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_can_fail(tmp_path):
    root = parse_xml(golden("devices.xml"))
    root.find("devices/watchdog").set("model", "nosuch")
    bad = tmp_path / "bad.xml"
    from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import to_xml
    bad.write_text(to_xml(root))
    assert validate(str(bad)).returncode != 0


def test_default_libvirt_controllers_are_not_compared(make_ctx):
    pci = "<devices><controller type='pci' index='0' model='pcie-root'/>"
    xml = created(DEVICES, make_ctx).replace("<devices>", pci)
    plan = SPEC.plan("x", dict(name="x", controllers=[dict(type="scsi")], purge_controllers=True), xml, make_ctx("x"))
    assert sorted(c.path for c in plan.changes) == ["controllers[sata:1]", "controllers[usb:0]"]
    assert parse_xml(plan.after_xml).find("devices/controller[@type='pci']") is not None


@pytest.mark.parametrize("params, option", [
    (dict(controllers=[dict(type="sata", model="virtio-scsi")]), "controllers[0].model"),
    (dict(controllers=[dict(type="scsi", index=300)]), "controllers[0].index"),
    (dict(controllers=[dict(model="lsilogic")]), "controllers[0].type"),
    (dict(rngs=[dict(rate_bytes=-1)]), "rngs[0].rate_bytes"),
    (dict(rngs=[dict(rate_period=100)]), "rngs[0].rate_period"),
    (dict(watchdogs=[dict(model="ib700"), dict(model="ib700", action="none")]), "watchdogs[1]"),
])
def test_bad_device_input(params, option, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        created(dict(params, name="vft-dev-bad"), make_ctx)
    assert info.value.option == option


def _disks(bus, count, start=0):
    prefix = "hd" if bus == "ide" else "sd"
    return [dict(path="/i/%s%d.raw" % (bus, n), format="raw", bus=bus, dev="%s%s" % (prefix, chr(ord("a") + n)))
            for n in range(start, start + count)]


def test_ide_and_sata_limits_on_create(make_ctx):
    assert created(dict(name="x", disks=_disks("ide", 4)), make_ctx)
    with pytest.raises(VirtforgeError) as info:
        created(dict(name="x", disks=_disks("ide", 5)), make_ctx)
    assert info.value.option == "disks[4].bus" and "limit of 4" in info.value.msg
    assert created(dict(name="x", disks=_disks("sata", 6)), make_ctx)
    with pytest.raises(VirtforgeError) as info:
        created(dict(name="x", disks=[dict(path="/i/v.raw", format="raw")] + _disks("sata", 7)), make_ctx)
    assert info.value.option == "disks[7].bus" and "limit of 6" in info.value.msg


def test_limits_count_the_disks_already_there(make_ctx):
    xml = created(dict(name="x", disks=_disks("ide", 3)), make_ctx)
    ctx = make_ctx("x")
    SPEC.plan("x", dict(name="x", disks=_disks("ide", 1, start=3)), xml, ctx)  # 4th: fine
    with pytest.raises(VirtforgeError) as info:
        SPEC.plan("x", dict(name="x", disks=_disks("ide", 2, start=3)), xml, make_ctx("x"))
    assert info.value.option == "disks[1].bus" and "5 IDE devices" in info.value.msg
    # a second SATA controller in the XML doubles the SATA ports
    xml = created(dict(name="y", disks=_disks("sata", 6), controllers=[dict(type="sata", index=1)]), make_ctx)
    SPEC.plan("y", dict(name="y", disks=_disks("sata", 2, start=6)), xml, make_ctx("y"))


LUN = dict(name="vft-dev-lun", vcpus=1, memory=256, controllers=[dict(type="scsi")],
           disks=[dict(path="/var/lib/libvirt/images/root.qcow2", format="qcow2"),
                  dict(device="lun", path="/dev/disk/by-id/wwn-0x600a0b80001", sgio="unfiltered",
                       reservations=True)])


def test_lun_matches_golden_and_schema(make_ctx, tmp_path):
    xml = created(LUN, make_ctx)
    assert xml == golden("lun.xml")
    disk = parse_xml(xml).find("devices/disk[@device='lun']")
    assert disk.get("type") == "block" and disk.get("sgio") == "unfiltered"
    assert disk.find("driver").get("type") == "raw" and disk.find("target").get("bus") == "scsi"
    assert disk.find("source/reservations").get("managed") == "yes"
    result = validate(os.path.join(GOLDEN, "lun.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert SPEC.plan(LUN["name"], LUN, xml, make_ctx(LUN["name"])).changes == []


@pytest.mark.parametrize("disk, option, text", [
    (dict(device="lun", path="/var/lib/libvirt/images/x.raw"), "disks[0].path", "is a file"),
    (dict(device="lun", path="/dev/sdx", format="qcow2"), "disks[0].format", "raw"),
    (dict(device="lun", path="/dev/sdx", bus="virtio"), "disks[0].bus", "scsi bus"),
    (dict(device="lun"), "disks[0].path", "host block device"),
    (dict(path="/i/a.raw", sgio="unfiltered"), "disks[0].sgio", "only for device: lun"),
])
def test_lun_refusals(disk, option, text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        created(dict(name="vft-dev-bad", disks=[disk]), make_ctx)
    assert info.value.option == option and text in info.value.msg


class _Conn(object):
    def __init__(self, version):
        self.version = version

    def getLibVersion(self):
        return self.version


def test_unfiltered_sgio_refused_where_libvirt_dropped_it(host, make_ctx):
    lun = dict(name="vft-dev-bad", disks=[dict(device="lun", path="/dev/sdx", sgio="unfiltered")])
    host.conn = _Conn(9000000)
    with pytest.raises(VirtforgeError) as info:
        created(lun, make_ctx)
    assert info.value.option == "disks[0].sgio" and "libvirt 9.0.0" in info.value.msg
    host.conn = _Conn(8000000)
    assert "sgio=\"unfiltered\"" in created(lun, make_ctx)


MULTIPATH = dict(
    name="vft-dev-mpath", vcpus=1, memory=256,
    disks=[dict(path="/var/lib/libvirt/images/root.qcow2", format="qcow2"),
           dict(path="/var/lib/libvirt/images/lun.raw", format="raw", bus="scsi", cache="none", shareable=True,
                wwn="0x5000C50015EA71AC", serial="vf-lun-1"),
           dict(path="/var/lib/libvirt/images/lun.raw", format="raw", bus="scsi", cache="none", shareable=True,
                wwn="5000c50015ea71ac", serial="vf-lun-1")],
)


def test_two_scsi_paths_to_one_lun(make_ctx, tmp_path):
    """serial, wwn and shareable: written, valid for libvirt's schema, read back without changes."""
    xml = created(MULTIPATH, make_ctx)
    disks = parse_xml(xml).findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "sda", "sdb"]
    for disk in disks[1:]:
        assert disk.findtext("wwn") == "5000c50015ea71ac" and disk.findtext("serial") == "vf-lun-1"
        assert disk.find("shareable") is not None
    assert disks[0].find("shareable") is None and disks[0].find("wwn") is None
    path = tmp_path / "mpath.xml"
    path.write_text(xml)
    result = validate(str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert SPEC.plan(MULTIPATH["name"], MULTIPATH, xml, make_ctx(MULTIPATH["name"])).changes == []
    # a changed WWN is a change (one that needs a restart), and taking shareable away removes the element
    changed = dict(MULTIPATH, disks=[dict(d) for d in MULTIPATH["disks"]])
    changed["disks"][2] = dict(changed["disks"][2], dev="sdb", wwn="5000c50015ea71ad", shareable=False)
    plan = SPEC.plan(MULTIPATH["name"], changed, xml, make_ctx(MULTIPATH["name"]))
    assert [c.path for c in plan.changes] == ["disks[sdb]"]
    after = parse_xml(plan.after_xml).xpath("devices/disk[target/@dev='sdb']")[0]
    assert after.findtext("wwn") == "5000c50015ea71ad" and after.find("shareable") is None


@pytest.mark.parametrize("disk, option, text", [
    (dict(path="/i/a.raw", bus="scsi", wwn="5000c50015ea71a"), "disks[0].wwn", "16 hexadecimal digits"),
    (dict(path="/i/a.raw", bus="scsi", wwn="5000c50015ea71ag"), "disks[0].wwn", "not a WWN"),
    (dict(path="/i/a.raw", bus="virtio", wwn="5000c50015ea71ac"), "disks[0].wwn", "scsi or ide bus"),
    (dict(path="/i/a.qcow2", format="qcow2", bus="scsi", shareable=True), "disks[0].shareable", "must be raw"),
    (dict(path="/i/a.raw", serial="bad/serial"), "disks[0].serial", "not a disk serial"),
    (dict(path="/i/a.raw", serial="x" * 37), "disks[0].serial", "not a disk serial"),
])
def test_disk_identity_refusals(disk, option, text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        created(dict(name="vft-dev-bad", disks=[disk]), make_ctx)
    assert info.value.option == option and text in info.value.msg

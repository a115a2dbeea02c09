"""The domain_device module against libvirt's test:///default driver (one fresh driver per connection)."""

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.modules import domain_device as device_module

libvirt = pytest.importorskip("libvirt")


class Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture
def conn(monkeypatch):
    c = libvirt.open("test:///default")
    monkeypatch.setattr(_libvirt, "connect", lambda uri=None, readonly=False: c)

    def exit_json(self, **kw):
        raise Exit("exit", kw)

    def fail_json(self, **kw):
        raise Exit("fail", kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: None)
    # a stopped domain next to the running "test" domain of the driver
    c.defineXML("<domain type='test'><name>vft-dev-off</name><memory>131072</memory><os><type>hvm</type></os>"
                "<devices><interface type='network'><mac address='52:54:00:de:71:99'/>"
                "<source network='default'/></interface></devices></domain>")
    yield c
    c.lookupByName("vft-dev-off").undefine()


def run(args, check=False):
    args = dict(args, uri="test:///default")
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            device_module.main()
    return info.value


def ok(args, **kw):
    res = run(args, **kw)
    assert res.kind == "exit", res.result
    return res.result


def fail(args, **kw):
    res = run(args, **kw)
    assert res.kind == "fail", res.result
    return res.result


def inactive(conn, name):
    return conn.lookupByName(name).XMLDesc(2)


DISK = dict(kind="disk", dev="vdb", path="/guest/data.qcow2", format="qcow2")
NIC = dict(kind="interface", mac="52:54:00:DE:71:01", network="default")


def test_config_four_steps_and_detach(conn):
    before = inactive(conn, "vft-dev-off")
    args = dict(name="vft-dev-off", devices=[DISK, NIC])
    first = ok(args, check=True)
    assert first["changed"] and first["scopes"] == ["config"]
    assert inactive(conn, "vft-dev-off") == before
    assert [c["device"] for c in first["changes"]] == ["devices[0]", "devices[1]"]
    assert ok(args)["changed"]
    xml = inactive(conn, "vft-dev-off")
    assert "/guest/data.qcow2" in xml and "52:54:00:de:71:01" in xml
    assert not ok(args, check=True)["changed"]
    assert not ok(args)["changed"]
    # an update in place: only what the item sets is compared
    upd = ok(dict(name="vft-dev-off", device=dict(DISK, cache="none")))
    assert upd["changed"] and upd["changes"][0]["action"] == "update"
    assert upd["changes"][0]["after"] == {"cache": "none"}
    gone = ok(dict(name="vft-dev-off", state="absent", devices=[dict(kind="disk", dev="vdb"),
                                                                dict(kind="interface", mac="52:54:00:de:71:01")]))
    assert [c["action"] for c in gone["changes"]] == ["remove", "remove"]
    assert "/guest/data.qcow2" not in inactive(conn, "vft-dev-off")
    assert not ok(dict(name="vft-dev-off", state="absent", device=dict(kind="disk", dev="vdb")))["changed"]


def test_live_target_needs_a_running_domain(conn):
    res = fail(dict(name="vft-dev-off", target="live", device=DISK))
    assert res["msg"].startswith("target: domain vft-dev-off is not running")


def test_running_domain_plans_both_scopes_and_refuses_sata_live(conn):
    res = ok(dict(name="test", device=DISK), check=True)
    assert res["scopes"] == ["config", "live"]
    live = [c for c in res["changes"] if c["scope"] == "live"]
    assert live and live[0]["live"] is True and not res["restart_required"]
    sata = dict(DISK, dev="sdb", bus="sata")
    res = ok(dict(name="test", device=sata), check=True)
    assert res["restart_required"]
    before = inactive(conn, "test")
    res = fail(dict(name="test", target="live", device=sata))
    assert res["msg"].startswith("devices[0]: disks[sdb] cannot be changed on the running domain")
    assert inactive(conn, "test") == before


@pytest.mark.parametrize("devices, option, text", [
    ([dict(kind="floppy")], "devices[0].kind", "unknown device kind"),
    ([dict(kind="disk", path="/guest/x")], "devices[0].dev", "needs dev"),
    ([DISK, dict(DISK, dev="vdc", bus="floppy")], "devices[1]", "bus"),
    ([dict(DISK, path="rel.qcow2")], "devices[0].path", "not an absolute path"),
    ([dict(DISK, dev="x1")], "devices[0].dev", "not a disk target name"),
    ([dict(NIC, mac="01:00:5e:00:00:01")], "devices[0].mac", "not a unicast MAC"),
    ([DISK, dict(NIC, mac="52:54:00:de:71:99")], "devices[1].mac", "already used by domain vft-dev-off"),
    ([dict(NIC, network="nosuch")], "devices[0].network", "does not exist"),
    ([DISK, dict(DISK)], "devices[1]", "listed twice"),
    ([dict(DISK, size="1G")], "devices[0]", "size"),
    ([], "devices", "nothing to do"),
])
def test_bad_input_changes_nothing(conn, devices, option, text):
    before = inactive(conn, "test")
    res = fail(dict(name="test", devices=devices))
    assert res.get("option") == option, res
    assert text in res["msg"]
    assert inactive(conn, "test") == before


def test_device_and_devices_exclusive(conn):
    res = fail(dict(name="test", device=DISK, devices=[NIC]))
    assert "mutually exclusive" in res["msg"]


def test_unknown_domain(conn):
    res = fail(dict(name="vft-dev-nosuch", device=DISK))
    assert res["option"] == "name"


def test_controller_rng_watchdog_kinds(conn):
    args = dict(name="vft-dev-off", devices=[dict(kind="controller", type="scsi"),
                                             dict(kind="rng", rate_bytes=2048),
                                             dict(kind="watchdog", action="poweroff")])
    res = ok(args)
    assert [c["path"] for c in res["changes"]] == ["controllers[scsi:0]", "rngs[/dev/urandom]", "watchdogs[i6300esb]"]
    xml = inactive(conn, "vft-dev-off")
    assert "virtio-scsi" in xml and "<rate bytes='2048'/>" in xml and "action='poweroff'" in xml
    assert not ok(args)["changed"]
    gone = ok(dict(name="vft-dev-off", state="absent", devices=[dict(kind="rng"), dict(kind="watchdog")]))
    assert [c["action"] for c in gone["changes"]] == ["remove", "remove"]
    assert "<rng" not in inactive(conn, "vft-dev-off") and "<watchdog" not in inactive(conn, "vft-dev-off")
    res = fail(dict(name="vft-dev-off", device=dict(kind="controller", type="sata", model="lsilogic")))
    assert res["option"] == "devices[0].model"


def test_fifth_ide_disk_refused_naming_the_device(conn):
    disks = [dict(kind="disk", dev="hd%s" % c, bus="ide", path="/guest/%s.raw" % c, format="raw") for c in "abcd"]
    ok(dict(name="vft-dev-off", target="config", devices=disks))
    before = inactive(conn, "vft-dev-off")
    res = fail(dict(name="vft-dev-off", devices=[NIC, dict(kind="disk", dev="hde", bus="ide", path="/guest/e.raw")]))
    assert res["option"] == "devices[1].bus" and "5 IDE devices exceed the limit of 4" in res["msg"]
    assert inactive(conn, "vft-dev-off") == before


def test_hostdev_kind(conn, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    args = dict(name="vft-dev-off", devices=[dict(kind="hostdev", pci="03:00.1"),
                                             dict(kind="hostdev", usb=dict(vendor="0x046d", product="0xc52b"))])
    res = ok(args)
    assert [c["path"] for c in res["changes"]] == ["hostdevs[0000:03:00.1]", "hostdevs[usb:046d:c52b]"]
    # test:///default is not this machine's QEMU: the IOMMU group check is skipped, and said so
    assert any("IOMMU group check of 0000:03:00.1 was skipped" in w for w in warnings)
    xml = inactive(conn, "vft-dev-off")
    assert "bus='0x03'" in xml and "<vendor id='0x046d'/>" in xml
    assert not ok(args)["changed"]
    gone = ok(dict(name="vft-dev-off", state="absent", device=dict(kind="hostdev", pci="0000:03:00.1")))
    assert [c["action"] for c in gone["changes"]] == ["remove"] and "bus='0x03'" not in inactive(conn, "vft-dev-off")
    res = fail(dict(name="vft-dev-off", device=dict(kind="hostdev", pci="0000:03:00.1", usb=dict(bus=1, device=2))))
    assert res["option"] == "devices[0].usb" and "only one of pci, usb, mdev" in res["msg"]

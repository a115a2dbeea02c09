"""The domain engine: model <-> XML round trips against golden files, and the compare/plan rules."""

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.devices import _dev_name, stable_mac
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import (
    DomainSpec, base_facts, item_argument_spec, module_argument_spec, parse_base_xml, validate_item,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml, to_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import golden

SPEC = DomainSpec()
FILLED_NAME = "vft-dom-golden"
FILLED_DISK = "/var/lib/virtforge-lab/pool/vft-dom-g.qcow2"

MINIMAL = dict(name="vft-dom-min", disks=[dict(path="/var/lib/libvirt/images/min.qcow2", format="qcow2")])
FULL = dict(
    name="vft-dom-full", uuid="0A1B2C3D4E5F60718293A4B5C6D7E8F9", title="Full", description="All options",
    vcpus=2, max_vcpus=4, cpu_model="qemu64", memory="1G", max_memory="2GiB", arch="x86_64", machine="q35",
    firmware="efi", boot=["cdrom", "hd"],
    disks=[dict(pool="images", volume="web.qcow2", cache="none", io="native", discard="unmap"),
           dict(path="/var/lib/libvirt/images/data.raw", format="raw", bus="scsi"),
           dict(device="cdrom", path="/srv/iso/debian.iso")],
    interfaces=[dict(network="default"), dict(bridge="br0", mac="52:54:00:AA:BB:CC", model="e1000e"),
                dict(type="user")],
    graphics="vnc", tags=["web", "prod"], serial_console=True, guest_agent=True, domain_type="kvm")
# What the libvirt_filled.xml golden file was defined from (dumped by libvirt 9.0 --inactive).
FILLED = dict(name=FILLED_NAME, vcpus=1, max_vcpus=2, memory=256, machine="pc",
              disks=[dict(path=FILLED_DISK), dict(device="cdrom")], interfaces=[dict(network="vflab-net")],
              graphics="vnc", tags=["web"])


def create(params, make_ctx):
    ctx = make_ctx(params["name"], creating=True)
    return SPEC.plan(params["name"], params, None, ctx)


def update(params, xml, make_ctx, running=False):
    ctx = make_ctx(params["name"], running=running)
    return SPEC.plan(params["name"], params, xml, ctx)


def canon(xml):
    return to_xml(parse_xml(xml))


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("params,golden_file", [(MINIMAL, "minimal.xml"), (FULL, "full.xml")])
def test_model_to_xml_matches_golden(params, golden_file, make_ctx):
    plan = create(params, make_ctx)
    assert plan.action == "create"
    assert canon(plan.after_xml) == canon(golden(golden_file))


@pytest.mark.parametrize("params,golden_file", [(MINIMAL, "minimal.xml"), (FULL, "full.xml"),
                                                (FILLED, "libvirt_filled.xml")])
def test_xml_to_model_round_trip(params, golden_file, make_ctx):
    """Reading the golden XML back gives exactly what the options asked for: no change."""
    plan = update(params, golden(golden_file), make_ctx)
    assert plan.changes == []
    assert not plan.changed
    assert plan.after_xml == plan.before_xml


def test_current_reads_canonical_values(make_ctx):
    root = parse_xml(golden("full.xml"))
    ctx = make_ctx("vft-dom-full")
    assert SPEC.group("memory").current(root, ctx) == dict(memory=1024 ** 3, max_memory=2 * 1024 ** 3)
    assert SPEC.group("cpu").current(root, ctx) == dict(vcpus=2, max_vcpus=4, cpu_mode="custom", cpu_model="qemu64")
    want_os = dict(arch="x86_64", machine="pc-q35-7.2", firmware="efi", secure_boot=False, boot=["cdrom", "hd"])
    assert SPEC.group("os").current(root, ctx) == want_os
    assert SPEC.group("tags").current(root, ctx) == dict(tags=["prod", "web"])
    nics = SPEC.group("interfaces").current(root, ctx)["items"]
    assert [n["mac"] for n in nics][1] == "52:54:00:aa:bb:cc"
    disks = SPEC.group("disks").current(root, ctx)["items"]
    assert [(d["dev"], d["bus"], d["device"]) for d in disks] == [
        ("vda", "virtio", "disk"), ("sda", "scsi", "disk"), ("sdb", "sata", "cdrom")]
    assert disks[2]["readonly"] is True


# ------------------------------------------------------------------ compare rules
def test_libvirt_filled_defaults_do_not_diff(make_ctx):
    """Addresses, controllers, aliases, emulator, cpu model libvirt added: no change for the same options."""
    xml = golden("libvirt_filled.xml")
    assert "<address" in xml and "<controller" in xml and "<cpu" in xml
    plan = update(FILLED, xml, make_ctx)
    assert plan.changes == []


def test_live_xml_with_aliases_does_not_diff(make_ctx):
    xml = golden("libvirt_filled.xml").replace("<driver name='qemu' type='qcow2'/>",
                                               "<driver name='qemu' type='qcow2'/><alias name='virtio-disk0'/>")
    xml = xml.replace("<source network='vflab-net'/>",
                      "<source network='vflab-net' portid='x' bridge='vfbr0'/><target dev='vnet3'/>")
    assert update(FILLED, xml, make_ctx, running=True).changes == []


def test_mac_case_and_units_are_canonical(make_ctx):
    xml = golden("libvirt_filled.xml")
    upper = xml.replace("52:54:00:f2:79:5e", "52:54:00:F2:79:5E")
    upper = upper.replace("<memory unit='KiB'>262144</memory>", "<memory unit='MiB'>256</memory>")
    upper = upper.replace("<currentMemory unit='KiB'>262144</currentMemory>",
                          "<currentMemory unit='MiB'>256</currentMemory>")
    assert upper.count("MiB") == 2 and "F2:79:5E" in upper
    params = dict(FILLED, memory="256MiB", interfaces=[dict(network="vflab-net", mac="52:54:00:F2:79:5E")])
    assert update(params, upper, make_ctx).changes == []
    for memory in (256, "256M", "256 MiB", "0.25GiB", "268435456B"):
        assert update(dict(FILLED, memory=memory), xml, make_ctx).changes == [], memory


def test_only_what_the_user_set_is_compared(make_ctx):
    xml = golden("libvirt_filled.xml")
    # no options but the name: nothing to change, even though defaults (512 MiB, no graphics...) differ
    assert update(dict(name=FILLED_NAME), xml, make_ctx).changes == []
    # one option: one change, nothing else touched
    plan = update(dict(name=FILLED_NAME, memory=320), xml, make_ctx)
    assert [(c.path, c.before, c.after) for c in plan.changes] == [
        ("memory.memory", 256 * 1024 ** 2, 320 * 1024 ** 2),
        ("memory.max_memory", 256 * 1024 ** 2, 320 * 1024 ** 2)]
    before, after = parse_xml(plan.before_xml), parse_xml(plan.after_xml)
    for node in ("memory", "currentMemory"):
        after.find(node).text = before.find(node).text
    assert to_xml(before) == to_xml(after)


def test_machine_alias_matches_canonical(make_ctx):
    assert update(dict(name=FILLED_NAME, machine="pc"), golden("libvirt_filled.xml"), make_ctx).changes == []
    changes = update(dict(name=FILLED_NAME, machine="q35"), golden("libvirt_filled.xml"), make_ctx).changes
    assert [(c.path, c.after) for c in changes] == [("os.machine", "pc-q35-7.2")]


def test_live_and_restart_classification(make_ctx):
    xml = golden("libvirt_filled.xml")
    plan = update(dict(name=FILLED_NAME, vcpus=2, title="t", tags=["a"], memory=256,
                       interfaces=[dict(network="vflab-net"), dict(network="default")]), xml, make_ctx, running=True)
    assert {c.path: c.live for c in plan.changes} == {
        "identity.title": True, "cpu.vcpus": True, "tags.tags": True,
        "interfaces[%s]" % stable_mac(FILLED_NAME, 1): True}
    assert not plan.restart_required
    # above the maximum: the maximum is raised too, and the whole group needs a restart
    plan = update(dict(name=FILLED_NAME, vcpus=3), xml, make_ctx, running=True)
    assert {c.path: c.live for c in plan.changes} == {"cpu.vcpus": False, "cpu.max_vcpus": False}
    assert plan.restart_required
    # a sata disk cannot be hot-plugged; a virtio one can
    plan = update(dict(name=FILLED_NAME, disks=[dict(path="/x.raw", bus="sata", dev="sdc"),
                                                dict(path="/y.raw", dev="vdb")]), xml, make_ctx, running=True)
    assert {c.path: c.live for c in plan.changes} == {"disks[sdc]": False, "disks[vdb]": True}
    # not running: live is None (nothing to apply live), no restart
    plan = update(dict(name=FILLED_NAME, graphics="none"), xml, make_ctx)
    assert [c.live for c in plan.changes] == [None] and not plan.restart_required


def test_purge_lists(make_ctx):
    xml = golden("libvirt_filled.xml")
    params = dict(name=FILLED_NAME, disks=[dict(path=FILLED_DISK)])
    assert update(params, xml, make_ctx).changes == []
    plan = update(dict(params, purge_disks=True), xml, make_ctx)
    assert [(c.path, c.action) for c in plan.changes] == [("disks[sda]", "remove")]
    assert "device='cdrom'" not in plan.after_xml and 'device="cdrom"' not in plan.after_xml


def test_disk_auto_names_and_formats(make_ctx):
    plan = create(dict(name="vft-dom-d", disks=[
        dict(path="/a.qcow2"), dict(path="/b.raw", dev="vda"), dict(path="/c", bus="sata"),
        dict(path="/d", bus="ide"), dict(pool="images", volume="web.qcow2")]), make_ctx)
    root = parse_xml(plan.after_xml)
    devs = [(d.find("target").get("dev"), d.find("driver").get("type")) for d in root.iterfind("devices/disk")]
    assert devs == [("vdb", "qcow2"), ("vda", "raw"), ("sda", "raw"), ("hda", "raw"), ("vdc", "qcow2")]
    assert [_dev_name("vd", i) for i in (0, 25, 26, 27)] == ["vda", "vdz", "vdaa", "vdab"]


def test_stable_mac():
    mac = stable_mac("web1", 0)
    assert mac == stable_mac("web1", 0) and mac.startswith("52:54:00:")
    assert mac != stable_mac("web1", 1) and mac != stable_mac("web2", 0)


def test_tags_compare_as_set(make_ctx):
    xml = golden("full.xml")
    params = dict(name="vft-dom-full", tags=["web", "prod", "web"])
    assert update(params, xml, make_ctx).changes == []
    plan = update(dict(name="vft-dom-full", tags=[]), xml, make_ctx)
    assert [(c.before, c.after) for c in plan.changes] == [(["prod", "web"], [])]
    assert "vf:tag" not in plan.after_xml


def test_firmware_and_boot_changes(make_ctx):
    plan = update(dict(name="vft-dom-full", firmware="bios", boot=["hd"]), golden("full.xml"), make_ctx)
    assert sorted(c.path for c in plan.changes) == ["os.boot", "os.firmware"]
    os_node = parse_xml(plan.after_xml).find("os")
    assert os_node.get("firmware") is None and [b.get("dev") for b in os_node.iterfind("boot")] == ["hd"]


def test_secure_boot_create_and_compare(make_ctx):
    plan = create(dict(MINIMAL, secure_boot=True), make_ctx)
    root = parse_xml(plan.after_xml)
    os_node = root.find("os")
    assert os_node.get("firmware") == "efi" and "q35" in os_node.find("type").get("machine")
    assert {f.get("name"): f.get("enabled") for f in os_node.iterfind("firmware/feature")} == {
        "secure-boot": "yes", "enrolled-keys": "yes"}
    assert root.find("features/smm").get("state") == "on"
    # read back: no change; off is a change that keeps UEFI and asks for firmware without Secure Boot
    assert update(dict(MINIMAL, secure_boot=True), plan.after_xml, make_ctx).changes == []
    off = update(dict(MINIMAL, secure_boot=False), plan.after_xml, make_ctx)
    assert [(c.path, c.before, c.after) for c in off.changes] == [("os.secure_boot", True, False)]
    assert [f.get("enabled") for f in parse_xml(off.after_xml).iterfind("os/firmware/feature")] == ["no", "no"]
    # a domain libvirt started on a Secure Boot build (<loader secure='yes'>) reads as on
    started = plan.after_xml.replace("<os firmware=\"efi\">", "<os firmware=\"efi\"><loader secure=\"yes\"/>")
    started = started.replace("<firmware>", "<x>").replace("</firmware>", "</x>")
    assert SPEC.group("os").current(parse_xml(started), None)["secure_boot"]


# the <os> of a Secure Boot domain as libvirt 9.2 and later store it: the firmware chosen at define time
STORED_SB = ('''<os firmware="efi"><type arch="x86_64" machine="pc-q35-7.2">hvm</type><firmware>'''
             '''<feature enabled="yes" name="enrolled-keys"/><feature enabled="yes" name="secure-boot"/></firmware>'''
             '''<loader readonly="yes" secure="yes" type="pflash">/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>'''
             '''<nvram template="/usr/share/OVMF/OVMF_VARS_4M.ms.fd">/var/lib/libvirt/qemu/nvram/x_VARS.fd</nvram>'''
             '''<boot dev="hd"/></os>''')


def _with_os(xml, os_xml):
    root = parse_xml(xml)
    root.replace(root.find("os"), parse_xml(os_xml))
    return to_xml(root)


def test_secure_boot_off_on_a_stored_firmware_choice(make_ctx):
    xml = _with_os(create(MINIMAL, make_ctx).after_xml, STORED_SB)
    assert update(dict(MINIMAL, secure_boot=True), xml, make_ctx).changes == []
    off = parse_xml(update(dict(MINIMAL, secure_boot=False), xml, make_ctx).after_xml).find("os")
    # the old build and template go (a template that does not match filters every candidate out); the store stays
    assert off.find("loader") is None
    assert off.find("nvram").attrib == {} and off.find("nvram").text.endswith("x_VARS.fd")
    assert [f.get("enabled") for f in off.iterfind("firmware/feature")] == ["no", "no"]
    # another change in the group leaves the firmware choice alone
    boot = parse_xml(update(dict(MINIMAL, secure_boot=True, boot=["cdrom", "hd"]), xml, make_ctx).after_xml)
    assert boot.find("os/loader").text.endswith("OVMF_CODE_4M.ms.fd")
    assert boot.find("os/nvram").get("template").endswith("OVMF_VARS_4M.ms.fd")


def test_secure_boot_on_a_firmware_given_by_path_is_refused(make_ctx):
    os_xml = ('''<os><type arch="x86_64" machine="pc-q35-7.2">hvm</type>'''
              '''<loader readonly="yes" secure="yes" type="pflash">/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>'''
              '''</os>''')
    xml = _with_os(create(MINIMAL, make_ctx).after_xml, os_xml)
    with pytest.raises(VirtforgeError, match="set by path") as err:
        update(dict(MINIMAL, secure_boot=False), xml, make_ctx)
    assert err.value.option == "secure_boot"


@pytest.mark.parametrize("params,text", [
    (dict(secure_boot=True, firmware="bios"), "Secure Boot is a UEFI feature"),
    (dict(secure_boot=True, machine="pc"), "needs a q35 machine"),
])
def test_secure_boot_refusals(params, text, make_ctx):
    with pytest.raises(VirtforgeError, match=text) as err:
        create(dict(MINIMAL, **params), make_ctx)
    assert err.value.option == "secure_boot"


def test_secure_boot_on_an_i440fx_domain_is_refused(make_ctx):
    with pytest.raises(VirtforgeError, match="needs a q35 machine"):
        update(dict(name=FILLED_NAME, secure_boot=True), golden("libvirt_filled.xml"), make_ctx)
    # asking for it off on a BIOS domain changes nothing
    assert update(dict(name=FILLED_NAME, secure_boot=False), golden("libvirt_filled.xml"), make_ctx).changes == []


def test_graphics_and_channels(make_ctx):
    xml = golden("libvirt_filled.xml")
    plan = update(dict(name=FILLED_NAME, graphics="spice", guest_agent=False, serial_console=False), xml, make_ctx)
    after = parse_xml(plan.after_xml)
    assert [g.get("type") for g in after.iterfind("devices/graphics")] == ["spice"]
    assert after.find("devices/graphics/listen").get("address") == "127.0.0.1"
    assert after.find("devices/channel") is None and after.find("devices/serial") is None
    assert update(dict(name=FILLED_NAME, graphics="vnc"), xml, make_ctx).changes == []


def test_uuid_cannot_change(make_ctx):
    with pytest.raises(VirtforgeError, match="uuid: .*cannot be changed"):
        update(dict(name="vft-dom-full", uuid="11111111-2222-3333-4444-555555555555"), golden("full.xml"), make_ctx)
    assert update(dict(name="vft-dom-full", uuid="0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"), golden("full.xml"),
                  make_ctx).changes == []


# ------------------------------------------------------------------ user XML as the base
def test_xml_base_on_create_keeps_its_values(make_ctx):
    base = parse_base_xml(golden("libvirt_filled.xml").replace(FILLED_NAME, "vft-dom-x"), "xml")
    ctx = make_ctx("vft-dom-x", creating=True)
    ctx["base_root"] = base
    ctx["base_root_has"] = base_facts(base)
    plan = SPEC.plan("vft-dom-x", dict(name="vft-dom-x", memory=512), None, ctx)
    root = parse_xml(plan.after_xml)
    assert root.get("type") == "qemu" and root.findtext("vcpu") == "2"
    assert root.find("currentMemory").text == str(512 * 1024) and root.find("devices/video") is not None


def test_xml_base_on_update_compares_what_it_contains(make_ctx):
    xml = golden("libvirt_filled.xml")
    base = parse_base_xml(xml.replace("<currentMemory unit='KiB'>262144</currentMemory>",
                                      "<currentMemory unit='KiB'>131072</currentMemory>"), "xml")
    ctx = make_ctx(FILLED_NAME)
    ctx["base_root"] = base
    plan = SPEC.plan(FILLED_NAME, dict(name=FILLED_NAME), xml, ctx)
    assert [c.path for c in plan.changes] == ["memory.memory"]


def test_bad_xml_fails_cleanly():
    with pytest.raises(VirtforgeError, match="^xml: malformed XML"):
        parse_base_xml("<domain><name>x</name>", "xml")
    with pytest.raises(VirtforgeError, match="^domains\\[2\\].xml: the root element is <network>"):
        parse_base_xml("<network/>", "domains[2].xml")


# ------------------------------------------------------------------ bad input names the option
@pytest.mark.parametrize("params,option", [
    (dict(vcpus=0), "vcpus"), (dict(vcpus=-1), "vcpus"), (dict(memory="lots"), "memory"),
    (dict(memory="1KiB"), "memory"), (dict(vcpus=4, max_vcpus=2), "max_vcpus"),
    (dict(memory=512, max_memory=256), "max_memory"), (dict(cpu_mode="custom"), "cpu_model"),
    (dict(interfaces=[dict(network="nope")]), "interfaces[0].network"),
    (dict(interfaces=[dict(network="default", mac="01:00:5e:00:00:01")]), "interfaces[0].mac"),
    (dict(interfaces=[dict(network="default", bridge="br0")]), "interfaces[0].bridge"),
    (dict(interfaces=[dict(network="default", mac="52:54:00:00:00:01"),
                      dict(network="default", mac="52:54:00:00:00:01")]), "interfaces[1]"),
    (dict(disks=[dict(pool="nope", volume="x")]), "disks[0].pool"),
    (dict(disks=[dict(pool="images", volume="nope")]), "disks[0].volume"),
    (dict(disks=[dict(path="relative.qcow2")]), "disks[0].path"),
    (dict(disks=[dict(path="/a", pool="images", volume="web.qcow2")]), "disks[0].path"),
    (dict(disks=[dict(device="disk")]), "disks[0].path"),
    (dict(disks=[dict(path="/a", dev="xvd1")]), "disks[0].dev"),
    (dict(boot=["usb"]), "boot[0]"), (dict(uuid="nope"), "uuid"), (dict(tags=["a", " "]), "tags[1]"),
    (dict(graphics_listen="0.0.0.0"), "graphics_listen"),
])
def test_bad_input_names_the_option(params, option, make_ctx):
    ctx = make_ctx("vft-dom-bad", creating=True, prefix="domains[3].")
    with pytest.raises(VirtforgeError) as info:
        SPEC.plan("vft-dom-bad", dict(name="vft-dom-bad", **params), None, ctx)
    assert info.value.option == "domains[3]." + option, info.value.message


def test_argument_specs():
    top = module_argument_spec()
    item = item_argument_spec()
    assert top["state"]["default"] == "present" and "default" not in item["state"]
    assert "domains" in top and "domains" not in item and "uri" not in item
    assert top["disks"]["options"]["dev"] == dict(type="str")
    for key, value in item.items():  # group options carry no default: unset means "leave alone"
        assert "default" not in value, key
    assert validate_item(dict(name="a", vcpus="2"), 0)["vcpus"] == 2
    with pytest.raises(VirtforgeError, match=r"^domains\[1\]: .*vcpu"):
        validate_item(dict(name="a", vcpu=2), 1)


def test_live_xml_differences_that_are_not_pending_restarts(make_ctx):
    from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.manager import _pending
    from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import Change
    assert not _pending(Change("cpu.cpu_mode", "custom", "host-model", group="cpu", key="cpu_mode", live=False))
    assert not _pending(Change("memory.max_memory", 1000 * 1024 ** 2, 999 * 1024 ** 2 + 512, group="memory",
                               key="max_memory", live=False))
    assert _pending(Change("memory.max_memory", 512 * 1024 ** 2, 1024 ** 3, group="memory", key="max_memory",
                           live=False))
    assert _pending(Change("cpu.max_vcpus", 2, 4, group="cpu", key="max_vcpus", live=False))

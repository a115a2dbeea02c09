"""Free PCI slots before a hot-plug, and PCI controllers in the controllers option."""

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.buslimits import (
    check_hotplug_slots, free_pci_slots,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

SPEC = DomainSpec()
GROUPS = {g.name: g for g in SPEC.groups}

Q35 = """<domain><os><type machine='pc-q35-7.2'>hvm</type></os><devices>
<controller type='pci' index='0' model='pcie-root'/>
<controller type='pci' index='1' model='pcie-root-port'><address type='pci' bus='0x00' slot='0x01'/></controller>
<controller type='pci' index='2' model='pcie-root-port'><address type='pci' bus='0x00' slot='0x01' function='0x1'/>
</controller>
<controller type='pci' index='3' model='pcie-root-port'><address type='pci' bus='0x00' slot='0x01' function='0x2'/>
</controller>
<controller type='usb' index='0' model='qemu-xhci'><address type='pci' bus='0x02' slot='0x00'/></controller>
<memballoon model='virtio'><address type='pci' bus='0x01' slot='0x00'/></memballoon>
</devices></domain>"""


def _i440fx(used_slots):
    devices = "".join("<interface type='network'><address type='pci' bus='0x00' slot='0x%02x'/></interface>" % s
                      for s in used_slots)
    return ("<domain><os><type machine='pc-i440fx-7.2'>hvm</type></os><devices>"
            "<controller type='pci' index='0' model='pci-root'/>%s</devices></domain>" % devices)


def test_free_slots_q35_and_i440fx():
    assert free_pci_slots(parse_xml(Q35)) == (1, "q35")  # port 3 is free; ports 1 and 2 carry devices
    assert free_pci_slots(parse_xml(_i440fx([1, 2, 3]))) == (28, "i440fx")  # 32 - host bridge - 3
    assert free_pci_slots(parse_xml(_i440fx(range(1, 32)))) == (0, "i440fx")
    bridged = _i440fx(range(1, 32)).replace(
        "</devices>", "<controller type='pci' index='1' model='pci-bridge'/>"
                      "<disk><address type='pci' bus='0x01' slot='0x01'/></disk></devices>")
    assert free_pci_slots(parse_xml(bridged)) == (30, "i440fx")
    assert free_pci_slots(parse_xml("<domain><devices/></domain>")) == (None, None)  # nothing known: no check


class Change(object):
    def __init__(self, group, after, path, action="add", live=True):
        self.group, self.after, self.path, self.action, self.live = group, after, path, action, live


def test_only_slot_taking_live_adds_count():
    changes = [Change("interfaces", dict(mac="m1"), "interfaces[m1]"),
               Change("disks", dict(bus="scsi"), "disks[sdb]"),           # on a controller
               Change("hostdevs", dict(type="usb"), "hostdevs[usb:1]"),   # on the USB bus
               Change("watchdogs", dict(model="itco"), "watchdogs[itco]"),
               Change("disks", dict(bus="virtio"), "disks[vdc]", live=False)]  # definition only
    check_hotplug_slots(changes, GROUPS, parse_xml(Q35))  # one PCI device, one free port
    changes.append(Change("disks", dict(bus="virtio"), "disks[vdb]"))
    with pytest.raises(VirtforgeError) as info:
        check_hotplug_slots(changes, GROUPS, parse_xml(Q35))
    assert info.value.option == "disks[vdb]"
    assert "1 free PCIe root port(s)" in info.value.msg and "adds 2" in info.value.msg
    assert "index: 4, model: pcie-root-port}] gives 1 more" in info.value.fix
    with pytest.raises(VirtforgeError) as info:
        check_hotplug_slots([Change("rngs", dict(model="virtio"), "rngs[random]")], GROUPS,
                            parse_xml(_i440fx(range(1, 32))))
    assert "0 free PCI slot(s)" in info.value.msg and "pci-bridge" in info.value.fix


def test_pci_controllers_are_declared_but_never_purged(make_ctx):
    name = "vft-pci-unit"
    xml = SPEC.plan(name, dict(name=name, machine="q35", controllers=[dict(type="pci", index=8)]), None,
                    make_ctx(name, creating=True)).after_xml
    node = parse_xml(xml).find("devices/controller[@type='pci']")
    assert node.get("index") == "8" and node.get("model") == "pcie-root-port"
    plan = SPEC.plan(name, dict(name=name, controllers=[], purge_controllers=True), xml, make_ctx(name))
    assert plan.changes == []
    with pytest.raises(VirtforgeError) as info:
        SPEC.plan(name, dict(name=name, controllers=[dict(type="pci", index=0)]), xml, make_ctx(name))
    assert info.value.option == "controllers[0].index" and "root bus" in info.value.msg
    with pytest.raises(VirtforgeError) as info:
        SPEC.plan(name, dict(name=name, controllers=[dict(type="pci", index=3, model="lsilogic")]), xml,
                  make_ctx(name))
    assert info.value.option == "controllers[0].model"

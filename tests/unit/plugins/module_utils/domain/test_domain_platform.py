"""Balloon and TPM groups: XML (schema-checked), idempotency, live stats period, bad input."""

import shutil
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import golden

SPEC = DomainSpec()
NAME = "vft-dom-golden"


def plan(params, make_ctx, xml=None, running=False):
    return SPEC.plan(NAME, dict(params, name=NAME), xml if xml is not None else golden("libvirt_filled.xml"),
                     make_ctx(NAME, running=running))


@pytest.mark.parametrize("params", [
    dict(tpm={}, balloon=dict(stats_period=10, autodeflate=True, free_page_reporting=True)),
    dict(tpm=dict(model="tpm-tis", version="1.2")),
    dict(tpm=dict(backend="passthrough", model="tpm-tis")),
    dict(balloon=dict(model="none")),
    dict(iommu={}),
    dict(iommu=dict(intremap=True, caching_mode=True, eim=True, iotlb=True, aw_bits=48)),
    dict(iommu=dict(model="virtio")),
])
def test_xml_passes_the_schema_and_reads_back(params, make_ctx, tmp_path):
    p = plan(params, make_ctx)
    path = tmp_path / "d.xml"
    path.write_text(p.after_xml)
    validator = shutil.which("virt-xml-validate")
    assert validator, "virt-xml-validate is missing: install libvirt-clients (make system-deps)"
    result = subprocess.run([validator, str(path), "domain"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not plan(params, make_ctx, xml=p.after_xml).changes


def test_tpm_defaults_and_removal(make_ctx):
    p = plan(dict(tpm={}), make_ctx, running=True)
    tpm = parse_xml(p.after_xml).find("devices/tpm")
    assert tpm.get("model") == "tpm-crb" and dict(tpm.find("backend").attrib) == dict(type="emulator", version="2.0")
    assert p.restart_required
    p2 = plan(dict(tpm=dict(enabled=False)), make_ctx, xml=p.after_xml)
    assert [c.path for c in p2.changes] == ["tpm.enabled"] and parse_xml(p2.after_xml).find("devices/tpm") is None
    assert not plan(dict(tpm=dict(enabled=False)), make_ctx).changes


class FakeDomain(object):
    def __init__(self):
        self.calls = []

    def setMemoryStatsPeriod(self, period, flags):
        self.calls.append((period, flags))


def test_stats_period_is_live_the_rest_is_not(make_ctx):
    p = plan(dict(balloon=dict(stats_period=5)), make_ctx, running=True)
    assert [(c.path, c.live) for c in p.changes] == [("balloon.stats_period", True)]
    dom = FakeDomain()
    SPEC.apply_live(dom, p, make_ctx(NAME, running=True))
    assert dom.calls == [(5, 1)]
    p = plan(dict(balloon=dict(stats_period=5, autodeflate=True)), make_ctx, running=True)
    assert {c.live for c in p.changes} == {False} and p.restart_required


def test_iommu_written_changed_in_place_and_removed(make_ctx):
    p = plan(dict(iommu=dict(intremap=True, caching_mode=True)), make_ctx, running=True)
    root = parse_xml(p.after_xml)
    iommu = root.find("devices/iommu")
    assert iommu.get("model") == "intel"
    assert dict(iommu.find("driver").attrib) == dict(intremap="on", caching_mode="on")
    assert root.find("features/ioapic").get("driver") == "qemu"  # interrupt remapping needs the split I/O APIC
    assert p.restart_required and {c.live for c in p.changes} == {False}
    # only what is set is compared; a setting changed keeps the others
    assert not plan(dict(iommu=dict(model="intel")), make_ctx, xml=p.after_xml).changes
    p2 = plan(dict(iommu=dict(caching_mode=False)), make_ctx, xml=p.after_xml)
    assert [c.path for c in p2.changes] == ["iommu.caching_mode"]
    driver = parse_xml(p2.after_xml).find("devices/iommu/driver")
    assert dict(driver.attrib) == dict(intremap="on", caching_mode="off")
    p3 = plan(dict(iommu=dict(enabled=False)), make_ctx, xml=p2.after_xml)
    assert [c.path for c in p3.changes] == ["iommu.enabled"]
    assert parse_xml(p3.after_xml).find("devices/iommu") is None
    assert not plan(dict(iommu=dict(enabled=False)), make_ctx).changes


@pytest.mark.parametrize("params, option", [
    (dict(iommu=dict(model="virtio", caching_mode=True)), "iommu.caching_mode"),
    (dict(iommu=dict(eim=True)), "iommu.eim"),
    (dict(machine="pc", iommu={}), "iommu.model"),
    (dict(tpm=dict(backend="passthrough", version="2.0")), "tpm.version"),
    (dict(tpm=dict(device="/dev/tpm0")), "tpm.device"),
    (dict(tpm=dict(backend="passthrough", device="tpm0")), "tpm.device"),
    (dict(tpm=dict(version="1.2")), "tpm.model"),
    (dict(balloon=dict(stats_period=-1)), "balloon.stats_period"),
    (dict(balloon=dict(model="none", autodeflate=True)), "balloon.autodeflate"),
])
def test_bad_platform_input(params, option, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        plan(params, make_ctx)
    assert info.value.option == option

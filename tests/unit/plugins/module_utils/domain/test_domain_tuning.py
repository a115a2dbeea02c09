"""CPU and memory tuning groups: canonical values, XML (schema-checked), idempotency, live calls, bad input."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.tuning import (
    MEMORY_UNLIMITED_KIB, format_cpuset, parse_cpuset,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import GOLDEN, golden

SPEC = DomainSpec()
NAME = "vft-dom-golden"
TUNED = dict(
    name="vft-tune-golden", vcpus=2, max_vcpus=4, memory=1024,
    cputune=dict(shares=2048, period=100000, quota=50000, emulator_period=100000, emulator_quota=20000,
                 vcpu_pins={0: "0", "1": "0-1", 3: "1,0"}, emulator_pin="1"),
    memtune=dict(hard_limit="2GiB", soft_limit="1536MiB", swap_hard_limit="unlimited"),
    numatune=dict(mode="strict", nodeset="0"),
    memory_backing=dict(hugepage_size="2MiB", locked=True),
)


def plan(params, make_ctx, xml=None, running=False):
    params = dict(params, name=NAME)
    return SPEC.plan(NAME, params, xml if xml is not None else golden("libvirt_filled.xml"),
                     make_ctx(NAME, running=running))


def created(params, make_ctx):
    return SPEC.plan(params["name"], params, None, make_ctx(params["name"], creating=True)).after_xml


class FakeConn(object):
    def getCPUMap(self, flags):
        return (4, [True] * 4, 4)


class FakeDomain(object):
    def __init__(self, online=2):
        self.calls = []
        self.online = online

    def vcpusFlags(self, flags):
        return self.online

    def setSchedulerParametersFlags(self, params, flags):
        self.calls.append(("sched", params, flags))

    def pinVcpuFlags(self, vcpu, cpumap, flags):
        self.calls.append(("vcpupin", vcpu, cpumap, flags))

    def pinEmulator(self, cpumap, flags):
        self.calls.append(("emulatorpin", cpumap, flags))

    def setMemoryParameters(self, params, flags):
        self.calls.append(("memtune", params, flags))


@pytest.mark.parametrize("text, ids, canonical", [
    ("0", {0}, "0"), ("0-3,^2", {0, 1, 3}, "0-1,3"), ("5,1,2", {1, 2, 5}, "1-2,5"), ("0-1", {0, 1}, "0-1"),
])
def test_cpuset_syntax(text, ids, canonical, make_ctx):
    assert parse_cpuset(text, "x", make_ctx()) == ids
    assert format_cpuset(ids) == canonical


@pytest.mark.parametrize("text", ["", "a", "3-1", "1,,2", "-1", "^0", "0-1,^0-1"])
def test_cpuset_refused(text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        parse_cpuset(text, "cputune.emulator_pin", make_ctx())
    assert info.value.option == "cputune.emulator_pin"


def test_tuning_xml_matches_golden_and_libvirt_schema(make_ctx, tmp_path):
    xml = created(TUNED, make_ctx)
    assert xml == golden("tuning.xml")
    validator = shutil.which("virt-xml-validate")
    if validator is None:
        pytest.fail("virt-xml-validate is missing: install libvirt-clients (make system-deps)")
    result = subprocess.run([validator, os.path.join(GOLDEN, "tuning.xml"), "domain"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # read back: nothing to do
    assert SPEC.plan(TUNED["name"], TUNED, xml, make_ctx(TUNED["name"])).changes == []


def test_live_changes_on_a_running_domain(make_ctx):
    params = dict(cputune=dict(shares=512, quota=25000, vcpu_pins={0: "1"}, emulator_pin="0"),
                  memtune=dict(hard_limit="1GiB"))
    p = plan(params, make_ctx, running=True)
    assert {c.path: c.live for c in p.changes} == {
        "cputune.shares": True, "cputune.quota": True, "cputune.vcpu_pins": True, "cputune.emulator_pin": True,
        "memtune.hard_limit": True}
    assert not p.restart_required
    ctx = make_ctx(NAME, running=True)
    ctx["conn"] = FakeConn()
    dom = FakeDomain(online=1)
    SPEC.apply_live(dom, p, ctx)
    assert dom.calls == [
        ("sched", {"cpu_shares": 512, "vcpu_quota": 25000}, 1),
        ("vcpupin", 0, (False, True, False, False), 1),
        ("emulatorpin", (True, False, False, False), 1),
        ("memtune", {"hard_limit": 1024 * 1024}, 1),
    ]
    assert not plan(params, make_ctx, xml=p.after_xml, running=True).changes


def test_removing_pins_unpins_live_and_skips_offline_vcpus(make_ctx):
    xml = plan(dict(cputune=dict(vcpu_pins={0: "1", 1: "1"})), make_ctx).after_xml
    p = plan(dict(cputune=dict(vcpu_pins={})), make_ctx, xml=xml, running=True)
    assert parse_xml(p.after_xml).find("cputune") is None
    ctx = make_ctx(NAME, running=True)
    ctx["conn"] = FakeConn()
    dom = FakeDomain(online=1)
    SPEC.apply_live(dom, p, ctx)
    assert dom.calls == [("vcpupin", 0, (True, True, True, True), 1)]  # vCPU 1 is offline


def test_unlimited_and_no_cap(make_ctx):
    xml = plan(dict(memtune=dict(hard_limit="2G"), cputune=dict(quota=50000)), make_ctx).after_xml
    p = plan(dict(memtune=dict(hard_limit="unlimited"), cputune=dict(quota=-1)), make_ctx, xml=xml, running=True)
    assert sorted(c.path for c in p.changes) == ["cputune.quota", "memtune.hard_limit"]
    root = parse_xml(p.after_xml)
    assert root.find("memtune") is None and root.findtext("cputune/quota") == "-1"
    ctx = make_ctx(NAME, running=True)
    ctx["conn"] = FakeConn()
    dom = FakeDomain()
    SPEC.apply_live(dom, p, ctx)
    assert ("memtune", {"hard_limit": MEMORY_UNLIMITED_KIB}, 1) in dom.calls
    assert ("sched", {"vcpu_quota": -1}, 1) in dom.calls
    # no cap on a domain without one: nothing to do
    assert not plan(dict(cputune=dict(quota=-1), memtune=dict(soft_limit="unlimited")), make_ctx).changes


def test_numa_and_backing_need_a_restart(make_ctx):
    p = plan(dict(numatune=dict(nodeset="0"), memory_backing=dict(hugepages=True)), make_ctx, running=True)
    assert {c.path: c.live for c in p.changes} == {"numatune.nodeset": False, "memory_backing.hugepages": False}
    assert p.restart_required
    # strict without a nodeset is libvirt's default: no change
    assert not plan(dict(numatune=dict(mode="strict")), make_ctx).changes


def test_hugepages_warning_names_the_shortage(make_ctx, host, tmp_path, monkeypatch):
    from ansible_collections.virtforge.libvirt.plugins.module_utils._domain import tuning
    monkeypatch.setattr(tuning, "HUGEPAGES_DIR", str(tmp_path))
    (tmp_path / "hugepages-2048kB").mkdir()
    (tmp_path / "hugepages-2048kB" / "free_hugepages").write_text("100\n")  # 200 MiB
    host.local_files = True
    plan(dict(memory_backing=dict(hugepage_size="1GiB")), make_ctx)
    assert len(host.warnings) == 1 and "memory_backing" in host.warnings[0] and "no 1048576 KiB" in host.warnings[0]
    plan(dict(memory="256MiB", memory_backing=dict(hugepages=True)), make_ctx)
    assert "200 MiB of free 2048 KiB hugepages" in host.warnings[1] and "needs 256 MiB" in host.warnings[1]
    plan(dict(memory="128MiB", memory_backing=dict(hugepages=True)), make_ctx)
    assert len(host.warnings) == 2  # enough: no warning


def test_host_topology_is_checked(make_ctx, host):
    host.host_cpu_ids = lambda: {0, 1}
    host.host_numa_node_ids = lambda: {0}
    with pytest.raises(VirtforgeError) as info:
        plan(dict(cputune=dict(vcpu_pins={0: "1-3"})), make_ctx)
    assert info.value.option == "cputune.vcpu_pins.0" and "2-3 are not on this host (it has 0-1)" in info.value.msg
    with pytest.raises(VirtforgeError) as info:
        plan(dict(numatune=dict(nodeset="1")), make_ctx)
    assert info.value.option == "numatune.nodeset" and "NUMA node 1 is not on this host" in info.value.msg


@pytest.mark.parametrize("params, option, text", [
    (dict(cputune=dict(shares=1)), "cputune.shares", "out of range"),
    (dict(cputune=dict(period=10)), "cputune.period", "1000 to 1000000"),
    (dict(cputune=dict(quota=0)), "cputune.quota", "-1 for no limit"),
    (dict(cputune=dict(emulator_quota=-5)), "cputune.emulator_quota", "out of range"),
    (dict(cputune=dict(vcpu_pins={"x": "0"})), "cputune.vcpu_pins.x", "not a vCPU number"),
    (dict(cputune=dict(vcpu_pins={2: "0"})), "cputune.vcpu_pins", "at most 2 vCPU"),
    (dict(cputune=dict(vcpu_pins={0: "zero"})), "cputune.vcpu_pins.0", "not a CPU set"),
    (dict(memtune=dict(hard_limit="200MiB")), "memtune.hard_limit", "not above the guest's memory"),
    (dict(memtune=dict(hard_limit="2G", swap_hard_limit="1G")), "memtune.swap_hard_limit", "less than hard_limit"),
    (dict(memtune=dict(hard_limit="2G", soft_limit="3G")), "memtune.soft_limit", "above hard_limit"),
    (dict(memtune=dict(soft_limit="lots")), "memtune.soft_limit", "not a size"),
    (dict(memtune=dict(soft_limit=0)), "memtune.soft_limit", "below 1 MiB"),
    (dict(numatune=dict(mode="interleave")), "numatune.nodeset", "needs a nodeset"),
    (dict(numatune=dict(nodeset="0-")), "numatune.nodeset", "not a NUMA node set"),
    (dict(memory_backing=dict(hugepage_size="3MiB")), "memory_backing.hugepage_size", "not a hugepage size"),
    (dict(memory_backing=dict(hugepages=False, hugepage_size="2MiB")), "memory_backing.hugepage_size",
     "goes with hugepages"),
])
def test_bad_tuning_input(params, option, text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        plan(params, make_ctx)
    assert info.value.option == option
    assert text in info.value.msg

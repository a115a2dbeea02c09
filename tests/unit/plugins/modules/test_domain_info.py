"""domain_info's main() against libvirt's test:///default driver."""


import pytest
from lxml import etree

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.modules import domain_info
from module_main import main_outcome  # this directory is on sys.path for its tests

PREFIX = "vft-info-mod-"
NS = _libvirt.METADATA_NS


def run(monkeypatch, **args):
    """Run main() with these module args; return its result (with ``failed``)."""
    args.setdefault("uri", "test:///default")
    return main_outcome(monkeypatch, domain_info, args)


@pytest.fixture
def tagged():
    conn = _libvirt.connect("test:///default")
    for index, tags in enumerate((["web", "prod"], ["web"], [])):
        root = etree.Element("domain", type="test")
        etree.SubElement(root, "name").text = "%s%d" % (PREFIX, index)
        etree.SubElement(root, "memory", unit="MiB").text = "256"
        etree.SubElement(root, "vcpu").text = "1"
        etree.SubElement(etree.SubElement(root, "os"), "type").text = "hvm"
        if tags:
            inst = etree.SubElement(etree.SubElement(root, "metadata"), "{%s}instance" % NS, nsmap={"vf": NS})
            for tag in tags:
                etree.SubElement(inst, "{%s}tag" % NS).text = tag
        dom = conn.defineXML(etree.tostring(root, encoding="unicode"))
        if index == 0:
            dom.create()
    yield conn
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    conn.close()


def names(result):
    return [d["name"] for d in result["domains"]]


def test_all_domains(monkeypatch, tagged):
    result = run(monkeypatch)
    assert not result["failed"] and result["changed"] is False
    # test:///default is shared by the whole test process: other tests may have domains there too
    assert {"test", PREFIX + "0", PREFIX + "1", PREFIX + "2"} <= set(names(result))
    assert names(result) == sorted(names(result))
    assert result["missing"] == []


def test_filters(monkeypatch, tagged):
    assert names(run(monkeypatch, name=PREFIX + "*", state=["stopped"])) == [PREFIX + "1", PREFIX + "2"]
    assert names(run(monkeypatch, tags=["web"])) == [PREFIX + "0", PREFIX + "1"]
    assert names(run(monkeypatch, tags=["web", "prod"], details=False)) == [PREFIX + "0"]
    one = run(monkeypatch, name=PREFIX + "0")["domains"][0]
    assert one["state"] == "running" and one["tags"] == ["prod", "web"]
    assert one["memory"] == 256 and one["memory_bytes"] == 256 * 1024 ** 2 and one["vcpus"] == 1


def test_missing_is_empty_unless_asked_to_fail(monkeypatch, tagged):
    result = run(monkeypatch, name=["nope", PREFIX + "9*"])
    assert not result["failed"] and result["domains"] == [] and result["missing"] == ["nope", PREFIX + "9*"]
    result = run(monkeypatch, name=["nope", PREFIX + "0"], fail_on_missing=True)
    assert result["failed"] and "nope" in result["msg"] and result["option"] == "name"
    assert result["missing"] == ["nope"]


def test_check_mode_gives_the_same_result(monkeypatch, tagged):
    real = run(monkeypatch, name=PREFIX + "*")
    check = run(monkeypatch, name=PREFIX + "*", _ansible_check_mode=True)
    assert real == check


def test_bad_input_fails_cleanly(monkeypatch):
    result = run(monkeypatch, state=["asleep"])
    assert result["failed"] and "state" in result["msg"]
    result = run(monkeypatch, ip_sources=["dns"])
    assert result["failed"] and "ip_sources" in result["msg"]
    result = run(monkeypatch, uri="qemu+unix:///nowhere?socket=/nonexistent/sock")
    assert result["failed"] and "cannot connect" in result["msg"] and result["option"] == "uri"

"""The domain module against libvirt's test:///default driver (one fresh driver per connection)."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.modules import domain as domain_module

libvirt = pytest.importorskip("libvirt")


class Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture
def conn(monkeypatch):
    """One test:///default connection shared by every module run of a test (state persists)."""
    c = libvirt.open("test:///default")
    real_connect = _libvirt.connect

    def fake_connect(uri=None, readonly=False):
        assert uri == "test:///default"
        return c

    monkeypatch.setattr(_libvirt, "connect", fake_connect)
    monkeypatch.setattr(_libvirt, "choose_domain_type",
                        lambda conn, uri=None, requested=None, warn=None: requested or "test")
    from ansible_collections.virtforge.libvirt.plugins.module_utils._domain import context
    monkeypatch.setattr(context, "choose_domain_type",
                        lambda conn, uri=None, requested=None, warn=None: requested or "test")

    def exit_json(self, **kw):
        raise Exit("exit", kw)

    def fail_json(self, **kw):
        raise Exit("fail", kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: None)
    yield c
    del real_connect


def run(args, check=False, diff=False):
    args = dict(args, uri="test:///default")
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            domain_module.main()
    return info.value


def ok(args, **kw):
    res = run(args, **kw)
    assert res.kind == "exit", res.result
    return res.result


def fail(args, **kw):
    res = run(args, **kw)
    assert res.kind == "fail", res.result
    return res.result


DISK = "/guest/diskimage1"  # not checked: test:// URIs are not local QEMU


def test_define_idempotent_check_and_diff(conn):
    args = dict(name="vft-dom-u1", vcpus=2, memory="256MiB", disks=[dict(path=DISK, format="qcow2")],
                interfaces=[dict(network="default")], tags=["b", "a"], title="hello")
    res = ok(args, check=True, diff=True)
    assert res["changed"] and res["domain"]["state"] == "present" or res["domain"]["state"] == "stopped"
    assert "vft-dom-u1" not in [d.name() for d in conn.listAllDomains()]
    assert "<vcpu" in res["diff"]["after"] and res["diff"]["before"] == ""
    res = ok(args)
    assert res["changed"]
    xml = conn.lookupByName("vft-dom-u1").XMLDesc(0)
    assert "<memory unit='KiB'>262144</memory>" in xml
    assert "org.qemu.guest_agent.0" in xml
    res = ok(args, check=True)
    assert not res["changed"], res["changes"]
    res = ok(args)
    assert not res["changed"], res["changes"]
    print(json.dumps(res, indent=1))

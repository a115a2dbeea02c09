"""image_customize with images: (a list) and pool/volume addressing, on temp files (no appliance run)."""

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._image import customize

SPEC = dict(customize.ARGUMENT_SPEC, uri=dict(type="str"), images=dict(type="list", elements="dict"))


class FakeModule(object):
    def __init__(self, check_mode=False, **params):
        self.params = {k: v.get("default") for k, v in SPEC.items()}
        self.params.update(params)
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


class NoRunner(object):
    def run(self, *args, **kwargs):
        raise AssertionError("no tool may run: %r" % (args,))

    def which(self, tool, required=True):
        raise AssertionError("no tool may run: %s" % tool)


class FakePool(object):
    def __init__(self, path):
        self.path = path

    def XMLDesc(self, flags):
        return "<pool type='dir'><name>p</name><target>\n  <path>%s</path>\n</target></pool>" % self.path


class FakeConn(object):
    def __init__(self, path):
        self.path = path

    def storagePoolLookupByName(self, name):
        import libvirt
        if name != "p":
            raise libvirt.libvirtError("no pool")
        return FakePool(self.path)

    def listAllDomains(self, flags=0):
        return []


def qcow2(path):
    with open(path, "wb") as handle:
        handle.write(b"QFI\xfb" + b"\0" * 100)


def test_check_mode_on_images_that_do_not_exist_yet(tmp_path):
    module = FakeModule(check_mode=True, images=[dict(pool="p", volume="a.qcow2"), dict(pool="p", volume="b.qcow2")],
                        machine_id_reset=True)
    out = customize.run_module(module, NoRunner(), connect=lambda: FakeConn(str(tmp_path)))
    images = [r["image"] for r in out["images"]]
    assert out["changed"] and images == [str(tmp_path / "a.qcow2"), str(tmp_path / "b.qcow2")]
    assert all(r["changes"][0]["action"] == "customize" for r in out["images"])
    assert len(module.warnings) == 2 and os.listdir(tmp_path) == []


def test_missing_image_fails_outside_check_mode(tmp_path):
    module = FakeModule(images=[dict(pool="p", volume="a.qcow2", hostname="a")])
    with pytest.raises(VirtforgeError) as err:
        customize.run_module(module, NoRunner(), connect=lambda: FakeConn(str(tmp_path)))
    assert err.value.option == "images[0].volume"


def test_already_customized_images_cost_one_getxattr_each(tmp_path):
    for name in ("a", "b"):
        qcow2(str(tmp_path / ("%s.qcow2" % name)))
    items = [dict(pool="p", volume="a.qcow2", hostname="a"), dict(pool="p", volume="b.qcow2", hostname="b")]
    conn = FakeConn(str(tmp_path))
    # record the hash each item's spec gives, as a real run leaves it
    for item in items:
        params = FakeModule(**item).params
        c = customize.Customizer(FakeModule(**item), NoRunner(), params, connect=lambda: conn)
        try:
            os.setxattr(c.image, customize.XATTR, c.hash.encode())
        except OSError:
            pytest.fail("the test filesystem must support user xattrs")
    for check in (True, False):
        out = customize.run_module(FakeModule(check_mode=check, images=items), NoRunner(), connect=lambda: conn)
        assert not out["changed"] and [r["record_source"] for r in out["images"]] == ["xattr", "xattr"]


@pytest.mark.parametrize("item,option", [
    (dict(pool="p", volume="a.qcow2", hostname="bad name"), "images[1].hostname"),
    (dict(pool="p", volume="../x.qcow2"), "images[1].volume"),
    (dict(pool="nope", volume="x.qcow2"), "images[1].pool"),
    (dict(volume="x.qcow2"), "images[1].pool"),
])
def test_bad_items_fail_before_any_change(tmp_path, item, option):
    qcow2(str(tmp_path / "ok.qcow2"))
    module = FakeModule(images=[dict(pool="p", volume="ok.qcow2", hostname="ok"), item])
    with pytest.raises(VirtforgeError) as err:
        customize.run_module(module, NoRunner(), connect=lambda: FakeConn(str(tmp_path)))
    assert err.value.option == option

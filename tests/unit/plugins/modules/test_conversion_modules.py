"""v2p, v2v and p2v main(): bad input fails before anything is written, check mode plans only
(against libvirt's test:///default driver; the conversions run in the integration targets)."""

import hashlib
import io
import os
import tarfile

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtforge.libvirt.plugins.modules import p2v, v2p, v2v


class Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    def exit_json(self, **kw):
        raise Exit("exit", kw)

    def fail_json(self, **kw):
        raise Exit("fail", kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: None)


def run(module, args, check=False):
    args = dict(args, uri="test:///default")
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            module.main()
    return info.value


def listing(path):
    return sorted(os.listdir(path))


def make_ova(tmp_path, corrupt=False):
    files = {"g.ovf": b"<Envelope/>", "g-disk1.vmdk": b"KDMV" + b"\0" * 4000}
    manifest = "".join("SHA256(%s)= %s\n" % (n, hashlib.sha256(d).hexdigest()) for n, d in files.items())
    if corrupt:
        manifest = manifest.replace(hashlib.sha256(files["g-disk1.vmdk"]).hexdigest(), "f" * 64)
    files["g.mf"] = manifest.encode()
    path = tmp_path / ("bad.ova" if corrupt else "g.ova")
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_v2p_regular_file_is_refused(tmp_path):
    src = tmp_path / "src.raw"
    src.write_bytes(b"\0" * 4096)
    out = run(v2p, dict(src=str(src), device=str(src)), check=True)
    assert out.kind == "fail" and "is not a block device" in out.result["msg"]
    assert out.result["option"] == "device"


def test_v2p_bad_module_name(tmp_path):
    src = tmp_path / "src.raw"
    src.write_bytes(b"\0" * 4096)
    out = run(v2p, dict(src=str(src), device="/dev/null", extra_modules=["ahci", "x;y"]))
    assert out.kind == "fail" and out.result["option"] == "extra_modules[1]"


def test_v2p_missing_source():
    out = run(v2p, dict(src="/nonexistent/x.qcow2", device="/dev/null"))
    assert out.kind == "fail" and out.result["option"] == "src"


def test_v2v_corrupt_manifest_writes_nothing(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = run(v2v, dict(name="vft-g", src=make_ova(tmp_path, corrupt=True), directory=str(outdir),
                        default_network="default"))
    assert out.kind == "fail" and "does not match the manifest" in out.result["msg"]
    assert listing(outdir) == []


def test_v2v_check_mode_plans_only(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = run(v2v, dict(name="vft-g", src=make_ova(tmp_path), directory=str(outdir), default_network="default"),
              check=True)
    assert out.kind == "exit", out.result
    assert out.result["changed"] and out.result["planned_command"][:3] == ["virt-v2v", "-i", "ova"]
    assert len(out.result["manifest"]["files"]) == 2
    assert listing(outdir) == []


@pytest.mark.parametrize("args,option", [
    (dict(name="a/b"), "name"),
    (dict(name="ok", network_map=[dict(source="x", network="nope")]), "network_map[0].network"),
    (dict(name="ok", network_map=[dict(source="x")]), "network_map[0]"),
    (dict(name="ok", default_network="nope"), "default_network"),
    (dict(name="ok", macs=["zz"]), "macs[0]"),
    (dict(name="ok", vcpus=0), "vcpus"),
    (dict(name="ok", pool="nope", directory=None), "pool"),
])
def test_v2v_bad_input(tmp_path, args, option):
    base = dict(src=make_ova(tmp_path), directory=str(tmp_path))
    base.update(args)
    out = run(v2v, base)
    assert out.kind == "fail" and out.result.get("option") == option, out.result


def test_v2v_inspect_false_needs_a_disk(tmp_path):
    out = run(v2v, dict(name="ok", src=make_ova(tmp_path), directory=str(tmp_path), inspect=False))
    assert out.kind == "fail" and out.result["option"] == "inspect"


def test_p2v_check_mode_raw_image(tmp_path):
    src = tmp_path / "disk.raw"
    src.write_bytes(b"\1" * 65536)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = run(p2v, dict(name="vft-p", src=str(src), directory=str(outdir), inspect=False,
                        default_network="default", macs=["00:25:90:00:00:01"]), check=True)
    assert out.kind == "exit", out.result
    assert out.result["changed"] and out.result["source_size"] == 65536
    assert out.result["planned_command"][:4] == ["qemu-img", "convert", "-O", "qcow2"]
    assert out.result["disks"] == [str(outdir / "vft-p-sda.qcow2")]
    assert listing(outdir) == []
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before


def test_p2v_refuses_a_directory_and_empty(tmp_path):
    out = run(p2v, dict(name="vft-p", src=str(tmp_path), directory=str(tmp_path)))
    assert out.kind == "fail" and "neither a block device nor a file" in out.result["msg"]
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    out = run(p2v, dict(name="vft-p", src=str(empty), directory=str(tmp_path)))
    assert out.kind == "fail" and "is empty" in out.result["msg"]

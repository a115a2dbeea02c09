"""image_build and image_customize main(): cache hits, check mode, dest, bad input, the xattr fast
path and cloud-init seeds — without building images (the builds run in the integration targets)."""

import json
import fcntl
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtforge.libvirt.plugins.module_utils._image import build, customize
from ansible_collections.virtforge.libvirt.plugins.modules import image_build, image_customize


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


def run(module, args, check=False, diff=False):
    args = dict(args)
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            module.main()
    return info.value


@pytest.fixture
def no_build(monkeypatch):
    calls = []

    def fake_build(self):
        calls.append(self.hash)
        raise AssertionError("a build was started")

    monkeypatch.setattr(build.Builder, "build", fake_build)
    return calls


def seed_cache(cache, args):
    """Put a fake built image for ``args``'s recipe into the cache, as a build would."""
    params = dict((k, v.get("default")) for k, v in build.ARGUMENT_SPEC.items())
    params.update(args)
    digest = build.recipe_hash(build.recipe_from_params(params))
    image = cache / ("%s.qcow2" % digest)
    image.write_bytes(b"QFI\xfb" + b"\0" * 1020)
    meta = dict(recipe_hash=digest, sha256="e" * 64, size_bytes=1024, virtual_size_bytes=4096, format="qcow2",
                created="2026-01-01T00:00:00Z", timings={"total": 1.0})
    (cache / ("%s.json" % digest)).write_text(json.dumps(meta))
    return digest, image


class TestImageBuild:
    def test_cache_hit_is_not_changed(self, tmp_path, no_build):
        args = dict(cache_dir=str(tmp_path), packages=["zstd"], free_space="700M")
        digest, image = seed_cache(tmp_path, args)
        for check in (True, False):
            res = run(image_build, args, check=check)
            assert res.kind == "exit", res.result
            assert res.result["changed"] is False
            assert res.result["cache_hit"] is True and res.result["built"] is False
            assert res.result["image"] == str(image) and res.result["recipe_hash"] == digest
            assert res.result["sha256"] == "e" * 64
        assert no_build == []

    def test_cache_miss_in_check_mode_reports_a_build_and_builds_nothing(self, tmp_path, no_build):
        res = run(image_build, dict(cache_dir=str(tmp_path), packages=["zstd", "less"]), check=True, diff=True)
        assert res.result["changed"] is True and res.result["cache_hit"] is False
        assert res.result["changes"][0]["action"] == "build"
        assert res.result["diff"]["before"]["image"] is None
        assert os.listdir(tmp_path) == [] and no_build == []

    def test_a_corrupt_cache_entry_is_a_miss(self, tmp_path, no_build):
        args = dict(cache_dir=str(tmp_path))
        _digest, image = seed_cache(tmp_path, args)
        image.write_bytes(b"short")
        assert run(image_build, args, check=True).result["changed"] is True

    def test_dest_symlink_then_not_changed(self, tmp_path, no_build):
        cache = tmp_path / "cache"
        cache.mkdir()
        args = dict(cache_dir=str(cache))
        _digest, image = seed_cache(cache, args)
        dest = tmp_path / "golden.qcow2"
        args.update(dest=str(dest), dest_mode="symlink")
        res = run(image_build, args, check=True)
        assert res.result["changed"] is True and not dest.exists()
        res = run(image_build, args)
        assert res.result["changed"] is True and os.readlink(dest) == str(image)
        assert res.result["path"] == str(dest)
        assert run(image_build, args).result["changed"] is False

    def test_bad_input_fails_before_anything(self, tmp_path, no_build):
        res = run(image_build, dict(cache_dir=str(tmp_path / "c"), packages=["bad name"]))
        assert res.kind == "fail"
        assert res.result["msg"].startswith("packages[0]:")
        assert not (tmp_path / "c").exists()

    def test_secret_is_not_returned(self, tmp_path, no_build):
        res = run(image_build, dict(cache_dir=str(tmp_path), root_password="hunter2"), check=True)
        assert "hunter2" not in json.dumps(res.result)


class TestImageCustomize:
    def test_xattr_fast_path(self, tmp_path, monkeypatch):
        image = tmp_path / "clone.qcow2"
        image.write_bytes(b"QFI\xfb" + b"\0" * 1020)
        args = dict(image=str(image), hostname="web1", machine_id_reset=True)
        params = dict((k, v.get("default")) for k, v in customize.ARGUMENT_SPEC.items())
        params.update(args)
        digest = customize.spec_hash(customize.spec_from_params(params))
        try:
            os.setxattr(str(image), customize.XATTR, digest.encode())
        except OSError:
            pytest.fail("the test directory does not support user xattrs")

        def no_tools(self, *a, **kw):
            raise AssertionError("no tool may run on the fast path")
        monkeypatch.setattr(customize.Customizer, "read_record", no_tools)
        monkeypatch.setattr(customize.Customizer, "apply", no_tools)
        for check in (True, False):
            res = run(image_customize, args, check=check)
            assert res.kind == "exit", res.result
            assert res.result["changed"] is False and res.result["record_source"] == "xattr"

    def test_stale_xattr_reads_the_record(self, tmp_path, monkeypatch):
        image = tmp_path / "clone.qcow2"
        image.write_bytes(b"QFI\xfb" + b"\0" * 1020)
        os.setxattr(str(image), customize.XATTR, b"0" * 64)
        monkeypatch.setattr(customize.Customizer, "read_record", lambda self, fmt: None)
        monkeypatch.setattr(customize.Customizer, "check_safe", lambda self: None)
        res = run(image_customize, dict(image=str(image), hostname="web1"), check=True, diff=True)
        assert res.result["changed"] is True and res.result["previous_sha256"] is None
        assert res.result["diff"]["after"]["spec"] == {"hostname": "web1"}

    @pytest.mark.parametrize("args,option", [
        (dict(hostname="has spaces"), "hostname"),
        (dict(image="/nonexistent/vft.qcow2", hostname="ok"), "image"),
        (dict(files=[dict(path="/etc/x")]), "files[0]"),
    ])
    def test_bad_input(self, tmp_path, args, option):
        image = tmp_path / "clone.qcow2"
        image.write_bytes(b"QFI\xfb" + b"\0" * 1020)
        before = image.read_bytes()
        res = run(image_customize, dict(dict(image=str(image)), **args))
        assert res.kind == "fail"
        assert res.result["msg"].startswith(option + ":"), res.result["msg"]
        assert image.read_bytes() == before

    def test_seed_only(self, tmp_path):
        if not any(os.access(os.path.join(d, "genisoimage"), os.X_OK) for d in os.environ["PATH"].split(":")):
            pytest.fail("genisoimage is not installed (bindep.txt)")
        args = dict(hostname="app1", cloud_init_seed=dict(path=str(tmp_path / "seed.iso"),
                                                          user_data={"packages": ["htop"]}))
        res = run(image_customize, args, check=True)
        assert res.result["changed"] is True and not (tmp_path / "seed.iso").exists()
        res = run(image_customize, args)
        assert res.result["changed"] is True and (tmp_path / "seed.iso").exists()
        first = (tmp_path / "seed.iso").read_bytes()
        assert run(image_customize, args).result["changed"] is False
        assert (tmp_path / "seed.iso").read_bytes() == first
        args["cloud_init_seed"]["user_data"] = {"packages": ["vim"]}
        assert run(image_customize, args).result["changed"] is True
        assert sorted(os.listdir(tmp_path)) == ["seed.iso"]

    def test_image_needed_for_anything_but_the_seed(self, tmp_path):
        res = run(image_customize, dict(machine_id_reset=True, cloud_init_seed=dict(path=str(tmp_path / "s.iso"))))
        assert res.kind == "fail" and res.result["msg"].startswith("image:")


class TestReplacingABackingFile:
    def test_force_rebuild_with_linked_clones_is_refused(self, tmp_path, no_build, monkeypatch):
        from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt

        def no_libvirt(uri=None, readonly=False):
            raise RuntimeError("no libvirt in this test")
        monkeypatch.setattr(_libvirt, "connect", no_libvirt)
        args = dict(cache_dir=str(tmp_path))
        _digest, image = seed_cache(tmp_path, args)
        clone = bytearray(512)
        clone[0:4] = b"QFI\xfb"
        name = str(image).encode()
        clone[8:20] = (200).to_bytes(8, "big") + len(name).to_bytes(4, "big")
        clone[200:200 + len(name)] = name
        (tmp_path / "clone.qcow2").write_bytes(bytes(clone))
        for check in (True, False):
            res = run(image_build, dict(args, force=True), check=check)
            assert res.kind == "fail", res.result
            assert res.result["msg"].startswith("force:") and "backing file of 1 image" in res.result["msg"]
        assert no_build == []
        (tmp_path / "clone.qcow2").unlink()
        assert run(image_build, dict(args, force=True), check=True).result["changed"] is True


class FailingRunner(object):
    """Stands in for _run.Runner: every tool exists, debootstrap fails after writing into its target."""

    def __init__(self):
        self.calls = []
        self.cache_locked = None

    def which(self, tool, required=True):
        return "/usr/bin/" + tool

    def run(self, argv, **kw):
        self.calls.append(argv)
        from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
        # another build sharing the package cache cannot take its lock while debootstrap runs
        cache = [a.split("=", 1)[1] for a in argv if a.startswith("--cache-dir=")][0]
        with open(os.path.join(cache, ".lock"), "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.cache_locked = False
            except BlockingIOError:
                self.cache_locked = True
        root = argv[-2]
        os.makedirs(os.path.join(root, "etc"))
        raise VirtforgeError("debootstrap failed (exit 1): E: Failed getting release file")


class TestFailedBuild:
    def test_a_failed_build_leaves_only_its_log(self, tmp_path, monkeypatch):
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        params = dict((k, v.get("default")) for k, v in build.ARGUMENT_SPEC.items())
        params.update(cache_dir=str(tmp_path), package_cache=str(tmp_path / "debs"))
        runner = FailingRunner()
        builder = build.Builder(None, runner, params)
        with pytest.raises(Exception) as info:
            builder.run(check_mode=False)
        assert "debootstrap failed" in str(info.value)
        assert runner.calls and runner.calls[0][0] == "/usr/bin/debootstrap"
        assert runner.cache_locked is True
        assert sorted(os.listdir(tmp_path)) == sorted(["debs", os.path.basename(builder.log_path)])
        assert "phase debootstrap: FAILED" in open(builder.log_path).read()

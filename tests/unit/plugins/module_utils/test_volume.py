"""Volume engine: image headers, sparse/reflink copies, atomic targets, plans, with real temp files."""

import errno
import os
import signal
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _volume as vol
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError


class FakeModule(object):
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self._diff = True
        self.params = dict(name=None, pool=None, directory=None, state="present", capacity=None, format=None,
                           clone_from=None, import_from=None, source_pool=None, source_format=None,
                           mode="linked", force=False, shrink=False)
        self.params.update(params)


class SubprocessRunner(object):
    """The Runner interface on subprocess, for tests without an AnsibleModule."""

    def __init__(self):
        self.calls = []

    def run(self, argv, check=True, what=None, **_kw):
        self.calls.append([str(a) for a in argv])
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise VirtforgeError("%s failed (exit %d): %s" % (what or argv[0], proc.returncode, proc.stderr))
        return proc.returncode, proc.stdout, proc.stderr


def qemu_img(*args):
    subprocess.run(["qemu-img"] + [str(a) for a in args], check=True, capture_output=True)


def run(module):
    """Plan, apply unless check mode; returns (plan, result)."""
    manager = vol.VolumeManager(module, SubprocessRunner(), conn=None)
    plan = manager.plan()
    if plan.changed and not module.check_mode:
        manager.apply(plan)
    return plan, manager.result(plan)


def snapshot(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        with open(path, "rb") as handle:
            out[name] = handle.read()
    return out


@pytest.fixture
def golden(tmp_path):
    path = tmp_path / "golden.qcow2"
    # qemu-img and qemu-io are requirements of the collection (bindep.txt): no skipping
    qemu_img("create", "-q", "-f", "qcow2", path, "64M")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", str(path)], check=True,
                   capture_output=True)
    return str(path)


# ------------------------------------------------------------------------------------- headers

def test_qcow2_header_reads_size_backing_and_backing_format(tmp_path, golden):
    clone = tmp_path / "clone.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", golden, "-F", "qcow2", clone, "128M")
    info = vol.qcow2_header(str(clone))
    assert info == dict(format="qcow2", capacity=128 * 1024 ** 2, backing=golden, backing_format="qcow2")
    assert vol.qcow2_header(golden)["backing"] is None


def test_qcow2_header_resolves_relative_backing_against_the_image_directory(tmp_path, golden):
    sub = tmp_path / "sub"
    sub.mkdir()
    clone = sub / "clone.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "../golden.qcow2", "-F", "qcow2", clone)
    assert vol.qcow2_header(str(clone))["backing"] == golden


def test_qcow2_header_is_none_for_other_files(tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 4096)
    assert vol.qcow2_header(str(raw)) is None
    assert vol.image_info(str(raw))["format"] == "raw"


# ------------------------------------------------------------------------------------- copies

def test_sparse_copy_copies_data_and_keeps_holes(tmp_path):
    src = tmp_path / "src"
    with open(src, "wb") as handle:
        handle.truncate(64 * 1024 * 1024)
        handle.seek(4096)
        handle.write(b"A" * 8192)
        handle.seek(32 * 1024 * 1024)
        handle.write(b"B" * 65536)
    dst = tmp_path / "dst"
    vol.sparse_copy(str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_size == 64 * 1024 * 1024
    # only the data extents are allocated (file systems allocate in blocks; allow some slack)
    assert os.stat(dst).st_blocks * 512 <= 2 * 1024 * 1024


def test_sparse_copy_falls_back_to_pread_pwrite(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(300000))

    def no_cfr(*_a):
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", no_cfr)
    vol.sparse_copy(str(src), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == src.read_bytes()


def test_sparse_copy_refuses_an_existing_destination(tmp_path):
    (tmp_path / "src").write_bytes(b"x")
    (tmp_path / "dst").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        vol.sparse_copy(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == b"keep"


def test_reflink_copy_works_or_says_why(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(100000))
    dst = tmp_path / "dst"
    try:
        vol.reflink_copy(str(src), str(dst))
    except vol.ReflinkUnsupported as exc:
        assert exc.option == "mode"
        assert "mode: full" in exc.message
    else:
        assert dst.read_bytes() == src.read_bytes()


# ------------------------------------------------------------------------------------- atomic target

def test_atomic_target_renames_on_commit(tmp_path):
    path = str(tmp_path / "img")
    with vol.AtomicTarget(path) as tmp:
        with open(tmp.tmp, "wb") as handle:
            handle.write(b"done")
        assert os.path.basename(tmp.tmp).startswith(".img" + vol.TMP_MARK)
        tmp.commit()
    assert os.listdir(tmp_path) == ["img"]


def test_atomic_target_removes_the_temporary_on_failure(tmp_path):
    path = str(tmp_path / "img")
    with pytest.raises(RuntimeError):
        with vol.AtomicTarget(path) as tmp:
            with open(tmp.tmp, "wb") as handle:
                handle.write(b"partial")
            raise RuntimeError("tool failed")
    assert os.listdir(tmp_path) == []


def test_atomic_target_reports_enospc_cleanly(tmp_path):
    path = str(tmp_path / "img")
    with pytest.raises(VirtforgeError) as err:
        with vol.AtomicTarget(path) as tmp:
            with open(tmp.tmp, "wb") as handle:
                handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert "no space left" in err.value.message
    assert os.listdir(tmp_path) == []


def test_atomic_target_cleans_up_when_interrupted_by_sigterm(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(1 << 20))
    target = tmp_path / "out"
    target.mkdir()
    real_copy = vol._copy_range

    def copy_then_killed(fd_in, fd_out, offset, length):
        real_copy(fd_in, fd_out, offset, min(length, 4096))
        os.kill(os.getpid(), signal.SIGTERM)

    old = signal.getsignal(signal.SIGTERM)
    vol._copy_range = copy_then_killed
    try:
        with pytest.raises(VirtforgeError) as err:
            with vol.AtomicTarget(str(target / "img")) as tmp:
                vol.sparse_copy(str(src), tmp.tmp)
                tmp.commit()
    finally:
        vol._copy_range = real_copy
    assert "interrupted" in err.value.message
    assert os.listdir(target) == []
    assert signal.getsignal(signal.SIGTERM) == old


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / (".img%s999999999" % vol.TMP_MARK)
    dead.write_bytes(b"left by a killed run")
    other = tmp_path / (".other%s999999999" % vol.TMP_MARK)
    other.write_bytes(b"not ours")
    vol.remove_stale_temporaries(str(tmp_path / "img"))
    assert sorted(os.listdir(tmp_path)) == [other.name]


# ------------------------------------------------------------------------------------- plans

def test_create_check_mode_writes_nothing_then_real_run_then_idempotent(tmp_path):
    args = dict(directory=str(tmp_path), name="data.qcow2", capacity="16M")
    plan, result = run(FakeModule(check_mode=True, **args))
    assert plan.changed and result["action"] == "create"
    assert os.listdir(tmp_path) == []
    plan, result = run(FakeModule(**args))
    assert result["capacity"] == 16 * 1024 ** 2 and result["format"] == "qcow2"
    plan, result = run(FakeModule(**args))
    assert not plan.changed and result["changes"] == []


def test_linked_clone_records_backing_format_and_is_idempotent(tmp_path, golden):
    out = tmp_path / "out"
    out.mkdir()
    args = dict(directory=str(out), name="vm.qcow2", clone_from=golden, mode="linked", capacity="128M")
    plan, result = run(FakeModule(**args))
    assert result["backing"] == golden and result["backing_format"] == "qcow2"
    assert result["capacity"] == 128 * 1024 ** 2
    create = [c for c in plan_calls(args) if c[1:2] == ["create"]]
    assert create == [], "the second run must not call qemu-img create"
    plan, result = run(FakeModule(**args))
    assert not plan.changed


def plan_calls(args):
    runner = SubprocessRunner()
    manager = vol.VolumeManager(FakeModule(**args), runner, conn=None)
    plan = manager.plan()
    if plan.changed:
        manager.apply(plan)
    return runner.calls


def test_linked_clone_command_always_passes_the_backing_format(tmp_path, golden):
    out = tmp_path / "out"
    out.mkdir()
    calls = plan_calls(dict(directory=str(out), name="vm.qcow2", clone_from=golden, mode="linked"))
    create = [c for c in calls if c[:2] == ["qemu-img", "create"]][0]
    assert create[create.index("-b") + 1] == golden
    assert create[create.index("-F") + 1] == "qcow2"
    assert vol.TMP_MARK in create[-1]


def test_full_clone_is_identical_and_standalone(tmp_path, golden):
    out = tmp_path / "out"
    out.mkdir()
    plan, result = run(FakeModule(directory=str(out), name="full.qcow2", clone_from=golden, mode="full"))
    assert result["clone_mode"] == "full" and result["backing"] is None
    subprocess.run(["qemu-img", "compare", golden, str(out / "full.qcow2")], check=True, capture_output=True)


def test_auto_clone_falls_back_to_full_where_reflink_is_impossible(tmp_path, golden, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def refuse(src, dst):
        open(dst, "wb").close()  # a half-made file must not stay behind
        raise vol.ReflinkUnsupported("no reflinks here", option="mode")

    monkeypatch.setattr(vol, "reflink_copy", refuse)
    plan, result = run(FakeModule(directory=str(out), name="auto.qcow2", clone_from=golden, mode="auto"))
    assert result["clone_mode"] == "full"
    assert os.listdir(out) == ["auto.qcow2"]


def test_reflink_mode_refused_leaves_nothing(tmp_path, golden, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def refuse(src, dst):
        open(dst, "wb").close()
        raise vol.ReflinkUnsupported("no reflinks here", option="mode")

    monkeypatch.setattr(vol, "reflink_copy", refuse)
    with pytest.raises(vol.ReflinkUnsupported):
        run(FakeModule(directory=str(out), name="r.qcow2", clone_from=golden, mode="reflink"))
    assert os.listdir(out) == []


def test_existing_target_is_refused_without_force_and_replaced_with_it(tmp_path, golden):
    out = tmp_path / "out"
    out.mkdir()
    run(FakeModule(directory=str(out), name="vm.qcow2", capacity="1M"))
    before = snapshot(out)
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory=str(out), name="vm.qcow2", clone_from=golden))
    assert err.value.option == "name" and "force: true" in err.value.message
    assert snapshot(out) == before
    plan, result = run(FakeModule(directory=str(out), name="vm.qcow2", clone_from=golden, force=True))
    assert result["backing"] == golden
    assert {c["path"] for c in result["changes"]} >= {"volume.backing", "volume"}


def test_resize_grows_and_refuses_to_shrink_without_shrink(tmp_path):
    args = dict(directory=str(tmp_path), name="d.qcow2")
    run(FakeModule(capacity="16M", **args))
    plan, result = run(FakeModule(capacity="32M", **args))
    assert result["action"] == "resize" and result["capacity"] == 32 * 1024 ** 2
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(capacity="8M", **args))
    assert err.value.option == "capacity"
    plan, result = run(FakeModule(capacity="8M", shrink=True, **args))
    assert result["capacity"] == 8 * 1024 ** 2


def test_import_converts_raw_to_qcow2(tmp_path):
    raw = tmp_path / "src.raw"
    raw.write_bytes(os.urandom(65536) + b"\0" * (1 << 20))
    out = tmp_path / "out"
    out.mkdir()
    plan, result = run(FakeModule(directory=str(out), name="i.qcow2", import_from=str(raw), format="qcow2"))
    assert result["format"] == "qcow2" and result["clone_mode"] == "convert"
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(out / "i.qcow2")],
                   check=True, capture_output=True)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "x\ny", "<x>"])
def test_names_escaping_the_directory_are_refused(tmp_path, name):
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory=str(tmp_path), name=name, capacity="1M"))
    assert err.value.option == "name"
    assert os.listdir(tmp_path) == []


def test_symlink_out_of_the_directory_is_refused(tmp_path):
    inside = tmp_path / "pool"
    inside.mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(inside / "link.qcow2"))
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory=str(inside), name="link.qcow2", capacity="1M"))
    assert err.value.option == "name" and "outside" in err.value.message


def test_relative_directory_and_missing_source_are_refused(tmp_path):
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory="relative", name="x", capacity="1M"))
    assert err.value.option == "directory"
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory=str(tmp_path), name="x", clone_from=str(tmp_path / "missing.qcow2")))
    assert err.value.option == "clone_from"
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory=str(tmp_path), name="x"))
    assert err.value.option == "capacity"


def test_delete_refuses_a_backing_file_in_use_and_ignores_missing(tmp_path, golden):
    run(FakeModule(directory=str(tmp_path), name="vm.qcow2", clone_from=golden))
    with pytest.raises(VirtforgeError) as err:
        run(FakeModule(directory=str(tmp_path), name="golden.qcow2", state="absent"))
    assert "backing file of" in err.value.message and "vm.qcow2" in err.value.message
    assert os.path.exists(golden)
    plan, result = run(FakeModule(directory=str(tmp_path), name="missing.qcow2", state="absent"))
    assert not plan.changed and result["changes"] == []
    plan, result = run(FakeModule(directory=str(tmp_path), name="vm.qcow2", state="absent", check_mode=True))
    assert plan.changed and os.path.exists(tmp_path / "vm.qcow2")
    run(FakeModule(directory=str(tmp_path), name="vm.qcow2", state="absent"))
    run(FakeModule(directory=str(tmp_path), name="golden.qcow2", state="absent"))
    assert os.listdir(tmp_path) == []


def test_diff_shows_properties_before_and_after(tmp_path):
    plan, _result = run(FakeModule(directory=str(tmp_path), name="d.raw", format="raw", capacity="1M",
                                   check_mode=True))
    diff = plan.diff("d.raw")
    assert diff["before"] == {}
    assert diff["after"] == dict(capacity=1048576, format="raw", path=str(tmp_path / "d.raw"))


def test_atomic_target_turns_a_tool_enospc_into_a_clean_error(tmp_path):
    path = str(tmp_path / "img")
    with pytest.raises(VirtforgeError) as err:
        with vol.AtomicTarget(path) as tmp:
            with open(tmp.tmp, "wb") as handle:
                handle.write(b"partial")
            raise VirtforgeError("qemu-img convert failed (exit 1): write error: No space left on device",
                                 command=["qemu-img"], rc=1)
    assert err.value.option == "name" and "no space left" in err.value.message
    assert err.value.details["rc"] == 1
    assert os.listdir(tmp_path) == []

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes and image files: create, resize, import, clone (linked / full / reflink), delete.

Every file is written under a temporary name in its target directory and renamed over the
final name only when complete; any failure (ENOSPC, a tool failing, SIGTERM/SIGINT) removes the
temporary file. Names are confined to their pool or directory. The plan (a dict of the volume's
properties before and after, and a list of changes) is computed first; check mode stops there.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import signal
import struct

from ._batch import expand, run_batch
from ._errors import NotFound, VirtforgeError
from ._validate import check_name, confine_path, parse_size

FORMATS = ("qcow2", "raw")
CLONE_MODES = ("linked", "full", "reflink", "auto")
# pools whose volumes are plain files in the pool's target directory
FILE_POOL_TYPES = ("dir", "fs", "netfs")
FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h
TMP_MARK = ".vf-tmp-"
COPY_CHUNK = 64 * 1024 * 1024

VOLUME_ARGSPEC = dict(
    name=dict(type="str"),
    pool=dict(type="str"),
    directory=dict(type="path"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    capacity=dict(type="str", aliases=["size"]),
    format=dict(type="str", choices=list(FORMATS)),
    clone_from=dict(type="str"),
    import_from=dict(type="str"),
    source_pool=dict(type="str"),
    source_format=dict(type="str"),
    mode=dict(type="str", default="linked", choices=list(CLONE_MODES)),
    force=dict(type="bool", default=False),
    shrink=dict(type="bool", default=False),
)
# ``volumes`` (a list of items taking the same options) is handled by _batch; pool/directory and
# the other exclusions are checked per item in item_params(), so they hold for both forms.
VOLUME_MODULE_ARGSPEC = dict(VOLUME_ARGSPEC, volumes=dict(type="list", elements="dict"))
VOLUME_MODULE_KWARGS = dict(
    mutually_exclusive=[("name", "volumes")],
    required_one_of=[("name", "volumes")],
    supports_check_mode=True,
)
_EXCLUSIVE = (("pool", "directory"), ("clone_from", "import_from"))


def round_up(size, unit=512):
    return (size + unit - 1) // unit * unit


# ---------------------------------------------------------------------------------------------
# reading images


def qcow2_header(path):
    """Virtual size, backing file and backing format of a qcow2 file, read from its header.

    Returns None when ``path`` is not a qcow2 image. Cheap (no subprocess): used to scan a
    directory for images that use a file as their backing file.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(104)
            if len(head) < 72 or head[:4] != b"QFI\xfb":
                return None
            version, backing_offset, backing_size = struct.unpack(">IQI", head[4:20])
            size = struct.unpack(">Q", head[24:32])[0]
            backing = backing_format = None
            if backing_offset and backing_size:
                handle.seek(backing_offset)
                backing = handle.read(backing_size).decode("utf-8", "replace")
            # header extensions follow the header (72 bytes in v2, header_length in v3)
            ext_offset = 72 if version < 3 else struct.unpack(">I", head[100:104])[0]
            handle.seek(ext_offset)
            for _ext in range(64):
                raw = handle.read(8)
                if len(raw) < 8:
                    break
                ext_type, ext_len = struct.unpack(">II", raw)
                if ext_type == 0:
                    break
                data = handle.read((ext_len + 7) // 8 * 8)
                if ext_type == 0xE2792ACA:
                    backing_format = data[:ext_len].decode("utf-8", "replace")
    except OSError:
        return None
    if backing and not os.path.isabs(backing) and ":" not in backing.split("/", 1)[0]:
        backing = os.path.normpath(os.path.join(os.path.dirname(path), backing))
    return dict(format="qcow2", capacity=size, backing=backing, backing_format=backing_format)


def image_info(path, runner=None):
    """Properties of an image file: format, capacity (virtual size), allocation, backing."""
    st = os.stat(path)
    info = qcow2_header(path)
    if info is None:
        if runner is not None:
            _rc, out, _err = runner.run(["qemu-img", "info", "--output=json", "-U", path], what="qemu-img info")
            data = json.loads(out)
            info = dict(format=data.get("format"), capacity=data.get("virtual-size"),
                        backing=data.get("full-backing-filename") or data.get("backing-filename"),
                        backing_format=data.get("backing-filename-format"))
        else:
            info = dict(format="raw", capacity=st.st_size, backing=None, backing_format=None)
    info["allocation"] = st.st_blocks * 512
    info["path"] = path
    return info


# ---------------------------------------------------------------------------------------------
# writing images


class _Interrupted(BaseException):
    pass


def _raise_interrupted(signum, _frame):
    raise _Interrupted("interrupted by signal %d" % signum)


class AtomicTarget(object):
    """A temporary file next to ``path``, renamed over it on success, removed on any failure."""

    def __init__(self, path):
        self.path = path
        directory, name = os.path.split(path)
        self.tmp = os.path.join(directory, ".%s%s%d" % (name, TMP_MARK, os.getpid()))
        self._old_handlers = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            try:
                self._old_handlers[sig] = signal.signal(sig, _raise_interrupted)
            except (ValueError, OSError):  # pragma: no cover - not the main thread
                pass
        remove_stale_temporaries(self.path)
        if os.path.lexists(self.tmp):
            os.unlink(self.tmp)
        return self

    def commit(self):
        # No fsync, like cp and qemu-img convert: the rename makes the complete file appear at
        # once; flushing it to disk is left to the filesystem (measured: fsync halves throughput).
        os.rename(self.tmp, self.path)

    def __exit__(self, exc_type, exc, tb):
        removed = False
        try:
            if exc_type is not None and os.path.lexists(self.tmp):
                os.unlink(self.tmp)
                removed = True
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
        if exc_type is None:
            return False
        if exc_type is _Interrupted:
            raise VirtforgeError("%s; the partial copy %s was removed" % (exc, self.tmp)) from None
        enospc = (issubclass(exc_type, OSError) and exc.errno == errno.ENOSPC) or (
            isinstance(exc, VirtforgeError) and "No space left on device" in exc.msg)
        if enospc:
            raise VirtforgeError(
                "no space left on the filesystem of %s; the partial copy %s was removed"
                % (os.path.dirname(self.path), self.tmp), option="name",
                fix="Free space or choose a pool or directory with enough room",
                **(exc.details if isinstance(exc, VirtforgeError) else {})) from None
        if isinstance(exc, VirtforgeError) and removed:
            exc.msg = "%s; the partial file %s was removed" % (exc.msg.rstrip("."), self.tmp)
        return False


def remove_stale_temporaries(path):
    """Remove temporaries of ``path`` left by a run that was killed (its process is gone)."""
    directory, name = os.path.split(path)
    for tmp in glob.glob(os.path.join(glob.escape(directory), ".%s%s*" % (glob.escape(name), TMP_MARK))):
        pid = tmp.rsplit(TMP_MARK, 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists("/proc/%s" % pid):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _copy_range(fd_in, fd_out, offset, length):
    """Copy ``length`` bytes at ``offset``; copy_file_range where the kernel can, else pread/pwrite."""
    end = offset + length
    pos = offset
    use_cfr = hasattr(os, "copy_file_range")
    while pos < end:
        count = min(COPY_CHUNK, end - pos)
        if use_cfr:
            try:
                done = os.copy_file_range(fd_in, fd_out, count, pos, pos)
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                    use_cfr = False
                    continue
                raise
            if done == 0:  # source shrank under us
                raise VirtforgeError("source changed while copying (short read at %d)" % pos)
        else:
            data = os.pread(fd_in, min(count, 8 * 1024 * 1024), pos)
            if not data:
                raise VirtforgeError("source changed while copying (short read at %d)" % pos)
            done = os.pwrite(fd_out, data, pos)
        pos += done


def sparse_copy(src, dst):
    """Copy ``src`` to the new file ``dst`` keeping holes: only SEEK_DATA extents are copied."""
    fd_in = os.open(src, os.O_RDONLY)
    try:
        size = os.fstat(fd_in).st_size
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd_out, size)
            pos = 0
            while pos < size:
                try:
                    data = os.lseek(fd_in, pos, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # only a hole up to the end
                        break
                    if exc.errno == errno.EINVAL:  # no SEEK_DATA support: copy everything
                        data = pos
                        hole = size
                        _copy_range(fd_in, fd_out, data, hole - data)
                        break
                    raise
                hole = min(os.lseek(fd_in, data, os.SEEK_HOLE), size)
                _copy_range(fd_in, fd_out, data, hole - data)
                pos = hole
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


class ReflinkUnsupported(VirtforgeError):
    pass


def reflink_copy(src, dst):
    """Clone ``src`` into the new file ``dst`` with the FICLONE ioctl (shared extents)."""
    fd_in = os.open(src, os.O_RDONLY)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                fcntl.ioctl(fd_out, FICLONE, fd_in)
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
                    raise ReflinkUnsupported(
                        "the filesystem cannot reflink %s to %s (%s)"
                        % (src, os.path.dirname(dst), os.strerror(exc.errno)),
                        option="mode",
                        fix="Reflinks need btrfs, XFS with reflink=1 or similar, with source and target on "
                            "the same filesystem; use mode: full or mode: auto") from None
                raise
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


# ---------------------------------------------------------------------------------------------
# the plan


class Location(object):
    """Where a volume lives: a directory, and the libvirt pool owning it (or None)."""

    def __init__(self, directory, pool=None, pool_name=None):
        self.directory = directory
        self.pool = pool
        self.pool_name = pool_name

    def refresh(self):
        if self.pool is not None:
            self.pool.refresh(0)


def pool_location(conn, name, option):
    import libvirt  # pylint: disable=import-outside-toplevel

    from ._engine import parse_xml  # pylint: disable=import-outside-toplevel

    check_name(name, option=option, kind="pool name")
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        raise NotFound("storage pool %r does not exist" % name, option=option,
                       fix="Create it first (virtforge.libvirt.pool) or fix the name") from None
    root = parse_xml(pool.XMLDesc(0))
    ptype = root.get("type")
    if ptype not in FILE_POOL_TYPES:
        raise VirtforgeError(
            "pool %r is of type %r; volume manages file-backed pools only (%s)"
            % (name, ptype, ", ".join(FILE_POOL_TYPES)), option=option)
    if not pool.isActive():
        raise VirtforgeError("pool %r is not active" % name, option=option,
                             fix="Start it (virtforge.libvirt.pool with state: active)")
    target = root.findtext("target/path")
    if not target or not os.path.isdir(target):
        raise VirtforgeError("the target directory %r of pool %r does not exist on this host" % (target, name),
                             option=option, fix="Run the module on the libvirt host that owns the pool")
    return Location(os.path.realpath(target), pool, name)


def dir_location(directory, option="directory"):
    if not os.path.isabs(directory):
        raise VirtforgeError("%r is not an absolute path" % directory, option=option)
    if not os.path.isdir(directory):
        raise VirtforgeError("%r is not a directory" % directory, option=option,
                             fix="Create the directory first (ansible.builtin.file state: directory)")
    return Location(os.path.realpath(directory))


def confined(location, name, option):
    """The path of ``name`` inside ``location``; refuses names and symlinks that leave it."""
    check_name(name, option=option, kind="volume name")
    confine_path(name, location.directory, option)
    return os.path.join(location.directory, name)


class VolumePlan(object):
    def __init__(self, path, before):
        self.path = path
        self.before = before  # dict of properties, {} when missing
        self.after = dict(before)
        self.action = None  # create, clone, import, resize, delete
        self.steps = []
        self.mode_used = None

    @property
    def changed(self):
        return bool(self.steps)

    def changes(self):
        out = []
        for key in ("format", "capacity", "backing", "backing_format"):
            b, a = self.before.get(key), self.after.get(key)
            if b != a:
                out.append(dict(path="volume.%s" % key, action="add" if b is None else "remove" if a is None
                                else "update", before=b, after=a))
        if self.action == "delete":
            out = [dict(path="volume", action="remove", before=self.before.get("path"), after=None)]
        elif self.action in ("clone", "import") and self.before:
            out.append(dict(path="volume", action="replace", before=self.path, after=self.path))
        return out

    def diff(self, label):
        def view(props):
            return {k: v for k, v in sorted(props.items()) if k != "allocation" and v is not None}

        return dict(before=view(self.before) if self.before else {}, after=view(self.after) if self.after else {},
                    before_header="volume %s (before)" % label, after_header="volume %s (after)" % label)


class VolumeManager(object):
    def __init__(self, module, runner, conn=None):
        self.module = module
        self.params = module.params
        self.runner = runner
        self.conn = conn
        self.location = None
        self.source = None
        self.source_info = None

    # -- inputs ------------------------------------------------------------------------------

    def resolve(self):
        p = self.params
        if p.get("pool"):
            self.location = pool_location(self.conn, p["pool"], "pool")
        else:
            self.location = dir_location(p["directory"])
        path = confined(self.location, p["name"], "name")
        if p.get("capacity") is not None:
            self.capacity = round_up(parse_size(p["capacity"], "capacity", minimum=1))
        else:
            self.capacity = None
        if p["state"] == "present":
            src_opt = "clone_from" if p.get("clone_from") else "import_from" if p.get("import_from") else None
            if src_opt:
                self.source = self._resolve_source(src_opt, p[src_opt])
                if os.path.realpath(self.source) == os.path.realpath(path):
                    raise VirtforgeError("the source is the target itself (%s)" % path, option=src_opt)
                self.source_info = image_info(self.source, self.runner)
                if p.get("source_format"):
                    self.source_info["format"] = p["source_format"]
                if not self.source_info.get("format"):
                    raise VirtforgeError("cannot tell the format of %s" % self.source, option="source_format",
                                         fix="Set source_format")
            self.source_option = src_opt
        return path

    def _resolve_source(self, option, value):
        p = self.params
        if p.get("source_pool"):
            loc = pool_location(self.conn, p["source_pool"], "source_pool")
            path = confined(loc, value, option)
        else:
            if not os.path.isabs(value):
                raise VirtforgeError("%r is not an absolute path" % value, option=option,
                                     fix="Give the absolute path of the image, or a volume name with source_pool")
            path = value
        if not os.path.isfile(path):
            raise NotFound("the source image %s does not exist" % path, option=option,
                           fix="Build or copy the golden image first")
        return path

    # -- planning ----------------------------------------------------------------------------

    def plan(self):
        p = self.params
        path = self.resolve()
        exists = os.path.lexists(path)
        if exists and not os.path.isfile(path):
            raise VirtforgeError("%s exists and is not a regular file" % path, option="name")
        before = image_info(path, self.runner) if exists else {}
        plan = VolumePlan(path, before)
        if p["state"] == "absent":
            if exists:
                self._check_delete(path)
                plan.action = "delete"
                plan.after = {}
                plan.steps.append("delete")
            return plan
        if self.source:
            self._plan_from_source(plan, path, exists)
        elif not exists:
            if self.capacity is None:
                raise VirtforgeError("required to create volume %s" % p["name"], option="capacity",
                                     fix="Give a size such as '10G'")
            plan.action = "create"
            plan.after = dict(path=path, format=p.get("format") or "qcow2", capacity=self.capacity,
                              backing=None, backing_format=None)
            plan.steps.append("create")
        elif p.get("format") and p["format"] != before.get("format"):
            raise VirtforgeError(
                "%s exists with format %s, not %s" % (path, before.get("format"), p["format"]), option="format",
                fix="Converting in place is not supported: import it into a new volume with import_from")
        self._plan_resize(plan)
        return plan

    def _expected(self):
        """format, backing and backing format a clone or import of the source would have."""
        p = self.params
        src = self.source_info
        if self.source_option == "clone_from" and p["mode"] == "linked":
            if p.get("format") not in (None, "qcow2"):
                raise VirtforgeError("a linked clone is always qcow2", option="format")
            return "qcow2", os.path.realpath(self.source), src["format"]
        fmt = p.get("format") or src["format"]
        if fmt not in FORMATS:
            raise VirtforgeError("the source format %r cannot be kept" % fmt, option="format",
                                 fix="Set format: qcow2 or raw")
        return fmt, None, None

    def _plan_from_source(self, plan, path, exists):
        p = self.params
        fmt, backing, backing_fmt = self._expected()
        before = plan.before
        if exists:
            have_backing = os.path.realpath(before["backing"]) if before.get("backing") else None
            matches = (before.get("format") == fmt and have_backing == backing
                       and (backing is None or before.get("backing_format") == backing_fmt))
            if matches:
                return
            if not p["force"]:
                what = ("a linked clone of %s (%s)" % (backing, backing_fmt)) if backing else (
                    "a standalone %s image" % fmt)
                raise VirtforgeError(
                    "%s already exists (format %s, backing file %s) and is not %s"
                    % (path, before.get("format"), before.get("backing") or "none", what), option="name",
                    fix="Choose another name, or set force: true to replace it")
        plan.action = "clone" if self.source_option == "clone_from" else "import"
        capacity = self.source_info.get("capacity")
        plan.after = dict(path=path, format=fmt, capacity=capacity, backing=backing, backing_format=backing_fmt)
        plan.steps.append(plan.action)
        plan.mode_used = self._clone_mode(path, fmt) if plan.action == "clone" else self._import_mode(fmt)

    def _clone_mode(self, path, fmt):
        mode = self.params["mode"]
        if mode == "linked":
            return "linked"
        needs_convert = fmt != self.source_info["format"] or self.source_info.get("backing")
        if mode == "reflink":
            if needs_convert:
                raise VirtforgeError(
                    "a reflink copy keeps the image as it is; %s %s" % (
                        self.source, "has a backing file" if self.source_info.get("backing")
                        else "is %s, not %s" % (self.source_info["format"], fmt)),
                    option="mode", fix="Use mode: full to convert or flatten the image")
            if not self._same_fs(path):
                raise ReflinkUnsupported("%s and %s are on different filesystems; a reflink cannot cross them"
                                         % (self.source, os.path.dirname(path)), option="mode",
                                         fix="Use mode: full or mode: auto")
            return "reflink"
        if needs_convert:
            return "convert"
        if mode == "auto":
            return "auto"
        return "full"

    def _import_mode(self, fmt):
        if fmt != self.source_info["format"] or self.source_info.get("backing"):
            return "convert"
        return "full"

    def _same_fs(self, path):
        return os.stat(self.source).st_dev == os.stat(os.path.dirname(path)).st_dev

    def _plan_resize(self, plan):
        if self.capacity is None:
            return
        have = plan.after.get("capacity")
        if have == self.capacity or have is None:
            return
        if self.capacity < have and not self.params["shrink"]:
            raise VirtforgeError(
                "%s has a capacity of %d bytes; %d would shrink it" % (plan.path, have, self.capacity),
                option="capacity", fix="Set shrink: true to shrink it (data beyond the new end is lost)")
        plan.after["capacity"] = self.capacity
        if "resize" not in plan.steps and plan.action != "create":
            plan.steps.append("resize")
            plan.action = plan.action or "resize"

    def _check_delete(self, path):
        if self.params["force"]:
            return
        users = backing_users(path, self.location, self.conn)
        if users:
            raise VirtforgeError(
                "%s is the backing file of %s" % (path, ", ".join(sorted(users))), option="name",
                fix="Delete those images first, or set force: true (they become unusable)")
        domains = domain_users(self.conn, path)
        if domains:
            raise VirtforgeError(
                "%s is a disk of domain(s) %s" % (path, ", ".join(sorted(domains))), option="name",
                fix="Detach it or remove the domain first, or set force: true")

    # -- applying ----------------------------------------------------------------------------

    def apply(self, plan):
        path = plan.path
        if plan.action == "delete":
            os.unlink(path)
            self.location.refresh()
            return
        if plan.action == "create":
            with AtomicTarget(path) as tmp:
                self._qemu_img(["create", "-q", "-f", plan.after["format"], tmp.tmp, str(plan.after["capacity"])])
                tmp.commit()
        elif plan.action in ("clone", "import"):
            with AtomicTarget(path) as tmp:
                plan.mode_used = self._copy(plan, tmp.tmp)
                if plan.after["capacity"] != self.source_info.get("capacity"):
                    self._resize(tmp.tmp, plan.after["format"], plan.after["capacity"],
                                 plan.after["capacity"] < self.source_info["capacity"])
                tmp.commit()
        elif "resize" in plan.steps:
            self._resize(path, plan.before["format"], plan.after["capacity"],
                         plan.after["capacity"] < plan.before["capacity"])
        self.location.refresh()

    def _copy(self, plan, tmp):
        mode = plan.mode_used
        src = self.source
        fmt = plan.after["format"]
        if mode == "linked":
            self._qemu_img(["create", "-q", "-f", "qcow2", "-b", os.path.realpath(src),
                            "-F", self.source_info["format"], tmp])
            return mode
        if mode == "convert":
            self._qemu_img(["convert", "-f", self.source_info["format"], "-O", fmt, "-W", src, tmp])
            return mode
        if mode in ("reflink", "auto"):
            try:
                reflink_copy(src, tmp)
                return "reflink"
            except ReflinkUnsupported:
                if mode == "reflink":
                    raise
                if os.path.lexists(tmp):
                    os.unlink(tmp)
        sparse_copy(src, tmp)
        return "full"

    def _resize(self, path, fmt, size, shrink):
        argv = ["resize", "-q", "-f", fmt]
        if shrink:
            argv.append("--shrink")
        self._qemu_img(argv + [path, str(size)])

    def _qemu_img(self, args):
        self.runner.run(["qemu-img"] + args, what="qemu-img %s" % args[0])

    def result(self, plan):
        after = plan.after
        if after and os.path.exists(plan.path) and not self.module.check_mode:
            after = image_info(plan.path, self.runner)
        out = dict(changed=plan.changed, path=plan.path, name=self.params["name"], action=plan.action,
                   changes=plan.changes(), exists=bool(after))
        for key in ("format", "capacity", "allocation", "backing", "backing_format"):
            out[key] = after.get(key) if after else None
        out["pool"] = self.location.pool_name
        out["directory"] = self.location.directory
        if plan.mode_used:
            out["clone_mode"] = plan.mode_used
        return out


def _pool_directories(conn):
    """Target directories of the active file-backed pools of ``conn``."""
    from ._engine import parse_xml  # pylint: disable=import-outside-toplevel

    dirs = []
    if conn is None:
        return dirs
    for pool in conn.listAllStoragePools(0):
        try:
            if not pool.isActive():
                continue
            root = parse_xml(pool.XMLDesc(0))
        except Exception:  # pylint: disable=broad-except  # pool vanished meanwhile
            continue
        target = root.findtext("target/path")
        if root.get("type") in FILE_POOL_TYPES and target and os.path.isdir(target):
            dirs.append(os.path.realpath(target))
    return dirs


def backing_users(path, location, conn=None):
    """Images that use ``path`` as their backing file.

    Reads the qcow2 headers of the files in the volume's own directory and in every active
    file-backed pool of the connection, and the backing stores libvirt reports for the
    volume's pool.
    """
    real = os.path.realpath(path)
    users = set()
    directories = [location.directory] + [d for d in _pool_directories(conn) if d != location.directory]
    for directory in directories:
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False) and entry.path != path and TMP_MARK not in entry.name:
                info = qcow2_header(entry.path)
                if info and info["backing"] and os.path.realpath(info["backing"]) == real:
                    users.add(entry.path)
    if location.pool is not None:
        from ._engine import parse_xml  # pylint: disable=import-outside-toplevel

        location.pool.refresh(0)
        for vol in location.pool.listAllVolumes(0):
            try:
                root = parse_xml(vol.XMLDesc(0))
            except Exception:  # pylint: disable=broad-except  # volume vanished meanwhile
                continue
            for node in root.iterfind("backingStore/path"):
                if node.text and os.path.realpath(node.text) == real:
                    users.add(vol.path())
    return users


def domain_users(conn, path):
    """Names of libvirt domains (defined or running) that have ``path`` as a disk source."""
    if conn is None:
        return set()
    from ._engine import parse_xml  # pylint: disable=import-outside-toplevel

    real = os.path.realpath(path)
    names = set()
    for dom in conn.listAllDomains(0):
        root = parse_xml(dom.XMLDesc(0))
        for src in root.iterfind("devices/disk/source"):
            f = src.get("file")
            if f and os.path.realpath(f) == real:
                names.add(dom.name())
    return names


def item_params(module):
    """The parameter dicts to handle: the module's own, or one per item of ``volumes``."""
    items = expand(module, "volumes", VOLUME_MODULE_ARGSPEC, required=("name",), not_shared=("name",))
    single = items is None
    items = [module.params] if single else items
    for index, params in enumerate(items):
        where = "" if single else "volumes[%d]." % index
        for first, second in _EXCLUSIVE:
            if params.get(first) and params.get(second):
                raise VirtforgeError("parameters are mutually exclusive: %s|%s" % (first, second),
                                     option=where + first)
        if not params.get("pool") and not params.get("directory"):
            raise VirtforgeError("one of pool or directory is required", option=where + "pool")
    return single, items


def needs_libvirt(params):
    """Plain image files need no libvirt, except to delete one safely (domains using it as a disk,
    images in pools using it as their backing file)."""
    return bool(params["pool"] or params["source_pool"] or params["state"] == "absent")


def run_module(module, runner, conn_factory):
    """Plan every volume, stop in check mode, apply otherwise; returns the module result.

    ``conn_factory()`` opens the libvirt connection; it is called once, and only when a volume
    needs libvirt.
    """
    single, items = item_params(module)
    conn = conn_factory() if any(needs_libvirt(p) for p in items) else None
    try:
        def plan_fn(view):
            view.manager = VolumeManager(view, runner, conn)
            return view.manager.plan()

        def result_fn(view, plan):
            result = view.manager.result(plan)
            if module._diff:
                result["diff"] = plan.diff(plan.path)
            return result

        results = run_batch(module, items, plan_fn, lambda view, plan: view.manager.apply(plan), result_fn,
                            list_option=None if single else "volumes")
    finally:
        if conn is not None:
            conn.close()
    if single:
        return results[0]
    out = dict(changed=any(r["changed"] for r in results), volumes=results)
    if module._diff:
        out["diff"] = [r.pop("diff") for r in results]
    return out

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_build: a bootable Debian image from a mirror, cached by the sha256 of its recipe.

Pipeline (measured, see docs/images.md):
  1. debootstrap --variant=minbase --include=... RELEASE ROOT MIRROR   (the mirror is always explicit)
  2. configure the tree in place: fstab by UUID, grub defaults for a serial console, systemd-networkd
     DHCP on any NIC by name match, SSH host keys removed (regenerated at first boot), empty machine-id
  3. virt-make-fs --partition=mbr --format=qcow2 --type=ext4 --size=+FREE ROOT IMAGE
  4. one guestfish run: set the filesystem UUID that fstab names, grub-install --target=i386-pc, update-grub
     (``bootloader: grub-efi``: virt-make-fs makes the bare ext4 filesystem; one guestfish run lays out a
     GPT disk, partition 1 an EFI system partition, partition 2 the root with that filesystem copied in,
     and installs GRUB for UEFI on the removable-media path EFI/BOOT/BOOTX64.EFI)
  5. checksum, rename into the cache as <hash>.<format> with <hash>.json beside it; copy or link to dest
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import uuid

from .._errors import VirtforgeError
from .._validate import parse_size
from . import common

# Bump when the pipeline changes what it produces: every cached image is then rebuilt.
PIPELINE_VERSION = 1

DEFAULT_CACHE_DIR = "/var/cache/virtforge/images"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_KERNEL = "linux-image-cloud-amd64"
# What every image gets: a kernel and bootloader, systemd with networkd (DHCP by NIC match),
# udev (starts qemu-guest-agent when its virtio port appears, gives predictable NIC names),
# the guest agent and SSH.
BASE_PACKAGES = (
    "systemd-sysv", "udev", "dbus", "initramfs-tools", "iproute2",
    "qemu-guest-agent", "openssh-server",
)
# grub-efi: GRUB for UEFI, and the signed chain for Secure Boot (Microsoft-signed shim, Debian-signed GRUB;
# Debian's kernels are signed) - the image boots with Secure Boot on or off
BOOTLOADER_PACKAGES = {"grub-pc": ("grub-pc",),
                       "grub-efi": ("grub-efi-amd64", "grub-efi-amd64-signed", "shim-signed", "dosfstools")}
# grub-efi images: the EFI system partition's size (GRUB's removable-path image and its modules fit
# many times over: kernels live on the root filesystem)
ESP_MIB = 128
ESP_TYPE_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE_GUID = "0FC63DAF-8483-4772-8E79-3D69E47DE4E4"
RELEASES = ("bookworm", "trixie", "bullseye")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_TIMEZONE_RE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
_MATCH_RE = re.compile(r"^[A-Za-z0-9_.:*?\[\]-]+$")

ARGUMENT_SPEC = dict(
    release=dict(type="str", default="bookworm", choices=list(RELEASES)),
    mirror=dict(type="str", default=DEFAULT_MIRROR),
    components=dict(type="list", elements="str", default=["main"]),
    variant=dict(type="str", default="minbase", choices=["minbase", "default"]),
    kernel=dict(type="str", default=DEFAULT_KERNEL),
    packages=dict(type="list", elements="str", default=[]),
    cloud_init=dict(type="bool", default=False),
    free_space=dict(type="raw", default="512M"),
    bootloader=dict(type="str", default="grub-pc", choices=["grub-pc", "grub-efi"]),
    format=dict(type="str", default="qcow2", choices=["qcow2", "raw"]),
    hostname=dict(type="str", default="debian"),
    timezone=dict(type="str", default="Etc/UTC"),
    root_password=dict(type="str", no_log=True),
    kernel_cmdline=dict(type="str", default="console=ttyS0"),
    dhcp_match=dict(type="list", elements="str", default=["en*", "eth*"]),
    cache_dir=dict(type="path", default=DEFAULT_CACHE_DIR),
    package_cache=dict(type="path"),
    dest=dict(type="path"),
    dest_mode=dict(type="str", default="copy", choices=["copy", "symlink"]),
    log_path=dict(type="path"),
    force=dict(type="bool", default=False),
)


def _bad(option, msg, fix=None):
    return VirtforgeError(msg, option=option, fix=fix)


def recipe_from_params(params):
    """The canonical recipe: every option that changes the image's content, normalised.

    Options that only say *where* (cache_dir, dest, log_path, package_cache) are not part of it.
    """
    release = params["release"]
    if release not in RELEASES:
        raise _bad("release", "%r is not a supported release" % release,
                   "Use one of %s" % ", ".join(RELEASES))
    mirror = (params["mirror"] or "").rstrip("/")
    if not re.match(r"^(https?|file)://[^\s'\"]+$", mirror):
        raise _bad("mirror", "%r is not an http(s):// or file:// URL" % params["mirror"])
    components = sorted(set(params["components"] or ["main"]))
    for comp in components:
        if not re.match(r"^[a-z-]+$", comp):
            raise _bad("components", "%r is not a component name" % comp)
    kernel = params["kernel"]
    if not _PACKAGE_RE.match(kernel or ""):
        raise _bad("kernel", "%r is not a package name" % kernel)
    packages = set()
    for index, name in enumerate(params["packages"] or []):
        if not _PACKAGE_RE.match(name or ""):
            raise _bad("packages[%d]" % index, "%r is not a Debian package name" % name)
        packages.add(name)
    if params["cloud_init"]:
        packages.add("cloud-init")
    free_space = parse_size(params["free_space"], "free_space", default_unit="b", minimum=64 * 1024 ** 2)
    hostname = params["hostname"]
    if not _HOSTNAME_RE.match(hostname or ""):
        raise _bad("hostname", "%r is not a valid host name" % hostname,
                   "Use letters, digits and '-', dot-separated labels of at most 63 characters")
    timezone = params["timezone"]
    if not _TIMEZONE_RE.match(timezone or "") or ".." in timezone:
        raise _bad("timezone", "%r is not a time zone name" % timezone, "For example Etc/UTC or Europe/Paris")
    cmdline = params["kernel_cmdline"] or ""
    if re.search(r"[\"'`$\\\n]", cmdline):
        raise _bad("kernel_cmdline", "must not contain quotes, backslashes, '$' or newlines")
    matches = []
    for index, pattern in enumerate(params["dhcp_match"] or []):
        if not _MATCH_RE.match(pattern or ""):
            raise _bad("dhcp_match[%d]" % index, "%r is not an interface name pattern" % pattern)
        matches.append(pattern)
    return dict(
        pipeline=PIPELINE_VERSION,
        release=release,
        mirror=mirror,
        components=components,
        variant=params["variant"],
        kernel=kernel,
        packages=sorted(packages),
        bootloader=params["bootloader"],
        base_packages=_base_packages(kernel, params["bootloader"]),
        filesystem="ext4",
        format=params["format"],
        free_space=int(free_space),
        hostname=hostname,
        timezone=timezone,
        kernel_cmdline=" ".join(cmdline.split()),
        dhcp_match=sorted(set(matches)),
        root_password=common.secret_digest(params.get("root_password"), "image_build.root_password"),
    )


def recipe_hash(recipe):
    return common.canonical_hash(recipe)


def public_recipe(recipe):
    return common.mask_secrets(recipe, ("root_password",))


def include_packages(recipe):
    """What debootstrap installs: the recipe's ``base_packages`` (the base every image has, the kernel and
    the bootloader).

    The recipe's extra packages are installed afterwards with apt-get in the new tree: debootstrap
    configures --include packages without dependency ordering, which breaks packages such as
    cloud-init (python3-cryptography fails to configure).
    """
    return list(recipe["base_packages"])


def _base_packages(kernel, bootloader):
    """The recipe's ``base_packages``: the collection's base set, the kernel and the bootloader's packages,
    in debootstrap's order, each once. Part of the recipe, so a change of the collection's lists (a new
    bootloader package) is a new recipe and the cached image is rebuilt."""
    seen = []
    for name in list(BASE_PACKAGES) + [kernel] + list(BOOTLOADER_PACKAGES[bootloader]):
        if name not in seen:
            seen.append(name)
    return seen


def extra_packages(recipe):
    base = set(include_packages(recipe))
    return [name for name in recipe["packages"] if name not in base]


def apt_install_argv(chroot, root, packages):
    return [chroot, root, "apt-get", "install", "-y", "-q", "--no-install-recommends",
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"] + list(packages)


def debootstrap_argv(debootstrap, recipe, root, package_cache=None):
    argv = [debootstrap]
    if recipe["variant"] != "default":
        argv.append("--variant=%s" % recipe["variant"])
    argv.append("--components=%s" % ",".join(recipe["components"]))
    if package_cache:
        argv.append("--cache-dir=%s" % package_cache)
    argv.append("--include=%s" % ",".join(include_packages(recipe)))
    argv += [recipe["release"], root, recipe["mirror"]]
    return argv


def virt_make_fs_argv(tool, recipe, root, image):
    """grub-pc: the whole disk (MBR, one partition). grub-efi: the bare filesystem, raw (laid out later)."""
    layout = ["--format=raw"] if recipe["bootloader"] == "grub-efi" else [
        "--partition=mbr", "--format=%s" % recipe["format"]]
    return [tool] + layout + ["--type=%s" % recipe["filesystem"],
                              "--size=+%dM" % max(1, recipe["free_space"] // (1024 * 1024)), root, image]


MIB_SECTORS = 2048


def efi_disk_layout(fs_bytes):
    """Sizes of a grub-efi image holding a filesystem of ``fs_bytes``: dict(esp, root, disk_bytes).

    GPT: 1 MiB for the protective MBR and primary table, the ESP (partition 1), the root partition
    (partition 2, the filesystem's size rounded up to whole MiB), 1 MiB for the backup table.
    Every partition starts and ends on a MiB boundary. ``esp``/``root``: (first, last) sectors.
    """
    fs_mib = -(-int(fs_bytes) // (1024 * 1024))
    esp = (MIB_SECTORS, MIB_SECTORS * (1 + ESP_MIB) - 1)
    root = (esp[1] + 1, esp[1] + fs_mib * MIB_SECTORS)
    return dict(esp=esp, root=root, disk_bytes=(root[1] + 1 + MIB_SECTORS) * 512)


# (both run with guestfish's sh "...": no double quotes inside)
# grub-install for UEFI with the ESP mounted on /boot/efi: the removable-media path (what firmware boots
# without a boot entry in its NVRAM, as on any machine the image is copied to), no NVRAM writes; then the
# ESP into fstab by its UUID
GRUB_INSTALL_EFI = ("grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram "
                    "--uefi-secure-boot && "
                    "test -f /boot/efi/EFI/BOOT/BOOTX64.EFI && "
                    "u=$(blkid -s UUID -o value $(findmnt -n -o SOURCE /boot/efi)) && test ${#u} -gt 0 && "
                    "echo UUID=$u /boot/efi vfat umask=0077 0 1 >> /etc/fstab")


ESP_MKFS = "r=$(findmnt -n -o SOURCE /) && mkfs.fat -F 32 -n EFI ${r%2}1"


def guestfish_efi_script(fs_uuid, layout):
    """guestfish commands for ``guestfish -a IMAGE -a FILESYSTEM``: the GPT disk of a grub-efi image.

    /dev/sda is the new disk, /dev/sdb the filesystem virt-make-fs made (guestfish's names, which it
    translates). The filesystem is copied into partition 2 (zero blocks skipped), checked and given the
    UUID fstab names; partition 1 becomes a FAT32 EFI system partition mounted on /boot/efi for
    grub-install.
    """
    esp, root = layout["esp"], layout["root"]
    return "\n".join([
        "run",
        "part-init /dev/sda gpt",
        "part-add /dev/sda p %d %d" % esp,
        "part-add /dev/sda p %d %d" % root,
        "part-set-gpt-type /dev/sda 1 %s" % ESP_TYPE_GUID,
        "part-set-gpt-type /dev/sda 2 %s" % LINUX_TYPE_GUID,
        "part-set-name /dev/sda 1 EFI",
        "part-set-name /dev/sda 2 root",
        "copy-device-to-device /dev/sdb /dev/sda2 sparse:true",
        "e2fsck /dev/sda2 correct:true",
        "set-uuid /dev/sda2 %s" % fs_uuid,
        "mount /dev/sda2 /",
        "mkdir-p /boot/efi",
        # FAT32 (mkfs.fat's default at this size is FAT16, which some firmware does not boot from), made
        # by the guest's mkfs.fat on the root's disk partition 1 in the appliance's names
        "sh \"%s\"" % ESP_MKFS,
        "mount /dev/sda1 /boot/efi",
        "sh \"%s\"" % GRUB_INSTALL_EFI,
        "command \"update-grub\"",
        "sync",
        "umount-all",
        "",
    ])


def guestfish_argv(tool, recipe, image):
    return [tool, "--format=%s" % recipe["format"], "-a", image]


# grub-install runs in the guest's root, where disks have the appliance kernel's names: the image is
# not always sda there (the appliance's own disk can come up first), so the disk holding / is asked.
GRUB_INSTALL = ("r=$(findmnt -n -o SOURCE /) && d=$(readlink -f /sys/class/block/${r#/dev/}/..) && "
                "grub-install --target=i386-pc /dev/${d##*/}")


def guestfish_bootloader_script(fs_uuid, partition="/dev/sda1"):
    """guestfish commands: give the filesystem the UUID fstab names, install grub, write grub.cfg.

    tune2fs refuses to change the UUID of a metadata_csum filesystem mounted since its last check
    (virt-make-fs mounted it), so the filesystem is checked first. ``partition`` is guestfish's
    name (guestfish translates it); ``GRUB_INSTALL`` finds the disk in the appliance's names.
    """
    return "\n".join([
        "run",
        "e2fsck %s correct:true" % partition,
        "set-uuid %s %s" % (partition, fs_uuid),
        "mount %s /" % partition,
        "sh \"%s\"" % GRUB_INSTALL,
        "command \"update-grub\"",
        "sync",
        "umount-all",
        "",
    ])


def grub_defaults(text, cmdline):
    """/etc/default/grub with a short timeout, our kernel command line and a serial terminal."""
    wanted = {
        "GRUB_TIMEOUT": "1",
        "GRUB_CMDLINE_LINUX_DEFAULT": '"%s"' % cmdline,
        "GRUB_TERMINAL": '"console serial"',
        "GRUB_SERIAL_COMMAND": '"serial --unit=0 --speed=115200"',
    }
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in wanted:
            lines.append("%s=%s" % (key, wanted.pop(key)))
        else:
            lines.append(line)
    for key, value in wanted.items():
        lines.append("%s=%s" % (key, value))
    return "\n".join(lines) + "\n"


def networkd_dhcp_unit(matches):
    return ("# Written by virtforge.libvirt.image_build: DHCP on any NIC whose name matches.\n"
            "[Match]\nName=%s\n\n[Network]\nDHCP=yes\n" % " ".join(matches))


SSH_KEYS_UNIT = """\
# Written by virtforge.libvirt: the image ships without SSH host keys; each machine makes its own.
[Unit]
Description=Generate missing SSH host keys
Before=ssh.service
ConditionPathExists=/usr/bin/ssh-keygen

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
"""


class Builder(object):
    """Builds (or finds in the cache) the image a recipe describes."""

    def __init__(self, module, runner, params):
        self.module = module
        self.runner = runner
        self.params = params
        self.recipe = recipe_from_params(params)
        self.hash = recipe_hash(self.recipe)
        self.cache_dir = os.path.abspath(params["cache_dir"])
        ext = "qcow2" if self.recipe["format"] == "qcow2" else "img"
        self.image = os.path.join(self.cache_dir, "%s.%s" % (self.hash, ext))
        self.metadata_path = os.path.join(self.cache_dir, "%s.json" % self.hash)
        self.log_path = params.get("log_path") or os.path.join(self.cache_dir, "%s.log" % self.hash)
        self.package_cache = params.get("package_cache") or os.path.join(self.cache_dir, "debs")
        self.dest = os.path.abspath(params["dest"]) if params.get("dest") else None
        if self.dest and os.path.isdir(self.dest):
            raise _bad("dest", "%s is a directory" % self.dest, "Give the full path of the image file")
        if self.dest and not os.path.isdir(os.path.dirname(self.dest)):
            raise _bad("dest", "the directory of %s does not exist" % self.dest)

    # -- state ---------------------------------------------------------------------------
    def cached_metadata(self):
        meta = common.read_json(self.metadata_path)
        if not meta or meta.get("recipe_hash") != self.hash or not os.path.isfile(self.image):
            return None
        if os.path.getsize(self.image) != meta.get("size_bytes"):
            return None
        return meta

    def dest_up_to_date(self):
        if not self.dest:
            return True
        if self.params["dest_mode"] == "symlink":
            return os.path.islink(self.dest) and os.readlink(self.dest) == self.image
        if os.path.islink(self.dest) or not os.path.isfile(self.dest) or not os.path.isfile(self.image):
            return False
        a, b = os.stat(self.dest), os.stat(self.image)
        return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)

    # -- run -----------------------------------------------------------------------------
    def run(self, check_mode):
        meta = None if self.params["force"] else self.cached_metadata()
        needs_build = meta is None
        needs_dest = needs_build or not self.dest_up_to_date()
        result = dict(
            changed=needs_build or needs_dest,
            recipe_hash=self.hash,
            recipe=public_recipe(self.recipe),
            image=self.image,
            metadata_path=self.metadata_path,
            log_path=self.log_path,
            dest=self.dest,
            path=self.dest or self.image,
            cache_hit=not needs_build,
            built=False,
            timings={},
        )
        changes = []
        if needs_build:
            changes.append(dict(path="image", action="build", before=None, after=self.image))
        if self.dest and needs_dest:
            changes.append(dict(path="dest", action=self.params["dest_mode"], before=None, after=self.dest))
        result["changes"] = changes
        result["diff"] = dict(
            before={"image": self.image if not needs_build else None, "dest": None if needs_dest else self.dest},
            after={"image": self.image, "dest": self.dest, "recipe": public_recipe(self.recipe)},
        )
        # Replacing a file that linked clones use as their backing file would corrupt them
        # (force: true over the cached image, or an outdated dest); check mode predicts the refusal.
        if needs_build and os.path.exists(self.image):
            self.check_no_clones(self.image, "force")
        if self.dest and needs_dest and os.path.lexists(self.dest) and not os.path.islink(self.dest):
            self.check_no_clones(self.dest, "dest")
        if check_mode:
            if meta:
                result.update(_meta_result(meta))
            return result
        if needs_build:
            meta = self.build()
            result["built"] = True
            result["timings"] = meta.get("timings", {})
        result.update(_meta_result(meta))
        if self.dest and needs_dest:
            if self.params["dest_mode"] == "symlink":
                common.atomic_symlink(self.image, self.dest)
            else:
                self.copy_to_dest()
        return result

    def check_no_clones(self, path, option):
        """Refuse to replace ``path`` when images in the cache, dest or pool directories use it as backing file."""
        directories = {self.cache_dir}
        if self.dest:
            directories.add(os.path.dirname(self.dest))
        try:
            from .._libvirt import connect  # pylint: disable=import-outside-toplevel
            conn = connect(self.params.get("uri"), readonly=True)
            try:
                directories.update(common.pool_directories(conn))
            finally:
                conn.close()
        except Exception:  # pylint: disable=broad-except
            self.module.warn("could not list libvirt's storage pools to look for linked clones of %s; "
                             "looked in %s only" % (path, ", ".join(sorted(directories))))
        clones = common.dependent_images(path, sorted(directories))
        if clones:
            raise VirtforgeError(
                "%s is the backing file of %d image(s) (%s): replacing it would corrupt them" % (
                    path, len(clones), ", ".join(clones[:3]) + (" ..." if len(clones) > 3 else "")),
                option=option, fix="Remove those clones first, or use another recipe or dest (a new file)")

    def copy_to_dest(self):
        """A sparse copy under a temporary name next to dest, with the cache file's mtime, renamed when complete."""
        tmp = common.temp_name(self.dest)
        try:
            self.runner.run([self.runner.which("cp"), "--sparse=always", "--preserve=timestamps", self.image, tmp],
                            what="cp (to dest)")
            os.chmod(tmp, 0o644)
            os.rename(tmp, self.dest)
        except BaseException:
            common.remove_quietly(tmp)
            raise

    def build(self):
        tools = common.require_tools(
            self.runner, ["debootstrap", "virt-make-fs", "guestfish", "qemu-img", "chroot", "mount", "umount"])
        if os.geteuid() != 0:
            raise VirtforgeError("building an image needs root (debootstrap, chroot)",
                                 fix="Run the task with become: true")
        os.makedirs(self.cache_dir, mode=0o755, exist_ok=True)
        os.makedirs(self.package_cache, mode=0o755, exist_ok=True)
        lock_path = os.path.join(self.cache_dir, "%s.lock" % self.hash)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # Another run may have built it while we waited for the lock.
                meta = None if self.params["force"] else self.cached_metadata()
                if meta:
                    return meta
                return self._build_locked(tools)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
                common.remove_quietly(lock_path)

    def _build_locked(self, tools):
        if os.path.exists(self.log_path):
            os.unlink(self.log_path)
        log = common.PhaseLog(self.log_path)
        log.line("image_build %s: %s" % (self.hash, common.canonical_json(public_recipe(self.recipe))))
        env = common.guestfs_env()
        log.line("libguestfs environment: %s" % " ".join("%s=%s" % kv for kv in sorted(env.items())))
        with common.temp_dir(self.cache_dir, ".build-%s-" % self.hash[:12]) as work:
            root = os.path.join(work, "root")
            tmp_image = os.path.join(work, "image.%s" % self.recipe["format"])
            with log.phase("debootstrap", "%s from %s" % (self.recipe["release"], self.recipe["mirror"])):
                # builds of other recipes share the package cache: one debootstrap writes it at a time
                # (two would download the same .deb into the same file); the lock file stays in place
                with open(os.path.join(self.package_cache, ".lock"), "a") as cache_lock:
                    fcntl.flock(cache_lock, fcntl.LOCK_EX)
                    self.runner.run(debootstrap_argv(tools["debootstrap"], self.recipe, root, self.package_cache),
                                    environ={"DEBIAN_FRONTEND": "noninteractive"}, what="debootstrap")
            extra = extra_packages(self.recipe)
            if extra:
                with log.phase("packages", " ".join(extra)):
                    self.install_packages(root, extra, tools)
            fs_uuid = str(uuid.uuid4())
            with log.phase("configure"):
                self.configure_tree(root, fs_uuid, tools["chroot"])
            efi = self.recipe["bootloader"] == "grub-efi"
            fs_image = os.path.join(work, "rootfs.raw") if efi else tmp_image
            with log.phase("make-fs", "+%d MiB free" % (self.recipe["free_space"] // 1024 ** 2)):
                self.runner.run(virt_make_fs_argv(tools["virt-make-fs"], self.recipe, root, fs_image),
                                environ=env, what="virt-make-fs")
            common.remove_quietly(root)
            if efi:
                with log.phase("bootloader", "GPT, EFI system partition, GRUB for UEFI"):
                    layout = efi_disk_layout(os.path.getsize(fs_image))
                    self.runner.run([tools["qemu-img"], "create", "-q", "-f", self.recipe["format"], tmp_image,
                                     str(layout["disk_bytes"])], what="qemu-img create")
                    self.runner.run([tools["guestfish"], "--format=%s" % self.recipe["format"], "-a", tmp_image,
                                     "--format=raw", "-a", fs_image],
                                    data=guestfish_efi_script(fs_uuid, layout).encode(), environ=env,
                                    what="guestfish (GPT, grub-install --target=x86_64-efi, update-grub)")
                    common.remove_quietly(fs_image)
            else:
                with log.phase("bootloader"):
                    self.runner.run(guestfish_argv(tools["guestfish"], self.recipe, tmp_image),
                                    data=guestfish_bootloader_script(fs_uuid).encode(), environ=env,
                                    what="guestfish (grub-install, update-grub)")
            with log.phase("checksum"):
                _rc, out, _err = self.runner.run([tools["qemu-img"], "info", "--output=json", tmp_image],
                                                 what="qemu-img info")
                info = json.loads(out)
                digest = common.sha256_file(tmp_image)
            os.chmod(tmp_image, 0o644)
            meta = dict(
                recipe_hash=self.hash,
                recipe=public_recipe(self.recipe),
                image=self.image,
                format=self.recipe["format"],
                sha256=digest,
                size_bytes=os.path.getsize(tmp_image),
                virtual_size_bytes=int(info.get("virtual-size", 0)),
                filesystem_uuid=fs_uuid,
                created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                timings=dict(log.timings, total=log.total()),
            )
            os.rename(tmp_image, self.image)
        common.atomic_write_text(self.metadata_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        log.line("image %s ready (%d bytes, sha256 %s) in %.1f s" % (self.image, meta["size_bytes"], digest,
                                                                     meta["timings"]["total"]))
        return meta

    def install_packages(self, root, packages, tools):
        """apt-get install in the tree, with /proc mounted and services kept from starting."""
        policy = os.path.join(root, "usr/sbin/policy-rc.d")
        with open(policy, "w") as handle:
            handle.write("#!/bin/sh\n# virtforge.libvirt image_build: no service starts while building\nexit 101\n")
        os.chmod(policy, 0o755)
        proc = os.path.join(root, "proc")
        self.runner.run([tools["mount"], "-t", "proc", "proc", proc], what="mount /proc (in the image)")
        try:
            self.runner.run(apt_install_argv(tools["chroot"], root, packages),
                            environ={"DEBIAN_FRONTEND": "noninteractive"}, what="apt-get install (in the image)")
            self.runner.run([tools["chroot"], root, "apt-get", "clean"], what="apt-get clean (in the image)")
        finally:
            self.runner.run([tools["umount"], "-l", proc], check=False)
            os.unlink(policy)

    def configure_tree(self, root, fs_uuid, chroot):
        recipe = self.recipe

        def path(rel):
            return os.path.join(root, rel.lstrip("/"))

        def write(rel, text, mode=0o644):
            os.makedirs(os.path.dirname(path(rel)), exist_ok=True)
            with open(path(rel), "w") as handle:
                handle.write(text)
            os.chmod(path(rel), mode)

        write("/etc/hostname", recipe["hostname"] + "\n")
        short = recipe["hostname"].split(".")[0]
        names = recipe["hostname"] if short == recipe["hostname"] else "%s %s" % (recipe["hostname"], short)
        write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" % names)
        write("/etc/fstab", "# <file system> <mount point> <type> <options> <dump> <pass>\n"
              "UUID=%s\t/\t%s\terrors=remount-ro\t0\t1\n" % (fs_uuid, recipe["filesystem"]))
        with open(path("/etc/default/grub")) as handle:
            write("/etc/default/grub", grub_defaults(handle.read(), recipe["kernel_cmdline"]))
        if recipe["dhcp_match"]:
            # an empty [Match] would match every NIC: with no patterns, no DHCP unit at all
            write("/etc/systemd/network/90-virtforge-dhcp.network", networkd_dhcp_unit(recipe["dhcp_match"]))
        write("/etc/systemd/system/virtforge-ssh-host-keys.service", SSH_KEYS_UNIT)
        # Time zone
        zone = path("/usr/share/zoneinfo/" + recipe["timezone"])
        if not os.path.exists(zone) and recipe["timezone"] not in ("Etc/UTC", "UTC"):
            raise _bad("timezone", "the image has no zone file for %r" % recipe["timezone"],
                       "Add tzdata to packages, or check the zone name")
        common.remove_quietly(path("/etc/localtime"))
        os.symlink("/usr/share/zoneinfo/" + recipe["timezone"], path("/etc/localtime"))
        write("/etc/timezone", recipe["timezone"] + "\n")
        if recipe["packages"] and "cloud-init" in recipe["packages"]:
            write("/etc/cloud/cloud.cfg.d/90-virtforge.cfg",
                  "# Written by virtforge.libvirt: look for a NoCloud seed only (no network metadata probing)\n"
                  "datasource_list: [ NoCloud, None ]\n")
        self.runner.run([chroot, root, "systemctl", "enable", "systemd-networkd.service",
                         "virtforge-ssh-host-keys.service"], what="systemctl enable (in the image)")
        if self.params.get("root_password"):
            self.runner.run([chroot, root, "chpasswd"], data=("root:%s\n" % self.params["root_password"]).encode(),
                            what="chpasswd (in the image)")
        # Every clone must get its own identity at first boot.
        ssh_dir = path("/etc/ssh")
        if os.path.isdir(ssh_dir):
            for name in os.listdir(ssh_dir):
                if name.startswith("ssh_host_"):
                    os.unlink(os.path.join(ssh_dir, name))
        write("/etc/machine-id", "", mode=0o444)
        dbus_id = path("/var/lib/dbus/machine-id")
        if os.path.lexists(dbus_id):
            os.unlink(dbus_id)
            os.symlink("/etc/machine-id", dbus_id)
        archives = path("/var/cache/apt/archives")
        if os.path.isdir(archives):
            for name in os.listdir(archives):
                if name.endswith(".deb"):
                    os.unlink(os.path.join(archives, name))


def _meta_result(meta):
    return dict(
        sha256=meta.get("sha256"),
        size_bytes=meta.get("size_bytes"),
        virtual_size_bytes=meta.get("virtual_size_bytes"),
        format=meta.get("format"),
        created=meta.get("created"),
        build_timings=meta.get("timings", {}),
    )


def run_module(module, runner):
    builder = Builder(module, runner, module.params)
    return builder.run(module.check_mode)

"""Unit tests for the image engines: recipe canonicalisation and hashing, argument lists, the
customization spec and its record, guestfish output parsing, qcow2 headers and seed ISO ids."""

import json
import os
import struct
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._image import build, common, customize, seed


def build_params(**over):
    params = dict((k, v.get("default")) for k, v in build.ARGUMENT_SPEC.items())
    params.update(over)
    return params


def cust_params(**over):
    params = dict((k, v.get("default")) for k, v in customize.ARGUMENT_SPEC.items())
    params.update(over)
    return params


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvQ3kqXh4gk2Jd9yZ9dYqvS2oO0m7dC2nZlYk3f1a2b me@host"


# ---------------------------------------------------------------------------------- recipe
class TestRecipe:
    def test_defaults(self):
        recipe = build.recipe_from_params(build_params())
        assert recipe["release"] == "bookworm"
        assert recipe["kernel"] == "linux-image-cloud-amd64"
        assert recipe["free_space"] == 512 * 1024 ** 2
        assert recipe["root_password"] is None
        assert recipe["pipeline"] == build.PIPELINE_VERSION

    def test_canonical_order_units_and_duplicates_do_not_change_the_hash(self):
        a = build.recipe_from_params(build_params(packages=["zstd", "less", "zstd"], free_space="700M",
                                                  mirror="http://deb.debian.org/debian/",
                                                  dhcp_match=["eth*", "en*"]))
        b = build.recipe_from_params(build_params(packages=["less", "zstd"], free_space=700 * 1024 ** 2,
                                                  mirror="http://deb.debian.org/debian"))
        assert a == b
        assert build.recipe_hash(a) == build.recipe_hash(b)

    @pytest.mark.parametrize("change", [
        dict(packages=["zstd"]), dict(kernel="linux-image-amd64"), dict(free_space="1G"),
        dict(release="trixie"), dict(root_password="x"), dict(cloud_init=True), dict(format="raw"),
        dict(hostname="other"), dict(timezone="Europe/Paris"), dict(mirror="http://mirror.example/debian"),
    ])
    def test_every_content_option_changes_the_hash(self, change):
        assert build.recipe_hash(build.recipe_from_params(build_params(**change))) != \
            build.recipe_hash(build.recipe_from_params(build_params()))

    def test_the_collections_package_lists_are_part_of_the_recipe(self, monkeypatch):
        # a bootloader package added in a later release of the collection is a new recipe: rebuilt, not
        # served from the cache under the old hash
        before = build.recipe_from_params(build_params(bootloader="grub-efi"))
        assert before["base_packages"][-4:] == list(build.BOOTLOADER_PACKAGES["grub-efi"])
        assert before["base_packages"].count("linux-image-cloud-amd64") == 1
        lists = dict(build.BOOTLOADER_PACKAGES, **{"grub-efi": build.BOOTLOADER_PACKAGES["grub-efi"] + ("mokutil",)})
        monkeypatch.setattr(build, "BOOTLOADER_PACKAGES", lists)
        after = build.recipe_from_params(build_params(bootloader="grub-efi"))
        assert build.recipe_hash(after) != build.recipe_hash(before)
        assert "mokutil" in build.include_packages(after)
        monkeypatch.setattr(build, "BASE_PACKAGES", build.BASE_PACKAGES + ("less",))
        assert build.recipe_hash(build.recipe_from_params(build_params(bootloader="grub-efi"))) != \
            build.recipe_hash(after)

    @pytest.mark.parametrize("change", [
        dict(cache_dir="/tmp/other"), dict(dest="/tmp/x.qcow2"), dict(dest_mode="symlink"),
        dict(log_path="/tmp/log"), dict(package_cache="/tmp/debs"), dict(force=True),
    ])
    def test_location_options_do_not_change_the_hash(self, change):
        assert build.recipe_from_params(build_params(**change)) == build.recipe_from_params(build_params())

    def test_hash_is_sha256_of_sorted_compact_json(self):
        recipe = build.recipe_from_params(build_params())
        text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
        import hashlib
        assert build.recipe_hash(recipe) == hashlib.sha256(text.encode()).hexdigest()

    def test_password_is_a_salted_digest_and_masked(self):
        recipe = build.recipe_from_params(build_params(root_password="hunter2"))
        assert "hunter2" not in json.dumps(recipe)
        assert recipe["root_password"].startswith("sha256:")
        assert build.public_recipe(recipe)["root_password"] == common.MASK
        other = build.recipe_from_params(build_params(root_password="hunter3"))
        assert other["root_password"] != recipe["root_password"]

    def test_cloud_init_adds_the_package(self):
        assert "cloud-init" in build.recipe_from_params(build_params(cloud_init=True))["packages"]

    @pytest.mark.parametrize("over,option", [
        (dict(release="sid"), "release"),
        (dict(packages=["ok", "bad name"]), "packages[1]"),
        (dict(packages=["Caps"]), "packages[0]"),
        (dict(kernel="linux image"), "kernel"),
        (dict(free_space="lots"), "free_space"),
        (dict(free_space="1M"), "free_space"),
        (dict(hostname="has space"), "hostname"),
        (dict(hostname="-lead"), "hostname"),
        (dict(mirror="ftp://x/debian"), "mirror"),
        (dict(mirror="http://x/debian a"), "mirror"),
        (dict(timezone="../etc/passwd"), "timezone"),
        (dict(kernel_cmdline="quiet $(reboot)"), "kernel_cmdline"),
        (dict(dhcp_match=["en* ; x"]), "dhcp_match[0]"),
        (dict(components=["main", "Bad"]), "components"),
    ])
    def test_bad_input_names_the_option(self, over, option):
        with pytest.raises(VirtforgeError) as info:
            build.recipe_from_params(build_params(**over))
        assert info.value.option == option
        assert info.value.message.startswith(option + ":")


class TestBuildArgv:
    def setup_method(self):
        self.recipe = build.recipe_from_params(build_params(packages=["zstd"], free_space="700M"))

    def test_debootstrap(self):
        argv = build.debootstrap_argv("/usr/sbin/debootstrap", self.recipe, "/w/root", "/c/debs")
        assert argv[0] == "/usr/sbin/debootstrap"
        assert "--variant=minbase" in argv
        assert "--cache-dir=/c/debs" in argv
        assert "--components=main" in argv
        include = [a for a in argv if a.startswith("--include=")][0][len("--include="):].split(",")
        for pkg in ("linux-image-cloud-amd64", "grub-pc", "qemu-guest-agent", "openssh-server", "udev",
                    "systemd-sysv"):
            assert pkg in include
        assert len(include) == len(set(include))
        # extra packages are installed with apt-get afterwards (dependency-ordered configuration)
        assert "zstd" not in include
        assert build.extra_packages(self.recipe) == ["zstd"]
        # the mirror is always explicit, last, after suite and target
        assert argv[-3:] == ["bookworm", "/w/root", "http://deb.debian.org/debian"]

    def test_apt_install(self):
        argv = build.apt_install_argv("/usr/sbin/chroot", "/w/root", ["cloud-init", "zstd"])
        assert argv[:5] == ["/usr/sbin/chroot", "/w/root", "apt-get", "install", "-y"]
        assert "--no-install-recommends" in argv
        assert argv[-2:] == ["cloud-init", "zstd"]

    def test_base_packages_are_not_installed_twice(self):
        recipe = build.recipe_from_params(build_params(packages=["udev", "zstd"]))
        assert build.extra_packages(recipe) == ["zstd"]

    def test_default_variant_has_no_variant_flag(self):
        recipe = build.recipe_from_params(build_params(variant="default"))
        assert not [a for a in build.debootstrap_argv("d", recipe, "/r") if a.startswith("--variant")]

    def test_virt_make_fs(self):
        argv = build.virt_make_fs_argv("virt-make-fs", self.recipe, "/w/root", "/w/image.qcow2")
        assert argv == ["virt-make-fs", "--partition=mbr", "--format=qcow2", "--type=ext4", "--size=+700M",
                        "/w/root", "/w/image.qcow2"]

    def test_virt_make_fs_bare_filesystem_for_uefi(self):
        recipe = build.recipe_from_params(build_params(bootloader="grub-efi", free_space="700M"))
        argv = build.virt_make_fs_argv("virt-make-fs", recipe, "/w/root", "/w/rootfs.raw")
        assert argv == ["virt-make-fs", "--format=raw", "--type=ext4", "--size=+700M", "/w/root", "/w/rootfs.raw"]
        assert build.include_packages(recipe)[-4:] == ["grub-efi-amd64", "grub-efi-amd64-signed", "shim-signed",
                                                       "dosfstools"]

    def test_efi_layout(self):
        layout = build.efi_disk_layout(1000 * 1024 * 1024 + 1)       # 1000 MiB and a byte
        assert layout["esp"] == (2048, 2048 * 129 - 1)                   # 1 MiB in, 128 MiB
        assert layout["root"] == (2048 * 129, 2048 * 129 + 1001 * 2048 - 1)
        # 1 MiB after the root for the backup table (33 sectors)
        assert layout["disk_bytes"] == (2048 * 129 + 1001 * 2048 + 2048) * 512

    def test_guestfish_efi_script(self):
        layout = build.efi_disk_layout(512 * 1024 * 1024)
        lines = build.guestfish_efi_script("0f0e-uuid", layout).splitlines()
        assert lines[:4] == ["run", "part-init /dev/sda gpt", "part-add /dev/sda p 2048 264191",
                             "part-add /dev/sda p 264192 1312767"]
        assert "part-set-gpt-type /dev/sda 1 C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in lines
        steps = ("copy-device-to-device /dev/sdb /dev/sda2 sparse:true", "e2fsck /dev/sda2 correct:true",
                 "set-uuid /dev/sda2 0f0e-uuid", "mount /dev/sda2 /", 'sh "%s"' % build.ESP_MKFS,
                 "mount /dev/sda1 /boot/efi", 'sh "%s"' % build.GRUB_INSTALL_EFI, 'command "update-grub"')
        order = [lines.index(x) for x in steps]
        assert order == sorted(order)
        # guestfish's sh "..." takes no double quotes inside; the shell parses both commands
        for command in (build.ESP_MKFS, build.GRUB_INSTALL_EFI):
            assert '"' not in command
            subprocess.run(["sh", "-n", "-c", command], check=True)
        assert "--removable --no-nvram" in build.GRUB_INSTALL_EFI and "mkfs.fat -F 32" in build.ESP_MKFS

    def test_guestfish_script(self):
        script = build.guestfish_bootloader_script("0f0e-uuid")
        lines = script.splitlines()
        assert lines[0] == "run"
        assert "set-uuid /dev/sda1 0f0e-uuid" in lines
        assert lines.index("set-uuid /dev/sda1 0f0e-uuid") < lines.index("mount /dev/sda1 /")
        assert lines.index("e2fsck /dev/sda1 correct:true") < lines.index("set-uuid /dev/sda1 0f0e-uuid")
        assert 'sh "%s"' % build.GRUB_INSTALL in lines
        assert "findmnt -n -o SOURCE /" in build.GRUB_INSTALL  # the disk holding /, not a fixed name
        assert 'command "update-grub"' in lines

    def test_grub_defaults(self):
        text = 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n'
        out = build.grub_defaults(text, "console=ttyS0")
        assert 'GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0"' in out
        assert "GRUB_TIMEOUT=1" in out
        assert 'GRUB_TERMINAL="console serial"' in out
        assert "quiet" not in out
        assert out.count("GRUB_CMDLINE_LINUX_DEFAULT") == 1

    def test_networkd_unit_matches_names(self):
        unit = build.networkd_dhcp_unit(["en*", "eth*"])
        assert "[Match]\nName=en* eth*\n" in unit
        assert "DHCP=yes" in unit


# ---------------------------------------------------------------------------------- customize spec
class TestCustomizeSpec:
    def test_only_what_is_set(self):
        assert customize.spec_from_params(cust_params()) == {}
        assert customize.spec_from_params(cust_params(hostname="web1")) == {"hostname": "web1"}

    def test_full_spec_is_canonical(self):
        spec = customize.spec_from_params(cust_params(
            hostname="web1.example.com", machine_id_reset=True, ssh_host_keys_regenerate=True,
            root_password="pw",
            users=[dict(name="deploy", groups=["sudo", "adm", "sudo"], shell=None, uid=None,
                        authorized_keys=[KEY + "  "], password_hash="$6$salt$hash")],
            network=[dict(match=None, mac="52:54:00:AA:BB:CC", dhcp=None, addresses=["10.0.0.5/24"],
                          gateway="10.0.0.1", dns=["10.0.0.1"])],
            files=[dict(path="/etc//motd", content="hi\n", src=None, mode="644", owner="root", group=None)],
            firstboot_commands=["echo hi"]))
        assert spec["users"][0]["groups"] == ["adm", "sudo"]
        assert spec["users"][0]["shell"] == "/bin/bash"
        assert spec["users"][0]["authorized_keys"] == [KEY]
        assert spec["users"][0]["password_hash"].startswith("sha256:")
        assert spec["network"][0] == {"mac": "52:54:00:aa:bb:cc", "addresses": ["10.0.0.5/24"], "dhcp": False,
                                      "gateway": "10.0.0.1", "dns": ["10.0.0.1"]}
        assert spec["files"][0]["path"] == "/etc/motd"
        assert spec["files"][0]["mode"] == "0644"
        assert spec["files"][0]["content_sha256"] == common.sha256_text("hi\n")
        public = customize.public_spec(spec)
        assert public["root_password"] == common.MASK
        assert public["users"][0]["password_hash"] == common.MASK
        assert "$6$salt$hash" not in json.dumps(spec)

    def test_mode_as_yaml_octal_int(self):
        spec = customize.spec_from_params(cust_params(files=[dict(path="/x", content="", src=None, mode=0o600,
                                                                  owner=None, group=None)]))
        assert spec["files"][0]["mode"] == "0600"

    def test_network_defaults_to_dhcp_on_en(self):
        spec = customize.spec_from_params(cust_params(network=[dict(match=None, mac=None, dhcp=None, addresses=[],
                                                                    gateway=None, dns=[])]))
        assert spec["network"] == [{"match": "en*", "dhcp": True}]

    def test_hash_changes_with_content_and_not_with_order_of_groups(self):
        def h(**kw):
            return customize.spec_hash(customize.spec_from_params(cust_params(**kw)))
        user = dict(name="u", shell=None, uid=None, authorized_keys=[], password_hash=None)
        assert h(users=[dict(user, groups=["a", "b"])]) == h(users=[dict(user, groups=["b", "a"])])
        assert h(hostname="a") != h(hostname="b")
        assert h(root_password="a") != h(root_password="b")
        assert h(firstboot_commands=["a", "b"]) != h(firstboot_commands=["b", "a"])

    def test_src_file_content_is_hashed(self, tmp_path):
        src = tmp_path / "f"
        src.write_text("one")
        entry = dict(path="/x", content=None, src=str(src), mode=None, owner=None, group=None)
        first = customize.spec_from_params(cust_params(files=[entry]))
        src.write_text("two")
        assert customize.spec_from_params(cust_params(files=[entry])) != first

    @pytest.mark.parametrize("over,option", [
        (dict(hostname="has spaces"), "hostname"),
        (dict(hostname="a" * 64), "hostname"),
        (dict(users=[dict(name="Bad")]), "users[0].name"),
        (dict(users=[dict(name="ok"), dict(name="ok")]), "users[1].name"),
        (dict(users=[dict(name="ok", groups=["x y"])]), "users[0].groups[0]"),
        (dict(users=[dict(name="ok", shell="bash")]), "users[0].shell"),
        (dict(users=[dict(name="ok", authorized_keys=["nope"])]), "users[0].authorized_keys[0]"),
        (dict(users=[dict(name="ok", password_hash="plain")]), "users[0].password_hash"),
        (dict(network=[dict(mac="zz")]), "network[0].mac"),
        (dict(network=[dict(match="en0; rm")]), "network[0].match"),
        (dict(network=[dict(addresses=["10.0.0.300/24"])]), "network[0].addresses[0]"),
        (dict(network=[dict(gateway="nope", addresses=["10.0.0.2/24"])]), "network[0].gateway"),
        (dict(network=[dict(dhcp=False)]), "network[0]"),
        (dict(files=[dict(path="rel")]), "files[0].path"),
        (dict(files=[dict(path="/a/../b", content="")]), "files[0].path"),
        (dict(files=[dict(path="/a")]), "files[0]"),
        (dict(files=[dict(path="/a", content="", src="/etc/hostname")]), "files[0]"),
        (dict(files=[dict(path="/a", src="/nonexistent/vft")]), "files[0].src"),
        (dict(files=[dict(path="/a", content="", mode="rwx")]), "files[0].mode"),
        (dict(files=[dict(path="/a", content="", owner="a b")]), "files[0].owner"),
        (dict(firstboot_commands=["  "]), "firstboot_commands[0]"),
    ])
    def test_bad_input_names_the_option(self, over, option):
        defaults = dict(users=dict(customize.USER_SPEC), network=dict(customize.NETWORK_SPEC),
                        files=dict(customize.FILE_SPEC))
        for key, items in list(over.items()):
            if key in defaults and isinstance(items, list):
                over[key] = [dict(((k, v.get("default")) for k, v in defaults[key].items()), **item)
                             for item in items]
        with pytest.raises(VirtforgeError) as info:
            customize.spec_from_params(cust_params(**over))
        assert info.value.option == option


class TestRecord:
    def test_round_trip(self):
        spec = customize.spec_from_params(cust_params(hostname="h", root_password="pw"))
        digest = customize.spec_hash(spec)
        record = customize.make_record(spec, digest, now=0)
        parsed = customize.parse_record(json.dumps(record))
        assert parsed["sha256"] == digest
        assert parsed["spec"]["root_password"] == common.MASK
        assert parsed["applied"] == "1970-01-01T00:00:00Z"

    @pytest.mark.parametrize("text", [None, "", "not json", "[]", '{"sha256": "abc"}',
                                      '{"sha256": "%s"}' % ("a" * 64),
                                      '{"tool": "other", "sha256": "%s"}' % ("a" * 64)])
    def test_foreign_or_broken_records_are_none(self, text):
        assert customize.parse_record(text) is None

    def test_guestfish_read_output(self):
        record = json.dumps(dict(tool="virtforge.libvirt.image_customize", sha256="b" * 64))
        assert customize.parse_guestfish_read("true\ntrue\n" + record) == (True, record)
        assert customize.parse_guestfish_read("true\nfalse\n") == (False, None)
        assert customize.parse_guestfish_read("false\nfalse\n") is None  # not a root filesystem
        assert customize.parse_guestfish_read("") is None

    def test_read_script_is_read_only(self):
        script = customize.guestfish_read_script("/dev/sda1")
        assert "mount-ro /dev/sda1 /" in script
        assert "upload" not in script and "write" not in script


class TestGuestScripts:
    def spec(self, **kw):
        return customize.spec_from_params(cust_params(**kw))

    def test_apply_script_order_and_quoting(self, tmp_path):
        spec = self.spec(files=[dict(path='/etc/a "b"', content="x", src=None, mode=None, owner=None, group=None)])
        lines = customize.guestfish_apply_script(spec, str(tmp_path)).splitlines()
        assert lines[0] == "stat /etc/fstab"
        assert lines[1].startswith("-copy-out %s " % customize.RECORD_PATH)
        assert 'upload "%s/file-0" "/etc/a \\"b\\""' % tmp_path in lines
        # the record is written after the guest script ran
        run = lines.index('command "/bin/sh %s"' % customize.GUEST_SCRIPT)
        record = [i for i, line in enumerate(lines) if line.endswith(" " + customize.RECORD_PATH)
                  and line.startswith("upload")][0]
        assert run < record

    def test_guest_script_quotes_everything(self):
        params = cust_params(hostname="web1", machine_id_reset=True, ssh_host_keys_regenerate=True,
                             users=[dict(name="deploy", groups=["adm"], shell="/bin/sh", uid=1500,
                                         authorized_keys=[KEY], password_hash="$6$s$h")],
                             firstboot_commands=["echo 'it''s' > /tmp/x"])
        spec = customize.spec_from_params(params)
        text = customize.guest_script(spec, params, root_hash="$6$r$oot")
        assert ": > /etc/machine-id" in text
        assert "rm -f /etc/ssh/ssh_host_*" in text
        assert "useradd -m -s /bin/sh -u 1500 deploy" in text
        assert "usermod -p '$6$s$h' deploy" in text
        assert "usermod -p '$6$r$oot' root" in text
        assert "virtforge-firstboot.service" in text
        name = customize.firstboot_name(0, params["firstboot_commands"][0])
        assert "%s/%s" % (customize.FIRSTBOOT_DIR, name) in text

    def test_no_root_hash_no_usermod_root(self):
        params = cust_params(hostname="x")
        assert "usermod -p" not in customize.guest_script(self.spec(hostname="x"), params)

    def test_networkd_units(self):
        unit = customize.networkd_unit({"mac": "52:54:00:aa:bb:cc", "dhcp": False, "addresses": ["10.0.0.5/24"],
                                        "gateway": "10.0.0.1", "dns": ["1.1.1.1"]})
        assert "MACAddress=52:54:00:aa:bb:cc" in unit
        assert "DHCP=no" in unit and "Address=10.0.0.5/24" in unit and "Gateway=10.0.0.1" in unit
        assert "Name=" not in unit


# ---------------------------------------------------------------------------------- files
def qcow2_header(backing):
    name = backing.encode()
    header = bytearray(512)
    header[0:4] = common.QCOW2_MAGIC
    header[4:8] = struct.pack(">I", 3)
    header[8:20] = struct.pack(">QI", 200, len(name))
    header[200:200 + len(name)] = name
    return bytes(header)


class TestQcow2:
    def test_backing_file_and_dependents(self, tmp_path):
        golden = tmp_path / "golden.qcow2"
        golden.write_bytes(qcow2_header("")[:20].replace(struct.pack(">QI", 200, 0), struct.pack(">QI", 0, 0)))
        (tmp_path / "clone1.qcow2").write_bytes(qcow2_header(str(golden)))
        (tmp_path / "clone2.qcow2").write_bytes(qcow2_header("golden.qcow2"))  # relative to the clone
        (tmp_path / "other.qcow2").write_bytes(qcow2_header("/elsewhere.qcow2"))
        (tmp_path / "raw.img").write_bytes(b"\0" * 64)
        assert common.qcow2_backing_file(str(tmp_path / "clone2.qcow2")) == "golden.qcow2"
        assert common.qcow2_backing_file(str(golden)) is None
        assert common.qcow2_backing_file(str(tmp_path / "raw.img")) is None
        found = common.dependent_images(str(golden), [str(tmp_path), str(tmp_path / "missing")])
        assert sorted(os.path.basename(p) for p in found) == ["clone1.qcow2", "clone2.qcow2"]

    def test_backing_chain(self, tmp_path):
        (tmp_path / "a.qcow2").write_bytes(qcow2_header(""))
        (tmp_path / "b.qcow2").write_bytes(qcow2_header("a.qcow2"))
        (tmp_path / "c.qcow2").write_bytes(qcow2_header(str(tmp_path / "b.qcow2")))
        chain = customize.backing_chain(str(tmp_path / "c.qcow2"))
        assert [os.path.basename(p) for p in chain] == ["c.qcow2", "b.qcow2", "a.qcow2"]

    def test_detect_format(self, tmp_path):
        (tmp_path / "q").write_bytes(qcow2_header(""))
        (tmp_path / "r").write_bytes(b"\0" * 16)
        assert customize.detect_format(str(tmp_path / "q")) == "qcow2"
        assert customize.detect_format(str(tmp_path / "r")) == "raw"


class TestSeed:
    def test_files_and_stable_instance_id(self):
        spec = dict(path="/x/seed.iso", user_data={"users": ["default"]}, meta_data=None, network_config=None,
                    instance_id=None)
        files = seed.seed_files(spec, hostname="web1")
        assert files["user-data"].startswith("#cloud-config\n")
        meta = json.loads(files["meta-data"])
        assert meta["local-hostname"] == "web1"
        assert meta["instance-id"].startswith("iid-")
        assert seed.seed_files(spec, hostname="web1") == files
        assert "network-config" not in files

    def test_string_user_data_taken_as_is(self):
        files = seed.seed_files(dict(path="/s", user_data="#!/bin/sh\necho hi", meta_data={"instance-id": "i-1"}))
        assert files["user-data"] == "#!/bin/sh\necho hi\n"
        assert json.loads(files["meta-data"])["instance-id"] == "i-1"

    def test_appid_round_trip(self, tmp_path):
        digest = "c" * 64
        iso = bytearray(17 * 2048)
        pvd = 16 * 2048
        iso[pvd] = 1
        iso[pvd + 1:pvd + 6] = b"CD001"
        appid = (seed.APPID_PREFIX + digest).upper().ljust(128).encode()
        iso[pvd + 574:pvd + 574 + 128] = appid
        path = tmp_path / "seed.iso"
        path.write_bytes(bytes(iso))
        assert seed.read_seed_hash(str(path)) == digest
        (tmp_path / "not.iso").write_bytes(b"\0" * 40000)
        assert seed.read_seed_hash(str(tmp_path / "not.iso")) is None
        assert seed.read_seed_hash(str(tmp_path / "missing.iso")) is None

    def test_genisoimage_argv(self):
        argv = seed.genisoimage_argv("genisoimage", "/o.iso", "/w", "d" * 64, ["user-data", "meta-data"])
        assert argv[argv.index("-volid") + 1] == "cidata"
        assert argv[argv.index("-appid") + 1] == "virtforge:" + "d" * 64
        assert argv[-2:] == ["/w/meta-data", "/w/user-data"]

    def test_bad_seed_path(self, tmp_path):
        with pytest.raises(VirtforgeError) as info:
            seed.validate_seed(dict(path=str(tmp_path / "nodir" / "s.iso")))
        assert info.value.option == "cloud_init_seed.path"
        with pytest.raises(VirtforgeError):
            seed.validate_seed(dict(path="relative.iso"))


class TestCommon:
    def test_phase_log(self, tmp_path):
        ticks = iter([0.0, 1.0, 3.5, 4.0, 4.0, 10.0])
        log = common.PhaseLog(str(tmp_path / "build.log"), clock=lambda: next(ticks))
        with log.phase("one"):
            pass
        with pytest.raises(RuntimeError):
            with log.phase("two"):
                raise RuntimeError("boom")
        assert log.timings == {"one": 2.5, "two": 0.0}
        text = (tmp_path / "build.log").read_text()
        assert "phase one: done in 2.5 s" in text
        assert "phase two: FAILED" in text and "boom" in text

    def test_atomic_write_leaves_no_temp(self, tmp_path):
        target = tmp_path / "f.json"
        common.atomic_write_text(str(target), "{}\n")
        assert target.read_text() == "{}\n"
        assert os.listdir(tmp_path) == ["f.json"]

    def test_temp_dir_removed_on_failure(self, tmp_path):
        with pytest.raises(ValueError):
            with common.temp_dir(str(tmp_path), ".w-") as work:
                open(os.path.join(work, "x"), "w").close()
                raise ValueError()
        assert os.listdir(tmp_path) == []

    def test_hardware_virtualization_from_cpuinfo(self, tmp_path):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text("processor: 0\nflags\t: fpu sse2 hypervisor\n")
        assert common.local_hardware_virtualization(str(cpuinfo), str(tmp_path / "kvm")) is False
        cpuinfo.write_text("flags\t: fpu vmx\n")
        assert common.local_hardware_virtualization(str(cpuinfo), str(tmp_path / "kvm")) is False
        (tmp_path / "kvm").write_text("")
        assert common.local_hardware_virtualization(str(cpuinfo), str(tmp_path / "kvm")) is True

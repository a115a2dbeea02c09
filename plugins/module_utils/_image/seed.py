# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud-init NoCloud seed ISOs (volume id ``cidata``: user-data, meta-data, network-config).

The hash of the seed's canonical content is written into the ISO's application id, so whether
an existing seed is up to date is one 128-byte read, with no tool and no mount.
"""

from __future__ import annotations

import json
import os

from .._errors import VirtforgeError
from . import common

APPID_PREFIX = "virtforge:"
# ISO 9660: the primary volume descriptor is sector 16; the application identifier is at 574 (128 bytes).
_PVD_OFFSET = 16 * 2048
_APPID_OFFSET = 574

SEED_SPEC = dict(
    path=dict(type="path", required=True),
    user_data=dict(type="raw"),
    meta_data=dict(type="dict"),
    network_config=dict(type="raw"),
    instance_id=dict(type="str"),
)


def _document(value, option, header=None):
    """A dict becomes YAML (written as JSON, which YAML reads); a string is taken as is."""
    if value is None:
        return None
    if isinstance(value, dict):
        text = json.dumps(value, indent=2, sort_keys=True) + "\n"
        return (header + "\n" + text) if header else text
    if isinstance(value, str):
        return value if value.endswith("\n") else value + "\n"
    raise VirtforgeError("must be a dict or a string", option=option)


def seed_files(spec, hostname=None):
    """The files of the seed: {name: text}. ``spec`` is the cloud_init_seed option."""
    user_data = _document(spec.get("user_data"), "cloud_init_seed.user_data", header="#cloud-config")
    if user_data is None:
        user_data = "#cloud-config\n{}\n"
    meta = dict(spec.get("meta_data") or {})
    if hostname and "local-hostname" not in meta:
        meta["local-hostname"] = hostname
    files = {"user-data": user_data}
    network = _document(spec.get("network_config"), "cloud_init_seed.network_config")
    if network is not None:
        files["network-config"] = network
    if "instance-id" not in meta:
        # Stable for the same content: cloud-init reruns per-instance modules when it changes.
        meta["instance-id"] = spec.get("instance_id") or "iid-" + common.canonical_hash(
            dict(files, meta=meta))[:16]
    files["meta-data"] = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    return files


def seed_hash(files):
    return common.canonical_hash(files)


def genisoimage_argv(tool, output, directory, digest, names):
    return [tool, "-output", output, "-volid", "cidata", "-appid", APPID_PREFIX + digest,
            "-joliet", "-rock", "-quiet"] + [os.path.join(directory, name) for name in sorted(names)]


def read_seed_hash(path):
    """The hash written into an existing seed's application id, None if not ours or unreadable."""
    try:
        with open(path, "rb") as handle:
            handle.seek(_PVD_OFFSET)
            pvd = handle.read(2048)
    except OSError:
        return None
    if len(pvd) < 2048 or pvd[1:6] != b"CD001":
        return None
    appid = pvd[_APPID_OFFSET:_APPID_OFFSET + 128].decode("ascii", "replace").strip()
    if not appid.startswith(APPID_PREFIX.upper()) and not appid.startswith(APPID_PREFIX):
        return None
    return appid[len(APPID_PREFIX):].lower()


def validate_seed(spec, hostname=None):
    """Check the seed option before anything is done; returns (path, files)."""
    path = common.check_absolute_path(spec.get("path"), "cloud_init_seed.path")
    if not os.path.isdir(os.path.dirname(path)):
        raise VirtforgeError("the directory of %s does not exist" % path, option="cloud_init_seed.path")
    if os.path.isdir(path):
        raise VirtforgeError("%s is a directory" % path, option="cloud_init_seed.path")
    return path, seed_files(spec, hostname)


def ensure_seed(runner, spec, hostname, check_mode):
    """Create or refresh the seed ISO. Returns a result dict (path, changed, sha256, files)."""
    path, files = validate_seed(spec, hostname)
    digest = seed_hash(files)
    current = read_seed_hash(path) if os.path.exists(path) else None
    result = dict(path=path, sha256=digest, changed=current != digest, previous_sha256=current,
                  files=sorted(files))
    if not result["changed"] or check_mode:
        return result
    tool = runner.which("genisoimage")
    with common.temp_dir(os.path.dirname(path), ".%s.seed-" % os.path.basename(path)) as work:
        for name, text in files.items():
            with open(os.path.join(work, name), "w") as handle:
                handle.write(text)
        tmp = os.path.join(work, "seed.iso")
        runner.run(genisoimage_argv(tool, tmp, work, digest, files), what="genisoimage")
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    return result

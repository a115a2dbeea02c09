# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OVA packages: the manifest (.mf) checked against every file it lists, before any conversion."""

from __future__ import annotations

import hashlib
import os
import re
import tarfile

from .._errors import VirtforgeError

_LINE = re.compile(r"^\s*(SHA1|SHA256|SHA512)\s*\(([^)]+)\)\s*=\s*([0-9a-fA-F]+)\s*$")
_CHUNK = 4 * 1024 * 1024


def parse_manifest(text, option="src"):
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise VirtforgeError("line %d of the OVA manifest is not 'SHA256(file)= digest': %r"
                                 % (number, line[:80]), option=option)
        algo, name, digest = match.groups()
        if "/" in name or name in (".", ".."):
            raise VirtforgeError("the OVA manifest names a file outside the package: %r" % name, option=option)
        entries.append(dict(algorithm=algo.lower(), name=name, digest=digest.lower()))
    if not entries:
        raise VirtforgeError("the OVA manifest lists no files", option=option)
    return entries


def _digest(handle, algorithm):
    h = hashlib.new(algorithm)
    while True:
        data = handle.read(_CHUNK)
        if not data:
            break
        h.update(data)
    return h.hexdigest()


def _members(path, option):
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise VirtforgeError("%s is not a readable OVA (tar) package: %s" % (path, exc), option=option) from None
    members = {}
    for member in tar.getmembers():
        name = os.path.normpath(member.name)
        if name.startswith("..") or os.path.isabs(name):
            tar.close()
            raise VirtforgeError("the OVA holds a file outside the package: %r" % member.name, option=option)
        if member.isfile():
            members[os.path.basename(name)] = member
    return tar, members


def verify(path, option="src", require_manifest=True):
    """Check an OVA (a tar file, or a directory of its files): every file the manifest lists is
    there and has the listed digest; the OVF descriptor and every disk are covered by it.
    Returns dict(ovf, manifest, files=[{name, algorithm, digest}])."""
    if os.path.isdir(path):
        names = {n: os.path.join(path, n) for n in os.listdir(path) if os.path.isfile(os.path.join(path, n))}
        tar, members = None, None
    else:
        tar, members = _members(path, option)
        names = {n: n for n in members}
    try:
        ovfs = sorted(n for n in names if n.lower().endswith(".ovf"))
        mfs = sorted(n for n in names if n.lower().endswith(".mf"))
        if len(ovfs) != 1:
            raise VirtforgeError("an OVA must hold exactly one .ovf descriptor; found %d" % len(ovfs), option=option)
        if not mfs:
            if require_manifest:
                raise VirtforgeError("the OVA has no manifest (.mf)", option=option,
                                     fix="Export it with a manifest, or set verify_manifest: false")
            return dict(ovf=ovfs[0], manifest=None, files=[])
        if len(mfs) > 1:
            raise VirtforgeError("the OVA holds %d manifests" % len(mfs), option=option)

        def open_member(name):
            if tar is None:
                return open(names[name], "rb")
            return tar.extractfile(members[name])

        with open_member(mfs[0]) as handle:
            entries = parse_manifest(handle.read().decode("utf-8", "replace"), option)
        listed = {e["name"] for e in entries}
        unlisted = sorted(n for n in names if n not in listed and n != mfs[0] and not n.lower().endswith(".cert"))
        if unlisted:
            raise VirtforgeError("the OVA manifest does not cover %s" % ", ".join(unlisted), option=option)
        for entry in entries:
            if entry["name"] not in names:
                raise VirtforgeError("the OVA manifest lists %s, which is not in the package" % entry["name"],
                                     option=option)
            with open_member(entry["name"]) as handle:
                actual = _digest(handle, entry["algorithm"])
            if actual != entry["digest"]:
                raise VirtforgeError("%s checksum of %s does not match the manifest (manifest %s, file %s)"
                                     % (entry["algorithm"].upper(), entry["name"], entry["digest"], actual),
                                     option=option, fix="The package is corrupt or was modified: export it again")
        return dict(ovf=ovfs[0], manifest=mfs[0], files=entries)
    finally:
        if tar is not None:
            tar.close()

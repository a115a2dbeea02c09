#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: volume
short_description: Create, resize, import, clone and delete libvirt volumes and image files
version_added: 0.1.0
description:
  - Manages one disk image, either a volume of a file-backed libvirt storage pool (O(pool), types
    C(dir), C(fs) and C(netfs)) or a plain image file in a directory (O(directory)).
  - Creates an empty image (O(capacity)), grows it (shrinks it only with O(shrink=true)), imports an
    existing image (O(import_from)), or clones a golden image (O(clone_from)) as a linked clone, a
    sparse full copy or a reflink copy (O(mode)).
  - Clones and imports are written under a temporary name in the target directory and renamed when
    complete. A failure (out of space, a tool failing, the task being interrupted) leaves nothing behind.
  - An existing target is never replaced unless O(force=true). An existing target that already is
    what was asked for (same format; for linked clones the same backing file and backing format) is
    left alone, so the module is idempotent.
  - After writing into a pool the pool is refreshed so libvirt sees the volume at once.
  - The module works on the files of the host it runs on; run it on (or delegate it to) the libvirt host.
  - With O(directory) and O(state=present) it does not connect to libvirt at all.
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
  - virtforge.libvirt.libvirt.attributes
attributes:
  idempotent:
    support: full
    description: A second run with the same options reports no change.
options:
  name:
    description:
      - File name of the volume inside the pool or directory, for example V(web1.qcow2).
      - Letters, digits and C(. _ - + :) only; C(/), C(..) and symbolic links that lead out of the
        pool or directory are refused.
      - Required unless O(volumes) is given.
    type: str
  volumes:
    description:
      - Several volumes in one task. Each item takes the options of the module itself (O(name), O(pool),
        O(clone_from), O(mode), O(capacity), ...), except O(volumes) and O(uri).
      - Options set at the top level are defaults for every item (except O(name)); an item's own value wins.
      - Every item is planned before any is changed, so bad input in one item changes nothing.
      - The result then has RV(volumes), one result per item, and in diff mode the diff is a list.
    type: list
    elements: dict
  pool:
    description:
      - Name of the libvirt storage pool holding the volume. The pool must be active.
      - Mutually exclusive with O(directory); one of them is required.
    type: str
  directory:
    description:
      - Absolute path of a directory holding the image file, for images outside any pool.
    type: path
  state:
    description:
      - V(present) makes sure the volume exists (created, imported or cloned as asked, resized to O(capacity)).
      - V(absent) deletes it. A volume that another image uses as its backing file, or that a libvirt
        domain has as a disk, is refused unless O(force=true). A missing volume is not an error.
    type: str
    choices: [present, absent]
    default: present
  capacity:
    description:
      - Virtual size, in bytes or with a unit (V(10G), V(512MiB), V(20GB)); rounded up to 512 bytes.
      - Required to create an empty volume. For an existing volume or a clone, a larger value grows it;
        a smaller one is refused unless O(shrink=true).
    type: str
    aliases: [size]
  format:
    description:
      - Image format. Defaults to V(qcow2) for new volumes and linked clones, and to the source's format
        for full, reflink and imported copies (a different format converts the image with C(qemu-img convert)).
      - An existing volume is never converted in place.
    type: str
    choices: [qcow2, raw]
  clone_from:
    description:
      - The image to clone (a golden image), given as an absolute path, or a volume name in O(source_pool).
    type: str
  import_from:
    description:
      - An image to copy into the pool or directory (any format C(qemu-img) reads; it is converted when
        O(format) differs, and flattened when it has a backing file).
    type: str
  source_pool:
    description:
      - The storage pool holding O(clone_from) or O(import_from), given as a volume name.
    type: str
  source_format:
    description:
      - Format of the source image. By default it is read from the image.
      - Linked clones always record the backing file's format explicitly (C(qemu-img create -F)).
    type: str
  mode:
    description:
      - How O(clone_from) is cloned.
      - V(linked) creates a qcow2 image whose backing file is the source (instant, shares the source's data;
        the source must stay unchanged).
      - V(full) writes an independent, sparse copy (only the source's data extents are copied).
      - V(reflink) clones the file with the C(FICLONE) ioctl (instant, independent, copy-on-write);
        fails with a clear error where the filesystem cannot (ext4, across filesystems).
      - V(auto) makes a reflink copy where possible and a full copy otherwise; RV(clone_mode) says which.
    type: str
    choices: [linked, full, reflink, auto]
    default: linked
  force:
    description:
      - With O(state=present), replace an existing target that is not what was asked for.
      - With O(state=absent), delete the volume even when other images use it as their backing file or
        a domain uses it as a disk.
    type: bool
    default: false
  shrink:
    description:
      - Allow O(capacity) to shrink an existing volume. Data beyond the new end is lost.
    type: bool
    default: false
notes:
  - Check mode computes the same plan as a real run and writes nothing.
  - With C(--diff) the volume's properties (path, format, capacity, backing file and format) are shown
    before and after.
"""

EXAMPLES = r"""
- name: Linked clones for three VMs in one task
  virtforge.libvirt.volume:
    pool: default
    clone_from: /var/lib/virtforge/images/debian12-golden.qcow2
    mode: linked
    volumes:
      - name: web1.qcow2
      - name: web2.qcow2
      - name: db1.qcow2
        mode: full
        capacity: 40G

- name: Linked clone of the golden image for web1
  virtforge.libvirt.volume:
    pool: default
    name: web1.qcow2
    clone_from: /var/lib/virtforge/images/debian12-golden.qcow2
    mode: linked
    capacity: 20G

- name: Independent copy, reflinked where the filesystem allows
  virtforge.libvirt.volume:
    pool: default
    name: db1.qcow2
    clone_from: debian12-golden.qcow2
    source_pool: images
    mode: auto

- name: An empty 50 GiB data disk
  virtforge.libvirt.volume:
    pool: default
    name: db1-data.qcow2
    capacity: 50G

- name: Import a raw image into the pool as qcow2
  virtforge.libvirt.volume:
    pool: default
    name: appliance.qcow2
    import_from: /srv/downloads/appliance.img
    format: qcow2

- name: A plain image file outside any pool
  virtforge.libvirt.volume:
    directory: /srv/images
    name: scratch.raw
    format: raw
    capacity: 1G

- name: Remove a clone (refused while other images use it as backing file)
  virtforge.libvirt.volume:
    pool: default
    name: web1.qcow2
    state: absent
"""

RETURN = r"""
volumes:
  description: With O(volumes), one result per item, in order, with the keys documented here for a single volume.
  returned: when O(volumes) is given
  type: list
  elements: dict
path:
  description: Absolute path of the volume.
  returned: always
  type: str
  sample: /var/lib/libvirt/images/web1.qcow2
name:
  description: The volume name.
  returned: always
  type: str
pool:
  description: The pool holding the volume, null for O(directory).
  returned: always
  type: str
directory:
  description: The directory holding the volume (the pool's target path for pools).
  returned: always
  type: str
exists:
  description: Whether the volume exists after the run (in check mode, would exist).
  returned: always
  type: bool
format:
  description: Image format.
  returned: when the volume exists
  type: str
  sample: qcow2
capacity:
  description: Virtual size in bytes.
  returned: when the volume exists
  type: int
allocation:
  description: Bytes allocated on disk (not predicted in check mode).
  returned: when the volume exists
  type: int
backing:
  description: Absolute path of the backing file, null when there is none.
  returned: when the volume exists
  type: str
backing_format:
  description: Format recorded for the backing file.
  returned: when the volume exists
  type: str
action:
  description: What was (or in check mode would be) done, null for nothing.
  returned: always
  type: str
  sample: clone
clone_mode:
  description: How the clone was made (V(linked), V(full), V(reflink), or V(convert) for a format change or flattening).
  returned: when a clone or import was planned
  type: str
changes:
  description: The property changes, as a list of dicts with path, action, before and after.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import (
    CONNECTION_ARGSPEC,
    check_libraries,
    module_connection,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner
from ansible_collections.virtforge.libvirt.plugins.module_utils._volume import (
    VOLUME_MODULE_ARGSPEC,
    VOLUME_MODULE_KWARGS,
    run_module,
)


def main():
    module = AnsibleModule(argument_spec=dict(CONNECTION_ARGSPEC, **VOLUME_MODULE_ARGSPEC), **VOLUME_MODULE_KWARGS)
    check_libraries(module)
    try:
        result = run_module(module, Runner(module), lambda: module_connection(module))
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

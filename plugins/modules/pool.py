#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pool
short_description: Declarative libvirt storage pools
version_added: 0.1.0
description:
  - Defines, starts, stops, builds, autostarts and removes one libvirt storage pool.
  - Only the options you set are compared with the existing definition; everything else in it is kept.
  - A changed definition of an existing pool is applied. The persistent definition is redefined at
    once; an active pool uses the new definition only after a restart, which the module does only with
    O(allow_restart=true). Otherwise it reports RV(restart_required) and a warning.
  - Pool types C(dir), C(fs), C(netfs), C(logical), C(disk) and C(iscsi) are written; see the collection's
    C(docs/storage.md) for which ones are proven against a real libvirt.
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
    description: Name of the pool.
    type: str
    required: true
  type:
    description:
      - Pool type. Defaults to V(dir) when the pool is created; not compared when not set.
    type: str
    choices: [dir, fs, netfs, logical, disk, iscsi]
  target:
    description:
      - Target path (the directory or mount point; for C(disk) V(/dev), for C(iscsi) V(/dev/disk/by-path) by default).
    type: path
  permissions:
    description: Owner, group, mode and security label of the target directory.
    type: dict
    suboptions:
      mode:
        description: Octal mode as a quoted string, for example V('0755').
        type: str
      owner:
        description: Numeric user id.
        type: str
      group:
        description: Numeric group id.
        type: str
      label:
        description: SELinux label.
        type: str
  source:
    description: Where the storage comes from.
    type: dict
    suboptions:
      host:
        description: Server name (C(netfs), C(iscsi)).
        type: str
      port:
        description: Server port.
        type: int
      dir:
        description: Exported directory (C(netfs)).
        type: str
      devices:
        description:
          - Block devices (C(fs), C(logical), C(disk)), or the target IQN (C(iscsi)).
        type: list
        elements: str
        aliases: [device]
      name:
        description: Volume group name (C(logical)).
        type: str
      format:
        description:
          - Source format, for example V(ext4) or V(auto) (C(fs)), V(nfs) (C(netfs)), V(lvm2) (C(logical)),
            V(gpt) or V(dos) (C(disk)).
        type: str
      initiator:
        description: Initiator IQN (C(iscsi)).
        type: str
  state:
    description:
      - V(present) defines the pool (a new pool stays inactive; an existing one keeps its state).
      - V(active) defines and starts it; V(inactive) defines and stops it.
      - V(absent) stops and undefines it; the storage itself is deleted only with O(delete=true).
    type: str
    choices: [present, active, inactive, absent]
    default: present
  autostart:
    description: Whether libvirt starts the pool when it starts. Not changed when not set.
    type: bool
  build:
    description:
      - Build the pool's storage (C(virsh pool-build)) when the pool is created or its target or source
        changes. For C(dir) this creates the target directory; for other types it never overwrites
        existing data (C(NO_OVERWRITE)).
    type: bool
    default: false
  allow_restart:
    description:
      - Restart an active pool whose definition changed so that the change takes effect.
      - Harmless for C(dir) pools; for C(netfs) and C(fs) a restart unmounts and mounts again, and for
        C(logical) it deactivates the volume group, which fails or disturbs guests using its volumes.
    type: bool
    default: false
  delete:
    description:
      - With O(state=absent), delete the underlying storage (C(virsh pool-delete); for C(dir), removes the
        target directory). Refused while the pool holds volumes unless O(force=true).
    type: bool
    default: false
  force:
    description: With O(delete=true), delete the pool's volumes too.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A directory pool, started at boot
  virtforge.libvirt.pool:
    name: images
    type: dir
    target: /srv/images
    permissions:
      mode: "0711"
    build: true
    state: active
    autostart: true

- name: Move it (redefines; restarts the active pool, which is safe for dir pools)
  virtforge.libvirt.pool:
    name: images
    target: /srv/vm-images
    build: true
    allow_restart: true
    state: active

- name: An NFS pool
  virtforge.libvirt.pool:
    name: nfs-images
    type: netfs
    source:
      host: nfs.example.com
      dir: /export/images
      format: nfs
    target: /var/lib/libvirt/nfs-images
    state: active

- name: An LVM pool on an existing volume group
  virtforge.libvirt.pool:
    name: vg-guests
    type: logical
    source:
      name: vg_guests
      format: lvm2
    state: active

- name: Remove a pool and its (empty) directory
  virtforge.libvirt.pool:
    name: images
    state: absent
    delete: true
"""

RETURN = r"""
name:
  description: The pool name.
  returned: always
  type: str
active:
  description: Whether the pool is active after the run (in check mode, would be).
  returned: always
  type: bool
autostart:
  description: Whether the pool starts with libvirt.
  returned: when the pool exists
  type: bool
restart_required:
  description: The pool is active and its new definition takes effect only after a restart (see O(allow_restart)).
  returned: always
  type: bool
changes:
  description: What changed, as a list of dicts with path, action, before, after (and state steps such as C(start)).
  returned: always
  type: list
  elements: dict
xml:
  description: The pool's persistent definition after the run (in check mode, the planned one).
  returned: when the pool exists
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import (
    CONNECTION_ARGSPEC,
    check_libraries,
    module_connection,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._pool import POOL_ARGSPEC, run_pool


def main():
    module = AnsibleModule(argument_spec=dict(CONNECTION_ARGSPEC, **POOL_ARGSPEC), supports_check_mode=True)
    check_libraries(module)
    try:
        conn = module_connection(module)
        try:
            result = run_pool(module, conn)
        finally:
            conn.close()
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

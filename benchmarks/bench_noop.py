"""No-op benchmark: re-running vm_deploy with nothing to change, for 50 VMs and for 1 VM.

The VMs are linked clones of the lab golden image, defined (state present) and not started: 50 guests
booting under software emulation would measure the CPU, not the role. Offline customization is off
(customize: false): its first run costs one libguestfs appliance per clone (35-60 s each here); a
customized clone's no-op check is one getxattr (see docs/performance.md).
"""

import json
import os

from common import cleanup

LAB_DIR = os.environ.get("VF_LAB_DIR", "/var/lib/virtforge-lab")
HERE = os.path.dirname(os.path.abspath(__file__))


def _vars(count, golden):
    return dict(
        vm_deploy_uri="qemu:///system",
        vm_deploy_pool="vflab",
        vm_deploy_golden_image=golden,
        vm_deploy_defaults=dict(vcpus=1, memory=128, clone_mode="linked", network="vflab-net", customize=False,
                                state="present"),
        vm_deploy_vms=[dict(name="bench-n-%02d" % i) for i in range(count)],
        vm_deploy_wait_for=[],
        vm_deploy_report=False,
    )


def _remove_disks():
    pool = os.path.join(LAB_DIR, "pool")
    for name in os.listdir(pool):
        if name.startswith("bench-n-"):
            os.unlink(os.path.join(pool, name))


def bench_noop(count, playbook, record):
    print("noop: re-run vm_deploy with nothing to change, %d VMs vs 1" % count, flush=True)
    with open(os.path.join(LAB_DIR, "golden.json")) as handle:
        golden = json.load(handle)["path"]
    play = os.path.join(os.path.dirname(HERE), "playbooks", "vm_deploy.yml")
    out = {}
    try:
        for n in (1, count):
            cleanup("bench-n-")
            _remove_disks()
            first = playbook(play, _vars(n, golden))[0]
            runs = [playbook(play, _vars(n, golden)) for _attempt in range(3)]
            for _seconds, stdout in runs:
                if "changed=0" not in stdout:
                    raise RuntimeError("vm_deploy re-run for %d VMs reported changes:\n%s" % (n, stdout[-3000:]))
            best = min(run[0] for run in runs)
            record("noop", "vm_deploy first run, %d VM(s) (clone + define)" % n, first)
            record("noop", "vm_deploy re-run, %d VM(s), changed=0 (best of 3)" % n, best)
            out[n] = best
    finally:
        cleanup("bench-n-")
        _remove_disks()
    return dict(noop_50_vs_1=out[count] / out[1], raw=out)

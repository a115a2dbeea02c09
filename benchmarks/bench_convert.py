"""Conversion benchmarks: the v2v module against the tools it drives, on the same disk, in one run.

* copy: the module's copy phase (``inspect: false``: a verified-format qemu-img copy into a temporary
  name, then renamed) against a plain ``qemu-img convert`` of the same VMware disk. Target >= 0.9x its
  throughput.
* total: the whole ``v2v`` task (virt-v2v inspection and fix-up, then the domain defined through the
  engine) against ``virt-v2v -i disk ... -o local`` run by hand with the same environment. Target <= 1.15x.

The source is a VMware disk (vmdk) made from the lab golden image, so virt-v2v inspects a real Debian guest.
"""

import json
import os
import shutil
import subprocess
import sys

LAB_DIR = os.environ.get("VF_LAB_DIR", "/var/lib/virtforge-lab")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import timed  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", ".build", "collections"))


def _guestfs_env():
    """The very environment the module gives virt-v2v (same function), so both runs are alike."""
    from ansible_collections.virtforge.libvirt.plugins.module_utils._convert.common import (  # noqa: E402
        conversion_environment,
    )
    return conversion_environment()


def _timed(argv, env=None):
    return timed(argv, env=env)[0]


def _undefine(name):
    subprocess.run(["virsh", "-c", "qemu:///system", "undefine", name], capture_output=True, check=False)


def bench_convert(playbook, record):
    here = os.path.join(LAB_DIR, "bench-convert")
    shutil.rmtree(here, ignore_errors=True)
    os.makedirs(here)
    try:
        return _bench(here, playbook, record)
    finally:
        for name in ("bench-cv-copy", "bench-cv-total"):
            _undefine(name)
        shutil.rmtree(here, ignore_errors=True)


def _bench(here, playbook, record):
    print("convert: v2v module vs qemu-img convert (copy) and vs virt-v2v by hand (total)", flush=True)
    with open(os.path.join(LAB_DIR, "golden.json")) as handle:
        golden = json.load(handle)["path"]
    src = os.path.join(here, "source.vmdk")
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", golden, src], check=True, capture_output=True)
    play = os.path.join(HERE, "playbooks", "convert.yml")
    out = {}

    # copy phase: plain qemu-img first, then the module; best of 2 each (page cache warm for both)
    plain = []
    for attempt in range(2):
        target = os.path.join(here, "plain-%d.qcow2" % attempt)
        plain.append(_timed(["qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", src, target]))
        os.unlink(target)
    ours = []
    for attempt in range(2):
        outdir = os.path.join(here, "copy-%d" % attempt)
        os.makedirs(outdir)
        result = os.path.join(here, "result.json")
        playbook(play, dict(bench_name="bench-cv-copy", bench_src=src, bench_dir=outdir, bench_inspect=False,
                            bench_result=result))
        with open(result) as handle:
            ours.append(json.load(handle)["copy"])
        _undefine("bench-cv-copy")
        shutil.rmtree(outdir)
    out["plain_copy"], out["ours_copy"] = min(plain), min(ours)
    record("convert", "qemu-img convert vmdk -> qcow2 (best of 2)", out["plain_copy"])
    record("convert", "v2v inspect: false, its copy phase (best of 2)", out["ours_copy"])

    # total: virt-v2v by hand, then the module (one each: minutes under TCG)
    handdir = os.path.join(here, "hand")
    os.makedirs(handdir)
    out["hand_total"] = _timed(["virt-v2v", "-i", "disk", src, "-o", "local", "-os", handdir, "-of", "qcow2",
                                "-on", "bench-cv-hand"], env=_guestfs_env())
    shutil.rmtree(handdir)
    record("convert", "virt-v2v -i disk -o local by hand", out["hand_total"])
    outdir = os.path.join(here, "total")
    os.makedirs(outdir)
    out["ours_total"] = playbook(play, dict(bench_name="bench-cv-total", bench_src=src, bench_dir=outdir,
                                            bench_inspect=True, bench_result=os.path.join(here, "r2.json")))[0]
    record("convert", "v2v module, whole task (virt-v2v + define)", out["ours_total"])
    return dict(copy_throughput_vs_qemu_img=out["plain_copy"] / out["ours_copy"],
                total_vs_virt_v2v=out["ours_total"] / out["hand_total"], raw=out)

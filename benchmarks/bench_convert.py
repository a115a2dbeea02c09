"""Conversion benchmarks: the v2v module against the tools it drives, on the same disk, in one run.

* copy: the module's copy phase (``inspect: false``: a verified-format qemu-img copy into a temporary
  name, then renamed) against a plain ``qemu-img convert`` of the same VMware disk. Target >= 0.9x its
  throughput. The disk holds COPY_DATA_MIB of incompressible data (and as much again unallocated), so the
  copy itself, not process start-up, is what is timed. The two alternate for COPY_ROUNDS rounds, each
  round with the other one first (the same command varies by up to 2x from run to run on our VM storage,
  and a run right after another copy differs from one after a pause); before each timed run dirty pages
  are written back, the CPUs left to go idle and the memory freed by the copy before left to settle
  (common.settle), so no run pays for the writeback of the copy before it, and the plain command, which
  starts at once, does not get memory the module's run, which starts after ansible-playbook's start-up,
  no longer has; the ratio is of the medians, the best-of ratio is kept beside it.
* total: the whole ``v2v`` task (virt-v2v inspection and fix-up, then the domain defined through the
  engine) against ``virt-v2v -i disk ... -o local`` run by hand with the same environment. Target <= 1.15x.

The total's source is a VMware disk (vmdk) made from the lab golden image, so virt-v2v inspects a real
Debian guest. ``--only convert-copy`` runs the copy case alone (seconds instead of minutes).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys

LAB_DIR = os.environ.get("VF_LAB_DIR", "/var/lib/virtforge-lab")
COPY_DATA_MIB = int(os.environ.get("VF_BENCH_COPY_MIB", "2048"))
COPY_ROUNDS = int(os.environ.get("VF_BENCH_COPY_ROUNDS", "10"))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import settle, timed  # noqa: E402
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


def _data_disk(path, data_mib):
    """A vmdk with ``data_mib`` MiB of random data followed by as much unallocated space."""
    raw = path + ".raw"
    chunk = os.urandom(1 << 20)
    with open(raw, "wb") as handle:
        for i in range(data_mib):
            # a different MiB each time (cheap): the first 8 bytes carry the index
            handle.write(i.to_bytes(8, "little") + chunk[8:])
        handle.truncate(2 * data_mib << 20)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, path], check=True, capture_output=True)
    os.unlink(raw)


def bench_convert(playbook, record, total=True):
    here = os.path.join(LAB_DIR, "bench-convert")
    shutil.rmtree(here, ignore_errors=True)
    os.makedirs(here)
    try:
        return _bench(here, playbook, record, total)
    finally:
        for name in ("bench-cv-copy", "bench-cv-total"):
            _undefine(name)
        shutil.rmtree(here, ignore_errors=True)


def _bench(here, playbook, record, total):
    print("convert: v2v module vs qemu-img convert (copy)%s" % (" and vs virt-v2v by hand (total)" if total else ""),
          flush=True)
    play = os.path.join(HERE, "playbooks", "convert.yml")
    out = {}

    # copy phase: plain qemu-img and the module alternate, each round with the other one first
    data = os.path.join(here, "data.vmdk")
    _data_disk(data, COPY_DATA_MIB)
    plain, ours = [], []

    def run_plain(attempt):
        target = os.path.join(here, "plain-%d.qcow2" % attempt)
        settle()
        plain.append(_timed(["qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", data, target]))
        os.unlink(target)

    def run_ours(attempt):
        outdir = os.path.join(here, "copy-%d" % attempt)
        os.makedirs(outdir)
        result = os.path.join(here, "result.json")
        settle()
        playbook(play, dict(bench_name="bench-cv-copy", bench_src=data, bench_dir=outdir, bench_inspect=False,
                            bench_result=result))
        with open(result) as handle:
            ours.append(json.load(handle)["copy"])
        _undefine("bench-cv-copy")
        shutil.rmtree(outdir)

    for attempt in range(COPY_ROUNDS):
        first, second = (run_plain, run_ours) if attempt % 2 == 0 else (run_ours, run_plain)
        first(attempt)
        second(attempt)
    os.unlink(data)
    out["plain_copy_samples"], out["ours_copy_samples"] = plain, ours
    out["plain_copy"], out["ours_copy"] = statistics.median(plain), statistics.median(ours)
    out["copy_data_mib"] = COPY_DATA_MIB
    record("convert", "qemu-img convert vmdk -> qcow2, %d MiB of data (median of %d)" % (COPY_DATA_MIB, COPY_ROUNDS),
           out["plain_copy"])
    record("convert", "v2v inspect: false, its copy phase, same disk (median of %d)" % COPY_ROUNDS, out["ours_copy"])
    ratios = dict(copy_throughput_vs_qemu_img=out["plain_copy"] / out["ours_copy"],
                  copy_throughput_vs_qemu_img_best_of=min(plain) / min(ours), raw=out)
    if not total:
        return ratios

    with open(os.path.join(LAB_DIR, "golden.json")) as handle:
        golden = json.load(handle)["path"]
    src = os.path.join(here, "source.vmdk")
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", golden, src], check=True, capture_output=True)
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
    ratios["total_vs_virt_v2v"] = out["ours_total"] / out["hand_total"]
    return ratios

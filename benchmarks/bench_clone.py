"""Clone benchmarks: linked clones do not grow with the image; full clones copy at cp --sparse=always speed."""

import os
import shutil
import subprocess
import time

LAB_DIR = os.environ.get("VF_LAB_DIR", "/var/lib/virtforge-lab")


def _run(argv):
    subprocess.run(argv, check=True, capture_output=True)


def _best(fn, repeat=3):
    times = []
    for _attempt in range(repeat):
        times.append(fn())
    return min(times)


def bench_clone(playbook, record):
    here = os.path.join(LAB_DIR, "bench-clone")
    shutil.rmtree(here, ignore_errors=True)
    os.makedirs(here)
    try:
        return _bench(here, playbook, record)
    finally:
        shutil.rmtree(here, ignore_errors=True)


def _bench(here, playbook, record):
    print("clone: linked clones of 1 GiB and 20 GiB images; full clone vs cp --sparse=always", flush=True)
    play = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "clone.yml")
    # Fully allocated sources (fallocate: fast, no data written) so size is real on disk.
    for size in ("1G", "20G"):
        _run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=falloc",
              os.path.join(here, "src-%s.qcow2" % size), size])
    counter = [0]

    def linked(size):
        counter[0] += 1
        target = "linked-%s-%d.qcow2" % (size, counter[0])
        seconds = playbook(play, dict(bench_dir=here, bench_target=target, bench_mode="linked",
                                      bench_source=os.path.join(here, "src-%s.qcow2" % size)))[0]
        os.unlink(os.path.join(here, target))
        return seconds

    t1 = _best(lambda: linked("1G"))
    t20 = _best(lambda: linked("20G"))
    record("clone", "linked clone of a 1 GiB image (best of 3)", t1)
    record("clone", "linked clone of a 20 GiB image (best of 3)", t20)

    # A raw image with 2 GiB of random data and a 2 GiB hole in the middle.
    source = os.path.join(here, "data.raw")
    with open(source, "wb") as handle:
        for _mib in range(1024):
            handle.write(os.urandom(1024 * 1024))
        handle.seek(3 * 1024 ** 3)
        for _mib in range(1024):
            handle.write(os.urandom(1024 * 1024))
    data_bytes = 2 * 1024 ** 3

    def cp():
        target = os.path.join(here, "cp.raw")
        start = time.monotonic()
        _run(["cp", "--sparse=always", source, target])
        _run(["sync", "-f", target])
        seconds = time.monotonic() - start
        os.unlink(target)
        return seconds

    def full():
        counter[0] += 1
        target = "full-%d.raw" % counter[0]
        seconds = playbook(play, dict(bench_dir=here, bench_target=target, bench_mode="full", bench_source=source))[0]
        os.unlink(os.path.join(here, target))
        return seconds

    def engine():
        # the copy engine alone (what mode=full runs), without Ansible's start-up
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                        ".build", "collections"))
        from ansible_collections.virtforge.libvirt.plugins.module_utils._volume import sparse_copy
        target = os.path.join(here, "engine.raw")
        start = time.monotonic()
        sparse_copy(source, target)
        _run(["sync", "-f", target])
        seconds = time.monotonic() - start
        os.unlink(target)
        return seconds

    cp()  # warm the page cache for all
    t_cp = _best(cp)
    t_engine = _best(engine)
    t_full = _best(full)
    record("clone", "cp --sparse=always, 4 GiB file with 2 GiB data", t_cp,
           "%.0f MiB/s" % (data_bytes / t_cp / 1024 ** 2))
    record("clone", "full-clone copy engine (sparse_copy), same file", t_engine,
           "%.0f MiB/s" % (data_bytes / t_engine / 1024 ** 2))
    record("clone", "volume mode=full, same file (whole task)", t_full,
           "%.0f MiB/s" % (data_bytes / t_full / 1024 ** 2))
    return dict(linked_20g_vs_1g=t20 / t1, full_engine_vs_cp_throughput=t_cp / t_engine,
                full_task_vs_cp_throughput=t_cp / t_full,
                raw=dict(linked_1g=t1, linked_20g=t20, cp=t_cp, engine=t_engine, full=t_full))

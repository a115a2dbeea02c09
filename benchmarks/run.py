#!/usr/bin/env python
"""Benchmarks of virtforge.libvirt, measured side by side in one run: `make bench`.

Prints a table of times and ratios and writes benchmarks/results/latest.json. See docs/performance.md.
Cases (select with --only): bulk, noop, clone, convert (convert-copy: its copy case alone).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import ROOT, cleanup, count_running, settle, timed, tiny_domain_xml  # noqa: E402

VENV = os.environ.get("VF_BENCH_VENV", os.path.join(ROOT, ".build", "bench-venv"))
PY = os.path.join(VENV, "bin", "python")
PLAYBOOK = os.path.join(VENV, "bin", "ansible-playbook")
ENV = {
    "ANSIBLE_CONFIG": os.path.join(ROOT, "tests", "ansible.cfg"),
    "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".build", "collections"),
    "ANSIBLE_PYTHON_INTERPRETER": PY,
    "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
}
LAB_DIR = os.environ.get("VF_LAB_DIR", "/var/lib/virtforge-lab")
RESULTS = []


def record(case, variant, seconds, note=""):
    RESULTS.append(dict(case=case, variant=variant, seconds=round(seconds, 2), note=note))
    print("  %-8s %-40s %8.2f s %s" % (case, variant, seconds, note), flush=True)


def playbook(path, extra):
    fd, varfile = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(extra, handle)
    try:
        return timed([PLAYBOOK, path, "-e", "@" + varfile], env=ENV)
    finally:
        os.unlink(varfile)


def _seconds_showing_retries(run):
    """The seconds of a run of the domain task; its starts that libvirt refused once (EAGAIN) are shown."""
    seconds, out = run
    for line in out.splitlines():
        if "started on attempt" in line:
            print("  (%s)" % line.strip(), flush=True)
    return seconds


def bench_bulk(count):
    print("bulk: define + start %d tiny domains" % count, flush=True)
    prefix = "bench-b-"
    names = ["%s%02d" % (prefix, i) for i in range(count)]
    xmldir = tempfile.mkdtemp(prefix="vf-bench-")
    for name in names:
        with open(os.path.join(xmldir, name + ".xml"), "w") as handle:
            handle.write(tiny_domain_xml(name))
    out = {}
    ours_vars = dict(bench_domains=[dict(name=n) for n in names])
    try:
        cases = [
            ("script", "libvirt-python script, one connection",
             lambda: timed([PY, os.path.join(HERE, "bulk_script.py"), str(count), prefix])[0]),
            ("virsh", "virsh define + start loop",
             lambda: timed(["bash", os.path.join(HERE, "bulk_virsh.sh"), str(count), prefix, xmldir])[0]),
            ("ours", "virtforge.libvirt.domain, one task",
             lambda: _seconds_showing_retries(playbook(os.path.join(HERE, "playbooks", "bulk_ours.yml"), ours_vars))),
            ("community", "community.libvirt.virt in a loop",
             lambda: playbook(os.path.join(HERE, "playbooks", "bulk_community.yml"),
                              dict(bench_names=names, bench_xmldir=xmldir))[0]),
        ]
        for key, label, run in cases:
            cleanup(prefix)
            settle()
            seconds = run()
            running = count_running(prefix)
            if running != count:
                raise RuntimeError("%s left %d of %d domains running" % (label, running, count))
            out[key] = seconds
            record("bulk", label, seconds)
            if key == "ours":
                # the same task again, with all domains already defined and running (50 idle guests keep the
                # CPUs about 12% busy: no settling here)
                seconds = playbook(os.path.join(HERE, "playbooks", "bulk_ours.yml"), ours_vars)[0]
                out["ours_noop"] = seconds
                record("bulk", "virtforge.libvirt.domain, nothing to change", seconds)
    finally:
        cleanup(prefix)
        shutil.rmtree(xmldir, ignore_errors=True)
    return dict(
        ours_vs_script=out["ours"] / out["script"],
        community_vs_ours=out["community"] / out["ours"],
        virsh_vs_ours=out["virsh"] / out["ours"],
        raw=out,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", choices=["bulk", "noop", "clone", "convert", "convert-copy"])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    only = set(args.only or ["bulk", "noop", "clone", "convert"])
    ratios = {}
    started = time.time()
    if "bulk" in only:
        ratios["bulk"] = bench_bulk(args.count)
    if "noop" in only:
        from bench_noop import bench_noop  # noqa: E402
        ratios["noop"] = bench_noop(args.count, playbook, record)
    if "clone" in only:
        from bench_clone import bench_clone  # noqa: E402
        ratios["clone"] = bench_clone(playbook, record)
    if "convert" in only or "convert-copy" in only:
        from bench_convert import bench_convert  # noqa: E402
        ratios["convert"] = bench_convert(playbook, record, total="convert" in only)
    print("\nratios (measured side by side in this run):")
    for case, values in ratios.items():
        for key, value in values.items():
            if key != "raw":
                print("  %-8s %-28s %6.2f" % (case, key, value))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "latest.json"), "w") as handle:
        json.dump(dict(started=started, results=RESULTS, ratios=ratios,
                       uname=os.uname()._asdict() if hasattr(os.uname(), "_asdict") else list(os.uname()),
                       nproc=os.cpu_count()), handle, indent=2, default=str)


if __name__ == "__main__":
    main()

"""Shared helpers for the benchmarks: tiny domain XML, cleanup, timing."""

import os
import subprocess
import time

import libvirt

URI = "qemu:///system"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# see settle(): how long freed memory takes to reach its settled state on our VMs
QUIET_SECONDS = 20.0


def tiny_domain_xml(name, domain_type="qemu"):
    """A domain with no disk and no NIC: QEMU starts, SeaBIOS finds nothing to boot and idles."""
    return (
        "<domain type='%s'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
        "<devices/></domain>" % (domain_type, name)
    )


def cleanup(prefix):
    """Destroy and undefine every domain whose name starts with prefix."""
    conn = libvirt.open(URI)
    for dom in conn.listAllDomains():
        if dom.name().startswith(prefix):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    conn.close()


def count_running(prefix):
    conn = libvirt.open(URI)
    n = sum(1 for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE) if d.name().startswith(prefix))
    conn.close()
    return n


def _cpu_ticks():
    """(busy, all) ticks of all CPUs: user, nice, system, irq and softirq are busy; idle and iowait are not;
    steal is time the CPUs were not ours (counted in all only); guest time is already inside user and nice."""
    with open("/proc/stat") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = [int(x) for x in handle.readline().split()[1:9]]
    return user + nice + system + irq + softirq, user + nice + system + idle + iowait + irq + softirq + steal


def settle(max_wait=20.0, window=0.5, idle_share=0.9, quiet=None):
    """Before a timed run: dirty pages written back (sync), then a wait until the CPUs are idle again, so a
    variant does not pay for the teardown or writeback of the one before it (50 QEMU processes exiting,
    2 GiB of a copy still being flushed), then a wait until ``quiet`` seconds (VF_BENCH_QUIET, default
    QUIET_SECONDS) have passed since the call, so every variant also starts from the same memory state.

    Our machines are VMs whose balloon device reports freed guest memory back to the host (virtio-balloon
    free page reporting): memory freed by the run before (a removed 2 GiB copy, exited QEMU processes) is
    handed back over several seconds, and touching it again then costs a fault in the host. A command
    started right after a large free therefore runs faster than the same command started seconds later
    (measured: the same 2 GiB ``qemu-img convert`` took 2.0-2.1 s started 0.6 s after the previous copy
    was removed, 2.8-3.1 s after 3.6 s, 3.8-4.0 s after 8.6 s, 4.1-5.0 s after 15.6-30.6 s), and a variant that
    starts through ansible-playbook reaches its work seconds later than a plain command. After the quiet
    period both start in the settled state. Every variant gets the same; the wait is not timed; returns
    the seconds waited."""
    if quiet is None:
        quiet = float(os.environ.get("VF_BENCH_QUIET", QUIET_SECONDS))
    start = time.monotonic()
    os.sync()
    while True:
        if time.monotonic() - start >= max_wait:
            print("  (the CPUs were still busy after %.0f s of waiting: timed anyway)" % max_wait, flush=True)
            break
        busy0, all0 = _cpu_ticks()
        time.sleep(window)
        busy1, all1 = _cpu_ticks()
        if all1 > all0 and (busy1 - busy0) / float(all1 - all0) <= 1 - idle_share:
            break
    left = quiet - (time.monotonic() - start)
    if left > 0:
        time.sleep(left)
    return time.monotonic() - start


def timed(argv, env=None, cwd=ROOT):
    full = dict(os.environ)
    full.update(env or {})
    start = time.monotonic()
    proc = subprocess.run(argv, env=full, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s\n%s"
                           % (" ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return elapsed, proc.stdout

"""The collection's molecule scenarios (extensions/molecule/*), run with `molecule test` against the lab.

kvm_host: a Debian guest with three NICs, made by the collection's own create playbook, is converged
into a KVM host by host_build (bond, bridge, VLAN, pool, networks), once per persistent network
provider selected. Molecule's own steps (syntax, idempotence) run as well as the scenario's checks.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import LAB_DIR, ROOT

SCENARIOS = os.path.join(ROOT, "extensions")


def host_image():
    path = os.path.join(LAB_DIR, "kvmhost.json")
    if not os.path.exists(path):
        pytest.fail("%s is missing: run tests/lab/golden-image.sh --host (make host-image) first" % path)
    with open(path) as handle:
        return json.load(handle)["path"]


STEP = re.compile(r"kvm_host \S+ (\w+): Executing")


def run_molecule(env, log, timeout):
    """Run `molecule test -s kvm_host`, every output line in ``log`` with the seconds since the start.

    Returns (rc, steps, plain text); rc is None when it ran past ``timeout`` (it is killed then).
    ``steps`` lists (step, seconds) in order, the last one possibly unfinished.
    """
    start = time.time()
    marks = []
    lines = []
    proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "molecule"), "test", "-s", "kvm_host"],
                            cwd=SCENARIOS, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    fired = threading.Event()

    def kill():
        fired.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        with open(log, "w") as out:
            for raw in proc.stdout:
                now = time.time() - start
                line = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode("utf-8", "replace"))
                out.write("[%7.1f] %s" % (now, line))
                out.flush()
                lines.append(line)
                found = STEP.search(line)
                if found:
                    marks.append((found.group(1), now))
        rc = proc.wait()
    finally:
        timer.cancel()
    end = time.time() - start
    steps = [(name, (marks[i + 1][1] if i + 1 < len(marks) else end) - at) for i, (name, at) in enumerate(marks)]
    return (None if fired.is_set() else rc), steps, "".join(lines)


# each provider's run has its own guest, MACs, trunk network and Molecule state: they may run side by side
RUNS = dict(
    ifupdown=dict(VF_MOLECULE_INSTANCE="vfm-kvmhost-ifu", VF_MOLECULE_MAC_PREFIX="52:54:00:7e:11",
                  VF_MOLECULE_TRUNK="vfm-trunk-ifu", VF_MOLECULE_TRUNK_BRIDGE="vfmtrunk-ifu",
                  VF_MOLECULE_TRUNK_PREFIX="10.254.7"),
    networkmanager=dict(VF_MOLECULE_INSTANCE="vfm-kvmhost-nm", VF_MOLECULE_MAC_PREFIX="52:54:00:7e:12",
                        VF_MOLECULE_TRUNK="vfm-trunk-nm", VF_MOLECULE_TRUNK_BRIDGE="vfmtrunk-nm",
                        VF_MOLECULE_TRUNK_PREFIX="10.254.8"),
)


# both persistent providers by default (make test-molecule); .ci/run gives each lane one provider
PROVIDERS = [p for p in os.environ.get("VF_MOLECULE_PROVIDERS", "ifupdown,networkmanager").split(",") if p]


def test_providers_are_known():
    assert PROVIDERS and set(PROVIDERS) <= set(RUNS), "VF_MOLECULE_PROVIDERS: choose from %s" % sorted(RUNS)


@pytest.mark.molecule
@pytest.mark.parametrize("provider", PROVIDERS)
def test_kvm_host(lab, provider, capsys):
    env = dict(os.environ)
    env.update(RUNS[provider])
    env.update(
        MOLECULE_EPHEMERAL_DIRECTORY=os.path.join(ROOT, ".build", "molecule", "kvm_host-" + provider),
        VF_MOLECULE_IMAGE=host_image(),
        VF_MOLECULE_POOL=lab["vf_lab_pool"],
        VF_MOLECULE_NETWORK=lab["vf_lab_network"],
        VF_MOLECULE_NETNS=lab["vf_lab_ns"],
        VF_MOLECULE_NET_PROVIDER=provider,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
        PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", ""),
    )
    # the scenario's own ansible.cfg (molecule writes one) applies, not the tests'
    env.pop("ANSIBLE_CONFIG", None)
    log = os.path.join(ROOT, ".build", "molecule-kvm_host-%s.log" % provider)
    timeout = float(os.environ.get("VF_MOLECULE_TIMEOUT", "5400"))
    rc, steps, text = run_molecule(env, log, timeout)
    # the same reading as the scenario's `| bool` of these variables (unset or empty: on)
    parts = ["off" if env.get(var, "").strip().lower() in ("0", "false", "no", "off", "n", "f") else "on"
             for var in ("VF_MOLECULE_CHECK_MODE", "VF_MOLECULE_REBOOT")]
    report = "molecule steps (%s; check-mode run %s, side_effect reboot %s): %s" % (
        provider, parts[0], parts[1], ", ".join("%s %d s" % step for step in steps))
    with capsys.disabled():
        print("\n" + report)
    if rc is None:
        step = steps[-1][0] if steps else "-"
        pytest.fail("molecule test -s kvm_host (%s) did not end within %d s (VF_MOLECULE_TIMEOUT); it was in step "
                    "%s; %s; log %s\n%s" % (provider, timeout, step, report, log, text[-25000:]))
    if rc != 0:
        pytest.fail("molecule test -s kvm_host (%s) failed (rc=%d); %s; log %s\n%s"
                    % (provider, rc, report, log, text[-25000:]))
    # molecule ran every step that proves the role, each to success (not a shortened sequence)
    for step in ("syntax", "create", "prepare", "converge", "idempotence", "side_effect", "verify", "destroy"):
        assert re.search(r"kvm_host \S+ %s: Executed: Successful" % step, text), "step %s did not succeed" % step

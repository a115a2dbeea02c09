#!/usr/bin/env bash
# `make test` after `make deps`: lint, unit tests and the suites that boot guests under emulation, side by side
# in lanes whose output lines carry the lane's name. Each guest-booting lane mostly keeps about one emulated CPU
# busy; on our 2-CPU machines the lanes finish far sooner than the same suites one after another
# (docs/testing.md has the timings). The molecule lane is the longest, so it starts first:
#   molecule-<provider>    the KVM-host guest image, then the kvm_host scenario per network provider in
#                          VF_TEST_MOLECULE_PROVIDERS (default `ifupdown+networkmanager`: both, one after the
#                          other in one lane; `ifupdown,networkmanager` runs each in a lane of its own,
#                          `ifupdown` one alone); it starts as soon as the lab is up. Here the scenario
#                          skips the role's check-mode run on the fresh guest and side_effect's second reboot
#                          (VF_MOLECULE_CHECK_MODE=1 / VF_MOLECULE_REBOOT=1 bring them back)
#   checks, image          lint and unit tests; beside them the golden image (its own lane)
#   integration            every integration target but the exclusive ones (make run-integration)
#   conversions            the generic-kernel image, then the P2V/V2V/V2P targets (make run-conversions)
#   exclusive              last and alone: targets that restart the lab's libvirtd (alias `exclusive`)
# integration and conversions start once lint, unit tests and the golden image passed; when one of them
# failed they do not run (the molecule lane, already running, ends on its own). The suite fails if any lane
# fails; every lane that started runs to its end and prints its time. One after another: make test-full.
set -euo pipefail
cd "$(dirname "$0")/.."
PROVIDERS=${VF_TEST_MOLECULE_PROVIDERS:-ifupdown+networkmanager}
start=$(date +%s)
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT

lane() {  # lane NAME TARGET... (environment passed through)
    local name=$1 t0 rc verdict
    shift
    t0=$(date +%s)
    set +e
    make --no-print-directory "$@" 2>&1 | sed -u "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    set -e
    verdict=$( ((rc == 0)) && echo passed || echo "FAILED (rc=$rc)")
    echo "[$name] $verdict in $(( $(date +%s) - t0 )) s (ended at +$(( $(date +%s) - start )) s)" | tee -a "$summary"
    return "$rc"
}

molecule_chain() {  # providers joined by '+' run one after the other in one lane; each one's run is a lane line
    local p rc=0
    for p in ${1//+/ }; do
        # CI time: without the check-mode run on the fresh guest and side_effect's reboot unless asked
        # (make test-molecule runs the whole scenario; docs/testing.md has the measurements)
        VF_MOLECULE_PROVIDERS=$p VF_MOLECULE_CHECK_MODE=${VF_MOLECULE_CHECK_MODE:-0} \
            VF_MOLECULE_REBOOT=${VF_MOLECULE_REBOOT:-0} lane "molecule-$p" run-molecule || rc=1
    done
    return "$rc"
}

molecule_lanes() {
    lane host-image host-image || return 1
    local pids=() p rc=0
    for p in ${PROVIDERS//,/ }; do
        molecule_chain "$p" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return "$rc"
}

rc=0
lane lab lab || exit 1
molecule_lanes & molecule=$!
lane image image & image=$!
checks=0
lane checks lint unit || checks=1
wait "$image" || checks=1
if ((checks == 0)); then
    lane integration run-integration & integration=$!
    lane conversions generic-image run-conversions & conversions=$!
    wait "$integration" || rc=1
    wait "$conversions" || rc=1
else
    rc=1
    echo "[suite] lint, unit tests or the golden image failed: the integration and conversion lanes do not run"
fi
wait "$molecule" || rc=1
if ((checks == 0)); then lane exclusive run-exclusive || rc=1; fi
echo "--- lanes:"
cat "$summary"
echo "suite $( ((rc == 0)) && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit "$rc"

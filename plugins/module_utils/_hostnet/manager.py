# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the bridge, bond or vlan module.

validate options → pick provider → recover stale rollbacks → read → validate against the system →
plan (check mode and diff stop here) → verify target reachable → arm rollback → apply → verify →
disarm (or roll back at once and fail saying what was rolled back).
"""

from __future__ import annotations

import time

from .._engine import Plan
from .._errors import VirtforgeError, fail_from_exception
from .._run import Runner
from . import model, safe
from .provider import as_want, compare, describe_steps, detect, predicted, provider_class, run_steps


def argument_spec(kind):
    return model.argument_spec(kind)


class HostNetManager(object):
    def __init__(self, module, kind, store=None, runner=None, environ=None, clock=time.time, sleep=time.sleep):
        self.module = module
        self.kind = kind
        self.params = module.params
        self.runner = runner or Runner(module)
        self.store = store or safe.RollbackStore()
        self.environ = environ
        self.result = dict(changed=False)
        self.clock = clock
        self.sleep = sleep

    def resolve_provider(self):
        name = self.params.get("provider") or "auto"
        if name == "auto":
            name = "iproute2" if self.params.get("netns") else detect(self.runner)
        return name

    def check_against_system(self, want, current, provider):
        name, kind = want["name"], want["kind"]
        if current.get("exists") and current.get("kind") != kind:
            raise VirtforgeError("an interface %s exists and is a %s, not a %s" % (name, current.get("kind"), kind),
                                 option="name", fix="Choose another name or remove that interface first")
        if want["state"] == "absent":
            return
        cfg = want["config"]
        key = model.members_key(kind)
        # check mode: what earlier tasks of this run would have created is taken as there
        planned = set(self.params.get("planned_interfaces") or []) if self.module.check_mode else set()
        for i, member in model.given_members(want):
            option = "%s[%d]" % (key, i)
            member_kind = provider.link_kind(member)
            if member_kind is None and member in planned:
                continue
            if member_kind is None:
                raise VirtforgeError("there is no interface %s" % member, option=option)
            master, master_kind = provider.master_of(member)
            if master and master != name:
                raise VirtforgeError("%s is already enslaved to %s %s" % (member, master_kind or "interface", master),
                                     option=option, fix="Remove it from %s first" % master)
            if kind == "bond" and member_kind in ("bridge", "bond"):
                raise VirtforgeError("%s is a %s; a bond's members are NICs" % (member, member_kind), option=option)
        if kind == "vlan" and cfg["parent"] not in planned and provider.link_kind(cfg["parent"]) is None:
            raise VirtforgeError("there is no interface %s to carry VLAN %d" % (cfg["parent"], cfg["id"]),
                                 option="parent", fix="Create the NIC, bond or bridge first")
        provider.check_system(want, current)

    def verify_target(self):
        target = self.params.get("verify_target")
        if target:
            return target
        return safe.default_verify_target(self.environ)

    def probe_factory(self, target, timeout=2.0):
        method = self.params.get("verify_method") or "auto"
        ping = self.module.get_bin_path("ping", required=False)
        if method == "auto":
            method = "ping" if ping else "tcp"
        if method == "ping" and not ping:
            raise VirtforgeError("ping is not installed", option="verify_method", fix="Use verify_method: tcp")
        argv = safe.probe_argv(method, target, self.params.get("verify_port") or 22, timeout,
                               netns=self.params.get("netns"), ping=ping)
        return method, (lambda: argv)

    def probe(self, factory, seconds):
        return safe.verify(lambda argv: self.runner.run(argv, check=False), factory, seconds, clock=self.clock,
                           sleep=self.sleep)

    def run(self):
        p = self.params
        provider_name = self.resolve_provider()
        want = model.desired(self.kind, p, provider_name)
        name = want["name"]
        provider = provider_class(provider_name)(self.runner, netns=p.get("netns"))
        scope = "netns-%s" % p["netns"] if p.get("netns") else "host"
        self.result.update(provider=provider_name, interface=name, netns=p.get("netns"))

        def execute(steps):
            return run_steps(self.runner, steps, stop_on_error=False)

        self.result["stale_rollbacks"] = self.store.recover(scope, p["stale_rollback"], execute,
                                                            check_mode=self.module.check_mode)
        for report in self.result["stale_rollbacks"]:
            self.module.warn("An earlier run left a rollback for %s (%s): %s" % (
                report.get("interface"), report.get("status"), report.get("action")))

        current = provider.read(name, self.kind)
        self.check_against_system(want, current, provider)
        changes = compare(want, current)
        after = predicted(want, current)
        plan = Plan(name, self.kind, model.describe(self.kind, name, current),
                    model.describe(self.kind, name, after) if changes else model.describe(self.kind, name, current),
                    changes, action=("remove" if want["state"] == "absent" else
                                     "create" if not current.get("exists") else "update") if changes else None)
        steps = provider.apply_steps(want, current, changes) if changes else []
        # restoring an earlier run's stale rollback changed the system too (check mode: would change it)
        stale_changed = any(r.get("action") in ("restored", "would-restore") for r in self.result["stale_rollbacks"])
        self.result.update(changed=plan.changed or stale_changed, changes=plan.change_list(),
                           commands=describe_steps(steps),
                           state=after if want["state"] == "present" else dict(exists=False))
        if self.module._diff:
            self.result["diff"] = plan.diff()
        if self.module.check_mode or not plan.changed:
            if not plan.changed:
                self.result["state"] = current
            return self.result

        back = compare(as_want(name, self.kind, current), after)
        restore = provider.apply_steps(as_want(name, self.kind, current), after, back)
        self.result["rollback_commands"] = describe_steps(restore)
        target = self.verify_target() if p.get("verify") else None
        factory = None
        if target:
            method, factory = self.probe_factory(target)
            ok, _n, err = self.probe(factory, 2.0)
            if not ok:
                # e.g. the change is what makes it reachable: the check after the change decides
                self.module.warn("%s is not reachable before the change (%s); it must be after it, or the "
                                 "change is rolled back" % (target, err or "no answer"))
            self.result["verify"] = dict(target=target, method=method, reachable_before=ok)
        else:
            self.result["verify"] = dict(target=None, result="skipped",
                                         reason="verify is off" if not p.get("verify") else
                                         "no verify_target and no SSH_CONNECTION to take one from")

        description = "%s %s: %s" % (self.kind, name, "; ".join(describe_steps(steps)))
        try:
            armed = self.store.arm(scope, name, restore, p["rollback_timeout"], description)
        except (OSError, RuntimeError) as exc:
            raise VirtforgeError("cannot arm the rollback (%s); nothing was changed" % exc) from None
        self.result["rollback"] = dict(armed=True, timeout=p["rollback_timeout"], ident=armed.ident)
        failure = None
        try:
            run_steps(self.runner, steps)
        except VirtforgeError as exc:
            failure = "applying failed: %s" % exc.msg
        if failure is None and factory is not None:
            budget = max(3.0, min(30.0, p["rollback_timeout"] / 2.0))
            ok, attempts, err = self.probe(factory, budget)
            self.result["verify"].update(result="ok" if ok else "failed", attempts=attempts)
            if not ok:
                failure = "%s is not reachable after the change (%s)" % (target, err or "no answer")
        if failure is None:
            if self.store.disarm(armed):
                self.result["rollback"].update(armed=False, status="disarmed")
                return self.result
            done = self.store.wait_done(armed.ident)
            self.result["rollback"].update(armed=False, status="rolled-back-by-watchdog",
                                           results=(done or {}).get("results"))
            raise VirtforgeError("the change took longer than rollback_timeout (%d s); the watchdog rolled it back"
                                 % p["rollback_timeout"], option="rollback_timeout",
                                 fix="Raise rollback_timeout", rollback=self.result["rollback"])
        if self.store.take(armed):
            results = run_steps(self.runner, restore, stop_on_error=False)
            self.store.finish(armed)
            status = "rolled-back"
        else:
            done = self.store.wait_done(armed.ident)
            results = (done or {}).get("results")
            status = "rolled-back-by-watchdog"
        failed_steps = [r for r in results or [] if r.get("rc")]
        self.result["rollback"].update(armed=False, status=status, results=results)
        raise VirtforgeError("%s; rolled back to the previous configuration of %s %s (%s)%s" % (
            failure, self.kind, name, "; ".join(describe_steps(restore)) or "nothing to undo",
            "" if not failed_steps else "; %d rollback step(s) failed" % len(failed_steps)),
            rollback=self.result["rollback"], changed=True)


def main_for(module, kind):
    manager = HostNetManager(module, kind)
    try:
        result = manager.run()
    except Exception as exc:  # one handler: VirtforgeError becomes a clean message, anything else a traceback
        partial = {k: v for k, v in manager.result.items() if k not in ("changed", "diff")}
        fail_from_exception(module, exc, **partial)
    module.exit_json(**result)

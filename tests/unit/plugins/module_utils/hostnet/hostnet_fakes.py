"""Fakes shared by the host networking unit tests: a runner that answers like `ip`/`nmcli`, a module."""

import json


class FakeRunner(object):
    """Answers commands from a table {tuple(argv): (rc, out, err)}; records every call."""

    def __init__(self, answers=None, tools=None, default=(0, "", "")):
        self.answers = dict(answers or {})
        self.tools = dict(tools or {})
        self.default = default
        self.calls = []

    def run(self, argv, check=True, **_kw):
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        answer = self.answers.get(tuple(argv))
        if callable(answer):
            answer = answer(argv)
        return answer if answer is not None else self.default

    def which(self, tool, required=True):
        return self.tools.get(tool)


def ip_link(name, kind=None, master=None, flags=("BROADCAST", "MULTICAST", "UP"), mtu=1500, data=None, link=None):
    info = dict(ifname=name, flags=list(flags), mtu=mtu)
    if master:
        info["master"] = master
    if link:
        info["link"] = link
    if kind:
        info["linkinfo"] = dict(info_kind=kind, info_data=data or {})
    return info


class IpWorld(object):
    """A tiny model of the kernel's links, answering `ip -d -j link show`, `ip -j addr`, routes, masters."""

    def __init__(self, links, addrs=None, routes=None, netns=None):
        self.links = {link["ifname"]: link for link in links}
        self.addrs = dict(addrs or {})
        self.routes = dict(routes or {})
        self.prefix = ["ip"] + (["-n", netns] if netns else [])

    def __call__(self, argv):
        args = argv[len(self.prefix):]
        if args[:4] == ["-d", "-j", "link", "show"]:
            link = self.links.get(args[5])
            if link is None:
                return 1, "", 'Device "%s" does not exist.' % args[5]
            return 0, json.dumps([link]), ""
        if args[:4] == ["-j", "link", "show", "master"]:
            return 0, json.dumps([x for x in self.links.values() if x.get("master") == args[4]]), ""
        if args[:3] == ["-j", "addr", "show"]:
            infos = [dict(family="inet6" if ":" in a else "inet", local=a.split("/")[0],
                          prefixlen=int(a.split("/")[1]), scope="global") for a in self.addrs.get(args[4], [])]
            return 0, json.dumps([dict(ifname=args[4], addr_info=infos)]), ""
        if len(args) > 2 and args[1:4] == ["-j", "route", "show"]:
            gw = self.routes.get(args[6]) if args[0] == "-4" else None
            return 0, json.dumps([dict(dst="default", gateway=gw)] if gw else []), ""
        if args == ["link", "show", "lo"]:
            return 0, "1: lo", ""
        return 0, "", ""


class IpRunner(FakeRunner):
    def __init__(self, world, **kw):
        super().__init__(**kw)
        self.world = world

    def run(self, argv, check=True, **kw):
        argv = [str(a) for a in argv]
        if argv[:len(self.world.prefix)] == self.world.prefix and tuple(argv) not in self.answers:
            self.calls.append(argv)
            return self.world(argv)
        return super().run(argv, check=check, **kw)


class FakeModule(object):
    def __init__(self, params, check_mode=False, diff=False, bins=None):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []
        self.bins = dict(bins or {})

    def warn(self, msg):
        self.warnings.append(msg)

    def get_bin_path(self, name, required=False):
        return self.bins.get(name)


def params(kind, **kw):
    """Module parameters with the argument_spec defaults, as AnsibleModule would pass them."""
    from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import model

    out = {}
    for key, spec in model.argument_spec(kind).items():
        out[key] = spec.get("default")
    if kw.get("ip") is not None:
        kw["ip"] = dict(dict(method="none", addresses=None, gateway=None, dns=None), **kw["ip"])
    out.update(kw)
    return out

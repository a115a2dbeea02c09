# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declarative XML engine shared by domains, pools and networks.

A libvirt object is an XML document. Each feature of it (memory, disks, a pool's target
path, a network's forward mode...) is declared once as an :class:`OptionGroup` that

* contributes its options to the module's argument_spec,
* turns the user's parameters into a canonical *desired* dict holding only what the user set,
* reads the *current* canonical dict from existing XML,
* writes the desired values into an XML tree with lxml, touching nothing else, and
* says whether a difference can be applied to a running object (``live_keys``).

:meth:`DocumentSpec.plan` compares only what the user set and returns a :class:`Plan`.
``changed``, check mode, ``--diff`` output, the ``changes`` return value and the real
apply all come from that one plan.
"""

from __future__ import annotations

import copy

from ._errors import VirtforgeError

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None


def parse_xml(text, option=None):
    """Parse XML text from libvirt or the user; refuse entities and network access."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    try:
        return etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        raise VirtforgeError("malformed XML: %s" % exc, option=option,
                             fix="Pass a complete, well-formed XML document") from None


def to_xml(root):
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def child(parent, tag, create=False, **attrs):
    """Find ``parent/tag`` (matching ``attrs``); create it when asked and missing."""
    for node in parent.iterfind(tag):
        if all(node.get(k) == v for k, v in attrs.items()):
            return node
    if not create:
        return None
    node = etree.SubElement(parent, tag)
    for key, value in attrs.items():
        node.set(key, value)
    return node


def path_element(root, path, create=False):
    """Walk ``a/b/c`` from ``root``, creating missing elements when asked."""
    node = root
    for tag in path.split("/"):
        nxt = child(node, tag, create=create)
        if nxt is None:
            return None
        node = nxt
    return node


def set_text(root, path, value):
    node = path_element(root, path, create=True)
    node.text = str(value)
    return node


def remove(node):
    if node is not None and node.getparent() is not None:
        node.getparent().remove(node)


class Change(object):
    """One difference between what exists and what the user asked for.

    ``live`` is True when it can be applied to the running object, False when it needs a
    restart to take effect, None when the object is not running (nothing to apply live).
    """

    __slots__ = ("path", "before", "after", "live", "group", "key")

    def __init__(self, path, before, after, group=None, key=None, live=None):
        self.path = path
        self.before = before
        self.after = after
        self.group = group
        self.key = key
        self.live = live

    @property
    def action(self):
        if self.before is None:
            return "add"
        if self.after is None:
            return "remove"
        return "update"

    def to_dict(self):
        out = dict(path=self.path, action=self.action, before=self.before, after=self.after)
        if self.live is not None:
            out["live"] = self.live
        return out

    def __repr__(self):  # pragma: no cover - debugging aid
        return "Change(%s: %r -> %r, live=%r)" % (self.path, self.before, self.after, self.live)


class Plan(object):
    """Everything a run would do to one object. Check mode stops after computing it."""

    def __init__(self, name, kind, before_xml=None, after_xml=None, changes=None, action=None):
        self.name = name
        self.kind = kind
        self.before_xml = before_xml
        self.after_xml = after_xml
        self.changes = list(changes or [])
        self.action = action  # "create", "update", "remove", or None
        self.notes = []  # state transitions and other actions outside the XML (start, stop, ...)

    @property
    def changed(self):
        return bool(self.changes or self.action in ("create", "remove") or self.notes)

    @property
    def restart_required(self):
        return any(c.live is False for c in self.changes)

    def diff(self):
        return dict(
            before=self.before_xml or "",
            after=self.after_xml or "",
            before_header="%s %s (before)" % (self.kind, self.name),
            after_header="%s %s (after)" % (self.kind, self.name),
        )

    def change_list(self):
        out = [c.to_dict() for c in self.changes]
        out.extend(dict(path=n, action="state") for n in self.notes)
        return out


class OptionGroup(object):
    """One XML feature, declared once. Subclasses set the class attributes and override hooks."""

    #: name used in change paths ("memory.current") and as the desired/current dict owner
    name = None
    #: options this group adds to the module's argument_spec
    argument_spec = {}
    #: keys of the canonical dict whose changes can be applied to a running object
    live_keys = frozenset()

    def desired(self, params, ctx):
        """Canonical values of what the user set (omit what they did not set)."""
        raise NotImplementedError

    def current(self, root, ctx):
        """Canonical values read from an existing XML document."""
        raise NotImplementedError

    def write(self, root, desired, ctx):
        """Write ``desired`` into ``root`` (an lxml element), changing nothing else."""
        raise NotImplementedError

    def compare(self, desired, current, ctx):
        """Changes for the keys the user set. Override for lists or non-trivial equality."""
        changes = []
        for key, want in desired.items():
            have = current.get(key)
            if want != have:
                changes.append(Change("%s.%s" % (self.name, key), have, want, group=self.name, key=key,
                                      live=(key in self.live_keys) if ctx.get("running") else None))
        return changes

    def apply_live(self, target, changes, desired, ctx):
        """Apply this group's ``changes`` to the running ``target``; called only for live changes."""
        raise NotImplementedError("%s cannot be changed live" % self.name)


class ListGroup(OptionGroup):
    """A list of similar elements identified by a key (disks by target dev, NICs by MAC...).

    Subclasses implement :meth:`item_key`, :meth:`read_items`, :meth:`find_element`,
    :meth:`write_item` and :meth:`desired_items`. Items the user did not list are kept
    unless ``purge`` is in the desired dict and true.
    """

    #: whether adding or removing an item can be done on a running object (hot-plug)
    hotplug = False
    #: fields of an item whose change can be applied live (updateDevice)
    live_fields = frozenset()

    def item_key(self, item):
        raise NotImplementedError

    def desired_items(self, params, ctx):
        raise NotImplementedError

    def read_items(self, root, ctx):
        raise NotImplementedError

    def find_element(self, root, key, ctx):
        raise NotImplementedError

    def write_item(self, root, element, item, ctx):
        """Create (element None) or update one element from a desired item; return the element."""
        raise NotImplementedError

    def purgeable(self, item):
        """Whether ``purge`` may remove this unlisted item (some carry others, e.g. PCI controllers)."""
        return True

    def remove_item(self, root, key, ctx):
        """Remove one item (and anything the document keeps for it elsewhere)."""
        remove(self.find_element(root, key, ctx))

    def desired(self, params, ctx):
        items = self.desired_items(params, ctx)
        if items is None:
            return {}
        return dict(items=items, purge=bool(params.get("purge_%s" % self.name)))

    def current(self, root, ctx):
        return dict(items=self.read_items(root, ctx))

    def compare(self, desired, current, ctx):
        if not desired:
            return []
        running = ctx.get("running")
        have = {self.item_key(i): i for i in current.get("items", [])}
        changes = []
        wanted_keys = set()
        for item in desired["items"]:
            key = self.item_key(item)
            wanted_keys.add(key)
            path = "%s[%s]" % (self.name, key)
            old = have.get(key)
            if old is None:
                changes.append(Change(path, None, item, group=self.name, key=key,
                                      live=self.hotplug if running else None))
                continue
            diffs = {k: v for k, v in item.items() if v is not None and old.get(k) != v}
            if diffs:
                live = set(diffs) <= self.live_fields if running else None
                changes.append(Change(path, {k: old.get(k) for k in diffs}, diffs, group=self.name,
                                      key=key, live=live))
        if desired.get("purge"):
            for key, old in have.items():
                if key not in wanted_keys and self.purgeable(old):
                    changes.append(Change("%s[%s]" % (self.name, key), old, None, group=self.name, key=key,
                                          live=self.hotplug if running else None))
        return changes

    def write(self, root, desired, ctx):
        if not desired:
            return
        wanted = set()
        for item in desired["items"]:
            key = self.item_key(item)
            wanted.add(key)
            self.write_item(root, self.find_element(root, key, ctx), item, ctx)
        if desired.get("purge"):
            for old in self.read_items(root, ctx):
                key = self.item_key(old)
                if key not in wanted and self.purgeable(old):
                    self.remove_item(root, key, ctx)


class DocumentSpec(object):
    """A kind of libvirt XML document (domain, pool, network) as a list of option groups."""

    kind = None
    root_tag = None
    groups = ()

    def argument_spec(self):
        spec = {}
        for group in self.groups:
            for key, value in group.argument_spec.items():
                if key in spec and spec[key] != value:
                    raise AssertionError("option %s declared twice with different specs" % key)
                spec[key] = value
        return spec

    def desired(self, params, ctx):
        return {g.name: g.desired(params, ctx) for g in self.groups}

    def new_root(self, ctx):
        return etree.Element(self.root_tag)

    def plan(self, name, params, current_xml, ctx):
        """Compute the plan for one object. ``current_xml`` None means it does not exist."""
        desired = self.desired(params, ctx)
        if current_xml is None:
            root = self.new_root(ctx)
            for group in self.groups:
                if desired[group.name]:
                    group.write(root, desired[group.name], ctx)
            plan = Plan(name, self.kind, None, to_xml(root), action="create")
            plan.desired = desired
            return plan
        root = parse_xml(current_xml)
        changes = []
        after = copy.deepcopy(root)
        for group in self.groups:
            want = desired[group.name]
            if not want:
                continue
            group_changes = group.compare(want, group.current(root, ctx), ctx)
            if group_changes:
                changes.extend(group_changes)
                group.write(after, want, ctx)
        plan = Plan(name, self.kind, to_xml(root), to_xml(after) if changes else to_xml(root), changes,
                    action="update" if changes else None)
        plan.desired = desired
        return plan

    def group(self, name):
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)

    def apply_live(self, target, plan, ctx):
        """Apply the live-capable changes of ``plan`` to a running object, group by group."""
        by_group = {}
        for change in plan.changes:
            if change.live:
                by_group.setdefault(change.group, []).append(change)
        for name, changes in by_group.items():
            self.group(name).apply_live(target, changes, plan.desired[name], ctx)

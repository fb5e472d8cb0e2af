#!/usr/bin/env python3
"""Fakes of route(8), ifconfig(8) and illumos ipadm(8) for weft's router tests, and of
netstat(8) on FreeBSD and illumos for its listening-ports tests, and of
the DNS tools weft's DNS configurator drives: resolvectl(1), resolvconf(8) (openresolv,
or Debian's with FAKE_RESOLVCONF=debian) and OpenBSD's `route nameserver`.

Each OS's directory holds `route` and `ifconfig` (and `ipadm` on illumos) that run this file
with the OS and tool name. It implements that OS's grammar for the subset weft uses and,
like the real tool, rejects what the real one rejects (`route del` on NetBSD/illumos/macOS/
OpenBSD, an interface name as gateway where an address is needed, a missing illumos
gateway, a second default route, ...), printing to stderr and exiting 1.

DNS state lives in the same file: "resolved" (link -> {"dns", "domains",
"default_route"}), "resolvconf" (key -> the text given on stdin), "nameservers"
(OpenBSD: interface -> proposed addresses).

The kernel's state is a JSON file named by $FAKE_OS_TABLE:
  {"interfaces": {"tun0": {"addresses": [{"address": "100.64.0.1/32", "label": null}],
                           "mtu": 1500, "up": false}},
   "routes": [{"dest": "0.0.0.0/0", "gateway": "192.168.1.1", "iface": "em0", "priority": 8}]}
A route in another routing table (OpenBSD `-T N`, FreeBSD `-fib N`) also has "table": N.

netstat prints the table's sockets, in that OS's layout:
  {"sockets": [{"proto": "tcp", "family": 4, "local": "*.22", "remote": "*.*", "state": "LISTEN"},
               {"proto": "udp", "family": 6, "local": "*.546", "remote": "", "state": "Idle"}]}
"""
import ipaddress
import json
import os
import sys

VERBS = {
    "freebsd": {"add", "delete", "del", "change", "get", "show", "flush", "monitor"},
    "netbsd": {"add", "change", "delete", "flush", "flushall", "get", "monitor", "show"},
    "openbsd": {"add", "change", "delete", "flush", "get", "monitor", "show", "exec", "nameserver"},
    "darwin": {"add", "change", "delete", "flush", "get", "monitor"},
    "illumos": {"add", "change", "delete", "get", "flush", "monitor", "show"},
}
STATIC_PRIORITY = 8


class Refused(Exception):
    pass


def load():
    with open(os.environ["FAKE_OS_TABLE"]) as f:
        return json.load(f)


def save(table):
    path = os.environ["FAKE_OS_TABLE"]
    with open(path + ".tmp", "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def network(text, family):
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise Refused(f"route: bad address: {text}")
    if net.version != family:
        raise Refused(f"route: bad address: {text}")
    return net


def owner_of(table, address):
    for name, iface in table["interfaces"].items():
        for entry in iface["addresses"]:
            if ipaddress.ip_interface(entry["address"]).ip == address:
                return name
    return None


def route(osname, table, args):
    rtable = 0
    while args and args[0] in ("-q", "-n", "-T"):
        if args[0] == "-T":
            if osname != "openbsd":
                raise Refused("route: illegal option -- T")
            rtable = number(args[1] if len(args) > 1 else "", "rtable", 255)
            args = args[1:]
        args = args[1:]
    if not args:
        raise Refused("usage: route [-nqv] command [[modifiers] args]")
    verb, args = args[0], args[1:]
    if verb not in VERBS[osname]:
        raise Refused(f"route: botched keyword: {verb}\nusage: route [-nqv] command [[modifiers] args]")
    if verb == "nameserver":
        return route_nameserver(table, args)
    if verb not in ("add", "delete", "del"):
        raise Refused(f"fake route: {verb} is not implemented")
    family, positional, iface_word, ifp, priority, host = 4, [], None, None, None, False
    i = 0
    while i < len(args):
        word = args[i]
        if word == "-fib" and osname == "freebsd":
            i += 1
            rtable = number(args[i] if i < len(args) else "", "fib", 15)
        elif word == "-host":
            host = True
        elif word in ("-inet", "-4"):
            family = 4
        elif word in ("-inet6", "-6"):
            family = 6
        elif word in ("-iface", "-interface"):
            iface_word = True
        elif word == "-ifp" and osname in ("illumos", "netbsd", "freebsd", "darwin", "openbsd"):
            i += 1
            ifp = args[i] if i < len(args) else None
        elif word == "-priority" and osname == "openbsd":
            i += 1
            try:
                priority = int(args[i])
            except (IndexError, ValueError):
                raise Refused("route: priority: bad value")
            if not 1 <= priority <= 63:
                raise Refused(f"route: priority {priority}: out of range")
        elif word.startswith("-"):
            raise Refused(f"route: bad keyword: {word}")
        else:
            positional.append(word)
        i += 1
    if not positional:
        raise Refused("route: missing destination")
    if positional[0] == "default":
        positional[0] = "0.0.0.0/0" if family == 4 else "::/0"
    elif host:
        positional[0] += "/32" if family == 4 else "/128"
    dest = network(positional[0], family)
    gateway_word = positional[1] if len(positional) > 1 else None
    if len(positional) > 2:
        raise Refused(f"route: bad keyword: {positional[2]}")
    # FreeBSD and macOS: `-iface NAME`; the others' -iface takes no argument and the
    # gateway must be an address (NetBSD resolves a name as a host and fails).
    iface = None
    if osname in ("freebsd", "darwin") and iface_word and gateway_word in table["interfaces"]:
        iface = gateway_word
    elif gateway_word is not None:
        address, _, zone = gateway_word.partition("%")
        try:
            gateway = ipaddress.ip_address(address)
        except ValueError:
            raise Refused(f"route: {gateway_word}: bad value")
        if gateway.version != family:
            raise Refused(f"route: {gateway_word}: bad value")
        # An interface route names our own address; a gateway route a neighbour on a link
        # (a link-local one with its zone).
        iface = owner_of(table, gateway) if iface_word else (zone or on_link(table, gateway))
        if iface is None or iface not in table["interfaces"]:
            raise Refused(f"{verb} net {dest}: gateway {gateway_word}: Network is unreachable")
    if osname == "illumos":
        if gateway_word is None:
            raise Refused("route: gateway required for add or delete command")
        if ifp is None or ifp not in table["interfaces"]:
            raise Refused(f"route: no such interface: {ifp}")
        iface = ifp
    if verb == "add":
        if gateway_word is None:
            raise Refused("route: missing gateway specification")
        add_route(osname, table, dest, gateway_word, iface, priority, rtable)
    else:
        delete_route(osname, table, dest, priority, rtable)


def route_nameserver(table, args):
    """OpenBSD: `route nameserver IF [ADDR ...]` proposes (none: withdraws) IF's servers."""
    if not args:
        raise Refused("route: nameserver: missing interface")
    iface, addresses = args[0], args[1:]
    if iface not in table["interfaces"]:
        raise Refused(f"route: {iface}: no such interface")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise Refused(f"route: {address}: bad address")
    servers = table.setdefault("nameservers", {})
    if addresses:
        servers[iface] = addresses
    else:
        servers.pop(iface, None)


DOMAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


def resolvectl(osname, table, args):
    """systemd-resolved's per-link settings: dns, domain, default-route, revert."""
    if len(args) < 2:
        raise Refused("fake resolvectl: weft never asks for a status")
    verb, link, values = args[0], args[1], args[2:]
    if verb not in ("dns", "domain", "default-route", "revert"):
        raise Refused(f"Unknown command verb '{verb}'.")
    if link not in table["interfaces"]:
        raise Refused(f"Failed to resolve interface \"{link}\": No such device")
    links = table.setdefault("resolved", {})
    if verb == "revert":
        links.pop(link, None)
        return
    entry = links.setdefault(link, {})
    if verb == "dns":
        for address in values:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise Refused(f"Failed to parse DNS server address: {address}")
        entry["dns"] = values
    elif verb == "domain":
        for domain in values:
            name = domain[1:] if domain.startswith("~") else domain
            if name != "." and (not name or not set(name) <= DOMAIN):
                raise Refused(f"Failed to parse domain: {domain}")
        entry["domains"] = values
    else:
        if values not in (["yes"], ["no"]):
            raise Refused(f"Failed to parse boolean argument: {' '.join(values)}")
        entry["default_route"] = values == ["yes"]


def resolvconf(osname, table, args):
    """openresolv (-m N, -x, -a KEY from stdin, -f -d KEY) or Debian's (-a/-d only)."""
    debian = os.environ.get("FAKE_RESOLVCONF") == "debian"
    if args == ["--version"]:
        print("Debian resolvconf 1.91" if debian else "openresolv 3.12.0")
        return
    flags, key = args[:-1], args[-1] if args else None
    records = table.setdefault("resolvconf", {})
    allowed = {"-a", "-d"} if debian else {"-a", "-d", "-f", "-x", "-m", "0"}
    if key is None or not set(flags) <= allowed:
        raise Refused(f"resolvconf: Error: Command not recognized: {' '.join(args)}")
    if "-a" in flags:
        text = sys.stdin.read()
        for line in filter(str.strip, text.splitlines()):
            if line.split()[0] not in ("nameserver", "search"):
                raise Refused(f"resolvconf: unexpected line {line!r}")
        records[key] = text
    elif "-d" in flags:
        if key not in records and "-f" not in flags and not debian:
            raise Refused(f"resolvconf: {key}: No such file or directory")
        records.pop(key, None)


def number(text, what, highest):
    if not text.isdigit() or int(text) > highest:
        raise Refused(f"route: {what} {text}: invalid")
    return int(text)


def on_link(table, gateway):
    for name, iface in table["interfaces"].items():
        for entry in iface["addresses"]:
            if gateway in ipaddress.ip_interface(entry["address"]).network:
                return name
    return None


def same_slot(osname, entry, dest, priority, rtable):
    if entry["dest"] != str(dest) or entry.get("table", 0) != rtable:
        return False
    if osname == "openbsd":
        return entry["priority"] == (priority or STATIC_PRIORITY)
    return True


def add_route(osname, table, dest, gateway, iface, priority, rtable):
    if osname != "openbsd" and priority is not None:
        raise Refused("route: bad keyword: -priority")
    if any(same_slot(osname, e, dest, priority, rtable) for e in table["routes"]):
        raise Refused(f"route: writing to routing socket: File exists\n"
                      f"add net {dest}: gateway {gateway}: File exists")
    entry = {"dest": str(dest), "gateway": gateway, "iface": iface,
             "priority": priority or STATIC_PRIORITY}
    if rtable:
        entry["table"] = rtable
    table["routes"].append(entry)


def delete_route(osname, table, dest, priority, rtable):
    # Like the real kernels, a delete matches by destination (macOS even takes the first
    # route to it, whoever owns it); OpenBSD also by priority; the table (OpenBSD `-T`,
    # FreeBSD `-fib`) always.
    for entry in table["routes"]:
        if same_slot(osname, entry, dest, priority, rtable):
            table["routes"].remove(entry)
            return
    raise Refused(f"route: writing to routing socket: No such process\ndelete net {dest}: not in table")


def ifconfig(osname, table, args):
    if not args:
        raise Refused("usage: ifconfig interface address_family [address [dest_address]] [parameters]")
    name, args = args[0], args[1:]
    iface = table["interfaces"].get(name)
    if iface is None:
        raise Refused(f"ifconfig: interface {name} does not exist")
    if args == ["up"]:
        iface["up"] = True
    elif args == (["unplumb"] if osname == "illumos" else ["destroy"]) and osname != "darwin":
        del table["interfaces"][name]
        table["routes"] = [r for r in table["routes"] if r["iface"] != name]
    elif len(args) == 2 and args[0] == "mtu":
        mtu = int(args[1]) if args[1].isdigit() else -1
        low, high = (576, 1500) if osname == "netbsd" else (68, 65535)
        if not low <= mtu <= high:
            raise Refused("ifconfig: SIOCSIFMTU: Invalid argument")
        iface["mtu"] = mtu
    elif args and args[0] in ("inet", "inet6") and osname != "illumos":
        set_address(osname, table, iface, args[0] == "inet6", args[1:])
    else:
        raise Refused(f"ifconfig: {' '.join(args)}: bad value")


def set_address(osname, table, iface, v6, args):
    if not args:
        raise Refused("ifconfig: missing address")
    try:
        address = ipaddress.ip_interface(args[0])
    except ValueError:
        raise Refused(f"ifconfig: {args[0]}: bad value")
    if (address.version == 6) != v6:
        raise Refused(f"ifconfig: {args[0]}: bad value")
    rest = args[1:]
    if rest in (["-alias"], ["delete"]):
        return remove_address(table, iface, address.ip)
    if osname in ("freebsd", "darwin") and not v6 or osname == "darwin":
        # A point-to-point address: the far end follows the address.
        if len(rest) != 1 or rest[0] in ("alias", "-alias", "delete"):
            raise Refused(f"ifconfig: {osname} tunnel address needs a destination")
        ipaddress.ip_address(rest[0])
    elif osname in ("netbsd", "openbsd") and not v6:
        if rest != ["alias"]:
            raise Refused("fake ifconfig: expected `alias`")
    elif rest:
        # FreeBSD refuses `X/128 dest X` on a tunnel (bug 218508); no dest is taken here.
        raise Refused("ifconfig: ioctl (SIOCAIFADDR): Invalid argument")
    if any(ipaddress.ip_interface(e["address"]).ip == address.ip for e in iface["addresses"]):
        raise Refused("ifconfig: ioctl (SIOCAIFADDR): File exists")
    iface["addresses"].append({"address": str(address), "label": None})


def remove_address(table, iface, ip):
    for entry in iface["addresses"]:
        if ipaddress.ip_interface(entry["address"]).ip == ip:
            iface["addresses"].remove(entry)
            # Routes whose gateway was this address go with it.
            table["routes"] = [r for r in table["routes"] if r["gateway"] != str(ip)]
            return
    raise Refused("ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address")


def ipadm(osname, table, args):
    if osname != "illumos":
        raise Refused("ipadm: not found")
    if len(args) == 7 and args[:5] == ["create-addr", "-t", "-T", "static", "-a"]:
        fields = dict(part.split("=", 1) for part in args[5].split(",") if "=" in part)
        name, _, label = args[6].partition("/")
        if name not in table["interfaces"] or not label:
            raise Refused("ipadm: cannot create address: Interface does not exist")
        if "local" not in fields or "remote" not in fields:
            raise Refused("ipadm: cannot create address: Invalid argument")
        address = ipaddress.ip_interface(fields["local"])
        ipaddress.ip_address(fields["remote"])
        for iface in table["interfaces"].values():
            if any(e["label"] == args[6] for e in iface["addresses"]):
                raise Refused("ipadm: cannot create address: Address object already exists")
        table["interfaces"][name]["addresses"].append({"address": str(address), "label": args[6]})
    elif len(args) == 2 and args[0] == "delete-addr":
        for iface in table["interfaces"].values():
            for entry in iface["addresses"]:
                if entry["label"] == args[1]:
                    iface["addresses"].remove(entry)
                    ip = str(ipaddress.ip_interface(entry["address"]).ip)
                    table["routes"] = [r for r in table["routes"] if r["gateway"] != ip]
                    return
        raise Refused("ipadm: cannot delete address: Object not found")
    else:
        raise Refused(f"ipadm: unknown or unsupported command: {' '.join(args)}")


NETSTAT_FAMILIES = {"inet": 4, "inet6": 6}
NETSTAT_PROTOCOLS = {"tcp", "udp"}


def netstat_options(osname, args):
    """The family and protocol asked for; refuses what that OS's netstat refuses."""
    family = protocol = None
    flags = {"freebsd": {"-f": "family", "-p": "protocol"},
             "illumos": {"-f": "family", "-P": "protocol"}}[osname]
    while args:
        arg, args = args[0], args[1:]
        if arg in ("-an", "-na", "-a", "-n"):
            continue
        if arg not in flags or not args:
            raise Refused(f"netstat: illegal option -- {arg.lstrip('-')}")
        value, args = args[0], args[1:]
        if flags[arg] == "family":
            if value not in NETSTAT_FAMILIES:
                raise Refused(f"netstat: {value}: unknown address family")
            family = NETSTAT_FAMILIES[value]
        else:
            if value not in NETSTAT_PROTOCOLS:
                raise Refused(f"netstat: {value}: unknown or uninstrumented protocol")
            protocol = value
    return family, protocol


def netstat(osname, table, args):
    family, protocol = netstat_options(osname, args)
    sockets = [s for s in table.get("sockets", [])
               if family in (None, s["family"]) and protocol in (None, s["proto"])]
    if osname == "freebsd":
        print("Active Internet connections (including servers)")
        print("Proto Recv-Q Send-Q Local Address          Foreign Address        (state)")
        for s in sockets:
            # An unconnected socket's remote is `*.*`; UDP has no state.
            name, remote = f"{s['proto']}{s['family']}", s["remote"] or "*.*"
            state = s["state"] if s["proto"] == "tcp" else ""
            print(f"{name:<6} {0:>6} {0:>6} {s['local']:<22} {remote:<22} {state}".rstrip())
        return
    # illumos: one section per family and protocol, each only when asked for.
    for proto in ("tcp", "udp"):
        for fam in (4, 6):
            if family not in (None, fam) or protocol not in (None, proto):
                continue
            print(f"\n{proto.upper()}: IPv{fam}")
            if proto == "tcp":
                print("   Local Address        Remote Address    Swind Send-Q Rwind Recv-Q    State")
                print("-------------------- -------------------- ----- ------ ----- ------ -----------")
            else:
                print("   Local Address        Remote Address      State")
                print("-------------------- -------------------- ----------")
            for s in sockets:
                if s["proto"] != proto or s["family"] != fam:
                    continue
                if proto == "tcp":
                    print(f"{s['local']:>20} {s['remote']:>20} {0:>5} {0:>6} {128000:>5} {0:>6} {s['state']}")
                else:
                    print(f"{s['local']:>20} {s['remote']:>20} {s['state']}")


def main():
    osname, tool, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    table = load()
    log = os.environ.get("FAKE_OS_LOG")
    if log:
        with open(log, "a") as f:
            f.write(" ".join([tool] + args) + "\n")
    try:
        tools = {"route": route, "ifconfig": ifconfig, "ipadm": ipadm, "netstat": netstat,
                 "resolvectl": resolvectl, "resolvconf": resolvconf}
        tools[tool](osname, table, args)
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        sys.exit(1)
    save(table)


if __name__ == "__main__":
    main()

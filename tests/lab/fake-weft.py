#!/usr/bin/env python3
"""A stand-in for weft/weftd, ONLY for checking the lab scripts themselves.

It implements the documented surface the tests/lab/weft_*.sh scripts use, on
top of wireguard-go + wg + ip, so those scripts can be exercised before the
real daemon exists:

    WEFT_BIN=tests/lab/fake-weft.py tests/lab/weft_pair.sh

    weftd --config F --statedir D --socket S --tun NAME --port N --verbose N
    weft genkey | weft pubkey | weft --socket S status --json

Dispatch is on argv[0] like the real binary. It is not a test of weft.
wireguard-go's UAPI socket lives in /var/run/wireguard, shared by all
namespaces, so the fake runs wireguard-go in a private mount namespace and
talks to it with `nsenter -m`.
"""
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

PREFS = (5210, 5230, 5250, 5270)


def die_with_parent():
    # wireguard-go must not outlive a SIGKILLed fake (the real weftd owns
    # its TUN in-process, so SIGKILL removes it).
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def sh(*args, check=True, inp=None):
    r = subprocess.run(args, input=inp, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit("fake-weftd: %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def parse_conf(path):
    iface, peers, cur = {}, [], None
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.lower() == "[interface]":
            cur = iface
        elif line.lower() == "[peer]":
            cur = {}
            peers.append(cur)
        elif "=" in line and cur is not None:
            k, v = line.split("=", 1)
            cur[k.strip().lower()] = v.strip()
    return iface, {p["publickey"]: p for p in peers}


def split(v):
    return [x.strip() for x in (v or "").split(",") if x.strip()]


class Daemon:
    def __init__(self, opts):
        self.o = opts
        self.tun = opts.get("tun", "weft0")
        self.iface, self.peers = parse_conf(opts["config"])
        self.lock = threading.Lock()
        self.wg = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mkdir -p /var/run/wireguard && mount -t tmpfs none /var/run/wireguard && "
             "exec wireguard-go -f %s" % self.tun],
            env=dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        for _ in range(100):
            if os.path.exists("/proc/%d/root/run/wireguard/%s.sock" % (self.wg.pid, self.tun)):
                break
            time.sleep(0.05)
        else:
            self.wg.kill()
            raise SystemExit("fake-weftd: wireguard-go did not start")
        port = self.iface.get("listenport", opts.get("port", "0"))
        self.wgset("private-key", "/dev/stdin", "listen-port", port, inp=self.iface["privatekey"])
        for a in split(self.iface.get("address")):
            extra = ["nodad"] if ":" in a else []
            sh("ip", "addr", "add", a, "dev", self.tun, *extra)
        sh("ip", "link", "set", self.tun, "mtu", self.iface.get("mtu", "1280"), "up")
        self.v6 = any(":" in a for a in split(self.iface.get("address")))
        self.rules(False)
        self.rules(True)
        for k, p in self.peers.items():
            self.add_peer(p)

    def wgset(self, *args, inp=None):
        sh("nsenter", "-t", str(self.wg.pid), "-m", "wg", "set", self.tun, *args, inp=inp)

    def wgdump(self):
        return sh("nsenter", "-t", str(self.wg.pid), "-m", "wg", "show", self.tun, "dump", check=False)

    def rules(self, add):
        for fam in (["-4"] + (["-6"] if self.v6 else [])) if add else ["-4", "-6"]:
            for pref in PREFS:
                while subprocess.run(["ip", fam, "rule", "del", "pref", str(pref)],
                                     capture_output=True).returncode == 0:
                    pass
            if add:
                m = ["fwmark", "0x80000/0xff0000"]
                sh("ip", fam, "rule", "add", "pref", "5210", *m, "table", "main")
                sh("ip", fam, "rule", "add", "pref", "5230", *m, "table", "default")
                sh("ip", fam, "rule", "add", "pref", "5250", *m, "unreachable")
                sh("ip", fam, "rule", "add", "pref", "5270", "table", "52")

    def add_peer(self, p):
        args = ["peer", p["publickey"], "allowed-ips", ",".join(split(p.get("allowedips")))]
        if p.get("endpoint"):
            args += ["endpoint", p["endpoint"]]
        if p.get("persistentkeepalive"):
            args += ["persistent-keepalive", p["persistentkeepalive"]]
        self.wgset(*args)
        for a in split(p.get("allowedips")):
            sh("ip", "route", "replace", a, "dev", self.tun, "table", "52")

    def del_peer(self, p):
        self.wgset("peer", p["publickey"], "remove")
        for a in split(p.get("allowedips")):
            sh("ip", "route", "del", a, "dev", self.tun, "table", "52", check=False)

    def reload(self):
        with self.lock:
            _, new = parse_conf(self.o["config"])
            for k, p in list(self.peers.items()):
                if k not in new:
                    self.del_peer(p)
            for k, p in new.items():
                if self.peers.get(k) != p:
                    if k in self.peers:
                        self.del_peer(self.peers[k])
                    self.add_peer(p)
            self.peers = new

    def stop(self):
        with self.lock:
            sh("ip", "-4", "route", "flush", "table", "52", check=False)
            sh("ip", "-6", "route", "flush", "table", "52", check=False)
            self.rules(False)
            self.wg.terminate()
            self.wg.wait()
        os._exit(0)

    def status(self):
        peers = {}
        lines = self.wgdump().splitlines()[1:]
        for l in lines:
            f = l.split("\t")
            pub, ep, allowed, hs, rx, tx = f[0], f[2], f[3], int(f[4]), int(f[5]), int(f[6])
            p = self.peers.get(pub, {})
            peers["nodekey:" + base64.b64decode(pub).hex()] = {
                "PublicKey": pub, "HostName": p.get("name", ""),
                "TailscaleIPs": [a.split("/")[0] for a in allowed.split(",") if a],
                "RxBytes": rx, "TxBytes": tx,
                "LastHandshake": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hs)) if hs else "0001-01-01T00:00:00Z",
                "Online": hs > 0, "CurAddr": "" if ep == "(none)" else ep}
        return {"Self": {"HostName": self.iface.get("name", "")}, "Peer": peers, "Health": []}

    def serve(self):
        path = self.o["socket"]
        if os.path.exists(path):
            os.unlink(path)
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(8)
        while True:
            c, _ = srv.accept()
            with self.lock:
                data = json.dumps(self.status()).encode()
            c.sendall(data)
            c.close()


def daemon(argv):
    opts, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            i += 1
    d = Daemon(opts)
    signal.signal(signal.SIGTERM, lambda *_: d.stop())
    signal.signal(signal.SIGINT, lambda *_: d.stop())
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=d.reload).start())
    t = threading.Thread(target=d.serve, daemon=True)
    t.start()
    while True:
        time.sleep(3600)


def cli(argv):
    sock = None
    if argv[:1] == ["--socket"]:
        sock, argv = argv[1], argv[2:]
    if argv == ["genkey"]:
        sys.stdout.write(sh("wg", "genkey"))
    elif argv == ["pubkey"]:
        sys.stdout.write(sh("wg", "pubkey", inp=sys.stdin.read()))
    elif argv[:1] == ["status"]:
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        print(data.decode())
    else:
        sys.exit("fake weft: unsupported: %r" % argv)


if __name__ == "__main__":
    if os.path.basename(sys.argv[0]) == "weftd":
        daemon(sys.argv[1:])
    else:
        cli(sys.argv[1:])

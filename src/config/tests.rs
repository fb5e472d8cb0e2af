//! Tests of the static config: good files, every class of malformed file with the exact line at
//! fault, wg-quick files, file loading, and a randomized shake of a valid config.

use super::{load, parse, ConfigError, StaticConfig};
use crate::keys::{PresharedKey, PublicKey};
use crate::netmap::{Peer, DEFAULT_MTU};
use crate::prefix::Prefix;
use crate::testing::shake;

/// This node's key pair (the private key and the public key `wg pubkey` derives from it).
const OWN_PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const OWN_PUBLIC: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

fn peer_key(n: u8) -> PublicKey {
    PublicKey([n; 32])
}

/// `template` with `{own}` replaced by this node's private key, `{self}` by its public key and
/// `{k1}`…`{k3}` by peer keys whose order by key is k1 < k2 < k3.
fn fill(template: &str) -> String {
    template
        .replace("{own}", OWN_PRIVATE)
        .replace("{self}", OWN_PUBLIC)
        .replace("{k1}", &peer_key(1).to_base64())
        .replace("{k2}", &peer_key(2).to_base64())
        .replace("{k3}", &peer_key(3).to_base64())
}

fn parses(template: &str) -> StaticConfig {
    parse(&fill(template), "wg0.conf").unwrap_or_else(|error| panic!("{error}"))
}

/// Asserts that `template` fails on `line` (or on no line) with a message containing `says`.
fn fails(template: &str, line: Option<usize>, says: &str) {
    let error = match parse(&fill(template), "wg0.conf") {
        Ok(_) => panic!("parsed, but should fail with {says:?}:\n{template}"),
        Err(error) => error,
    };
    assert_eq!(error.line, line, "{error}");
    assert!(error.message.contains(says), "{error} does not say {says:?}");
    assert_well_formed(&error, &fill(template));
}

/// Every error names the origin, and the line when one is at fault; only a missing
/// [Interface] is the whole file's fault.
fn assert_well_formed(error: &ConfigError, text: &str) {
    let shown = error.to_string();
    match error.line {
        Some(line) => {
            assert!(shown.starts_with(&format!("wg0.conf:{line}: ")), "{shown}");
            assert!(line >= 1 && line <= text.lines().count(), "{shown}");
        }
        None => assert_eq!(shown, "wg0.conf: no [Interface] section"),
    }
}

fn prefixes(list: &[&str]) -> Vec<Prefix> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

const FULL: &str = "\
    # A three-node tailnet.
    [Interface]
    PrivateKey = {own}
    Address = fd7a:115c:a1e0::1/48, 100.64.0.1/10
    ListenPort = 41641
    MTU = 1420
    Name = alpha

    [Peer]
    Name = gamma
    PublicKey = {k3}
    AllowedIPs = 100.64.0.3/32, 192.168.7.9/24
    Endpoint = [2001:db8::3]:41641
    PersistentKeepalive = 25

    [Peer]
    PublicKey = {k1}   # beta
    AllowedIPs = 100.64.0.2
    AllowedIPs = fd7a:115c:a1e0::2
    Endpoint = 192.0.2.2:51820
    PresharedKey = {k2}
";

#[test]
fn reads_a_full_config() {
    let config = parses(FULL);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let netmap = &config.netmap;
    assert_eq!(netmap.domain, "");
    let node = &netmap.self_node;
    assert_eq!(node.name, "alpha");
    assert_eq!(node.private_key.public_key().to_base64(), OWN_PUBLIC);
    assert_eq!(node.addresses, prefixes(&["100.64.0.1/10", "fd7a:115c:a1e0::1/48"]));
    assert_eq!(node.listen_port, Some(41641));
    assert_eq!(node.mtu, 1420);
    let beta = Peer {
        public_key: peer_key(1),
        name: String::new(),
        allowed_ips: prefixes(&["100.64.0.2/32", "fd7a:115c:a1e0::2/128"]),
        endpoints: vec!["192.0.2.2:51820".parse().unwrap()],
        persistent_keepalive: None,
        preshared_key: Some(Box::new(PresharedKey([2; 32]))),
        ..Peer::new(peer_key(1))
    };
    let gamma = Peer {
        public_key: peer_key(3),
        name: "gamma".into(),
        allowed_ips: prefixes(&["100.64.0.3/32", "192.168.7.0/24"]),
        endpoints: vec!["[2001:db8::3]:41641".parse().unwrap()],
        persistent_keepalive: Some(25),
        preshared_key: None,
        ..Peer::new(peer_key(3))
    };
    assert_eq!(netmap.peers, vec![beta, gamma]);
}

#[test]
fn fills_in_defaults() {
    let config = parses("[Interface]\nPrivateKey = {own}\n");
    let node = &config.netmap.self_node;
    assert_eq!(node.mtu, DEFAULT_MTU);
    assert_eq!(node.name, "");
    assert_eq!(node.listen_port, None);
    assert!(node.addresses.is_empty());
    assert!(config.netmap.peers.is_empty());
}

#[test]
fn reads_shields_up() {
    assert!(!parses("[Interface]\nPrivateKey = {own}\n").shields_up, "down by default");
    for (value, expected) in [("true", true), ("TRUE", true), ("false", false), ("False", false)] {
        let config = parses(&format!("[Interface]\nPrivateKey = {{own}}\nShieldsUp = {value}\n"));
        assert_eq!(config.shields_up, expected, "{value}");
    }
    fails("[Interface]\nPrivateKey = {own}\nShieldsUp = yes\n", Some(3), "must be true or false");
    fails(
        "[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k1}\nShieldsUp = true\n",
        Some(5),
        "ShieldsUp belongs in [Interface]",
    );
}

#[test]
fn forgives_case_spacing_comments_and_line_endings() {
    let text = "\u{feff}# leading comment\r\n\r\n  [interface]  # trailing\r\n\
                privatekey={own}\r\n  ADDRESS\t=\t100.64.0.1 # me\r\nmtu = 65535\r\n\
                [PEER]\r\npublickey = {k1}\r\npersistentkeepalive = OFF\r\n";
    let config = parses(text);
    assert_eq!(config.netmap.self_node.addresses, prefixes(&["100.64.0.1/32"]));
    assert_eq!(config.netmap.self_node.mtu, 65535);
    assert_eq!(config.netmap.peers[0].persistent_keepalive, None);
}

#[test]
fn accumulates_repeated_lists_once_each() {
    let config = parses(
        "[Interface]\nPrivateKey = {own}\nAddress = fd00::1\nAddress = 10.0.0.1, fd00::1\n\
         Address = 10.0.0.2\n[Peer]\nPublicKey = {k1}\nAllowedIPs = 10.1.0.0/16\n\
         AllowedIPs = 10.1.2.3/16, 10.2.0.0/16\n",
    );
    assert_eq!(
        config.netmap.self_node.addresses,
        prefixes(&["10.0.0.1/32", "10.0.0.2/32", "fd00::1/128"])
    );
    assert_eq!(config.netmap.peers[0].allowed_ips, prefixes(&["10.1.0.0/16", "10.2.0.0/16"]));
}

#[test]
fn reads_keepalive_spellings() {
    for (value, expected) in [("off", None), ("0", None), ("1", Some(1)), ("65535", Some(65535))] {
        let config = parses(&format!(
            "[Interface]\nPrivateKey = {{own}}\n[Peer]\nPublicKey = {{k1}}\nPersistentKeepalive = {value}\n"
        ));
        assert_eq!(config.netmap.peers[0].persistent_keepalive, expected, "{value}");
    }
}

#[test]
fn keeps_a_listen_port_of_zero_for_the_os_to_choose() {
    let config = parses("[Interface]\nPrivateKey = {own}\nListenPort = 0\n");
    assert_eq!(config.netmap.self_node.listen_port, Some(0));
}

/// A wg-quick file of the usual shape: DNS and Table are host settings weft skips with a
/// warning each; a PostUp hook stops the load.
const WG_QUICK: &str = "\
    [Interface]
    Address = 10.200.100.8/24
    DNS = 10.200.100.1
    Table = off
    PrivateKey = {own}
    FwMark = 0x1234
    SaveConfig = true
    PostUp = iptables -A FORWARD -i %i -j ACCEPT

    [Peer]
    PublicKey = {k1}
    PresharedKey = {k2}
    AllowedIPs = 0.0.0.0/0
    Endpoint = 192.0.2.55:51820
";

#[test]
fn refuses_wg_quick_shell_hooks() {
    fails(
        WG_QUICK,
        Some(8),
        "PostUp: shell hooks are refused: weft runs no commands from its config",
    );
    for hook in ["PreUp", "PostUp", "PreDown", "postdown"] {
        let text = format!("[Interface]\nPrivateKey = {{own}}\n{hook} = true\n");
        fails(&text, Some(3), "shell hooks are refused");
        let before_any_section = format!("{hook} = true\n[Interface]\nPrivateKey = {{own}}\n");
        fails(&before_any_section, Some(1), "shell hooks are refused");
    }
}

#[test]
fn warns_about_wg_quick_host_settings() {
    let without_hook = WG_QUICK.replace("PostUp", "# PostUp");
    let config = parses(&without_hook);
    assert_eq!(
        config.warnings,
        [
            "wg0.conf:3: DNS is a wg-quick setting weft does not use; ignored",
            "wg0.conf:4: Table is a wg-quick setting weft does not use; ignored",
            "wg0.conf:6: FwMark is a wg-quick setting weft does not use; ignored",
            "wg0.conf:7: SaveConfig is a wg-quick setting weft does not use; ignored",
        ]
    );
    assert_eq!(config.netmap.peers[0].allowed_ips, prefixes(&["0.0.0.0/0"]));
}

#[test]
fn names_file_and_line_in_the_documented_form() {
    let text = fill(
        "[Interface]\nPrivateKey = {own}\n\n[Peer]\nPublicKey = {k1}\n# routes\nAllowedIPs = 10.0.0.1/33\n",
    );
    let error = parse(&text, "wg0.conf").unwrap_err();
    assert_eq!(
        error.to_string(),
        "wg0.conf:7: AllowedIPs: \"10.0.0.1/33\" — prefix length /33 is longer than /32"
    );
    let whole = parse("", "empty.conf").unwrap_err();
    assert_eq!(whole.to_string(), "empty.conf: no [Interface] section");
    let as_error: &dyn std::error::Error = &whole;
    assert_eq!(as_error.to_string(), "empty.conf: no [Interface] section");
}

#[test]
fn refuses_malformed_lines() {
    let head = "[Interface]\nPrivateKey = {own}\n";
    fails("Address = 10.0.0.1\n[Interface]\n", Some(1), "comes before any section");
    fails(&format!("{head}[Interfaces]\n"), Some(3), "unknown section \"[Interfaces]\"");
    fails(&format!("{head}[Peer\n"), Some(3), "a section header ends with ']'");
    fails(&format!("{head}[]\n"), Some(3), "unknown section");
    fails(&format!("{head}ListenPort 51820\n"), Some(3), "neither `Key = Value` nor");
    fails(&format!("{head}= 51820\n"), Some(3), "no key before '='");
    fails(&format!("{head}Adress = 10.0.0.1\n"), Some(3), "unknown key \"Adress\"");
    fails(&format!("{head}\n\n# c\nListenPort =\n"), Some(6), "ListenPort: no value given");
}

#[test]
fn refuses_keys_in_the_wrong_section() {
    let head = "[Interface]\nPrivateKey = {own}\n";
    fails(
        &format!("{head}AllowedIPs = 10.0.0.0/8\n"),
        Some(3),
        "AllowedIPs belongs in [Peer], not in [Interface]",
    );
    let peer = format!("{head}[Peer]\nPublicKey = {{k1}}\n");
    fails(
        &format!("{peer}PrivateKey = {{own}}\n"),
        Some(5),
        "PrivateKey belongs in [Interface], not in [Peer]",
    );
    fails(&format!("{peer}DNS = 1.1.1.1\n"), Some(5), "DNS belongs in [Interface], not in [Peer]");
    fails(&format!("{peer}MTU = 1400\n"), Some(5), "MTU belongs in [Interface]");
}

#[test]
fn refuses_single_keys_given_twice() {
    let head = "[Interface]\nPrivateKey = {own}\n";
    let peer = format!("{head}[Peer]\nPublicKey = {{k1}}\n");
    let twice = [
        (head.to_string(), "PrivateKey = {own}", "PrivateKey is already set on line 2"),
        (
            format!("{head}ListenPort = 1\n"),
            "listenport = 2",
            "ListenPort is already set on line 3",
        ),
        (format!("{head}MTU = 1400\n"), "MTU = 1500", "MTU is already set on line 3"),
        (format!("{head}Name = a\n"), "Name = b", "Name is already set on line 3"),
        (peer.clone(), "PublicKey = {k2}", "PublicKey is already set on line 4"),
        (
            format!("{peer}Endpoint = 192.0.2.1:1\n"),
            "Endpoint = 192.0.2.1:2",
            "Endpoint is already set on line 5",
        ),
        (
            format!("{peer}PersistentKeepalive = 5\n"),
            "PersistentKeepalive = 5",
            "PersistentKeepalive is already set on line 5",
        ),
        (
            format!("{peer}PresharedKey = {{k3}}\n"),
            "PresharedKey = {k3}",
            "PresharedKey is already set on line 5",
        ),
        (format!("{peer}Name = a\n"), "Name = a", "Name is already set on line 5"),
    ];
    for (before, again, says) in twice {
        let line = before.lines().count() + 1;
        fails(&format!("{before}{again}\n"), Some(line), says);
    }
}

#[test]
fn refuses_sections_missing_or_repeated() {
    fails("", None, "no [Interface] section");
    fails("# only a comment\n[Peer]\nPublicKey = {k1}\n", None, "no [Interface] section");
    fails("\n[Interface]\nAddress = 10.0.0.1\n", Some(2), "[Interface] has no PrivateKey");
    fails(
        "[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k1}\n\n[Peer]\nName = x\n",
        Some(6),
        "[Peer] has no PublicKey",
    );
    fails(
        "[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k1}\n[interface]\n",
        Some(5),
        "a second [Interface] section; the first is on line 1",
    );
}

#[test]
fn refuses_peers_sharing_a_key() {
    fails(
        "[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k2}\n[Peer]\n\nPublicKey = {k2}\n[Peer]\nPublicKey = {k1}\n",
        Some(7),
        "PublicKey is the same as the peer's on line 4",
    );
    fails(
        "[Peer]\nPublicKey = {self}\n[Interface]\n\nPrivateKey = {own}\n",
        Some(2),
        "PublicKey is this node's own, from the PrivateKey on line 5",
    );
}

#[test]
fn refuses_bad_values() {
    let head = "[Interface]\nPrivateKey = {own}\n";
    let peer = format!("{head}[Peer]\nPublicKey = {{k1}}\n");
    let bad_interface = [
        (
            "Address = 10.0.0.256",
            "Address: \"10.0.0.256\" — \"10.0.0.256\" is not an IP address or prefix",
        ),
        ("Address = 10.0.0.1/24,", "Address: \"10.0.0.1/24,\" has an empty entry"),
        (
            "Address = fd00::1/129",
            "Address: \"fd00::1/129\" — prefix length /129 is longer than /128",
        ),
        ("ListenPort = 65536", "ListenPort: \"65536\" — not a port number from 0 to 65535"),
        ("ListenPort = -1", "ListenPort: \"-1\" — not a port number"),
        (
            "MTU = 1279",
            "MTU: \"1279\" — must be a number from 1280 to 65535 (IPv6 needs at least 1280)",
        ),
        ("MTU = 65536", "IPv6 needs at least 1280"),
        ("MTU = big", "IPv6 needs at least 1280"),
        ("Name = a\u{7}b", "Name: \"a\\u{7}b\" — contains a control character"),
    ];
    for (setting, says) in bad_interface {
        fails(&format!("{head}{setting}\n"), Some(3), says);
    }
    let bad_peer = [
        ("PublicKey = {k2}x", "PublicKey is already set on line 4"),
        ("AllowedIPs = 10.0.0.0/8,,10.1.0.0/16", "AllowedIPs: \"10.0.0.0/8,,10.1.0.0/16\" has an empty entry"),
        ("AllowedIPs = 10.0.0.0/x", "AllowedIPs: \"10.0.0.0/x\" — \"x\" is not a prefix length"),
        ("Endpoint = vpn.example.com:51820", "Endpoint: \"vpn.example.com:51820\" — hostnames are not supported yet, use an IP address"),
        ("Endpoint = localhost:51820", "hostnames are not supported yet"),
        ("Endpoint = 192.0.2.1", "expected an IP address and port"),
        ("Endpoint = 192.0.2:51820", "expected an IP address and port"),
        ("Endpoint = fd00::1:51820", "expected an IP address and port"),
        ("Endpoint = [fd00::1]:0", "port 0 cannot be reached"),
        ("Endpoint = 192.0.2.1:65536", "expected an IP address and port"),
        ("PersistentKeepalive = 65536", "must be \"off\" or a number of seconds from 0 to 65535"),
        ("PersistentKeepalive = -1", "must be \"off\""),
        ("PersistentKeepalive = on", "must be \"off\""),
        ("PresharedKey = abc", "PresharedKey: key is not valid base64"),
        ("PresharedKey = c2hvcnQ=", "PresharedKey: key must be 32 bytes"),
    ];
    for (setting, says) in bad_peer {
        fails(&format!("{peer}{setting}\n"), Some(5), says);
    }
    fails(
        "[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = !!\n",
        Some(4),
        "PublicKey: \"!!\" — key is not valid base64",
    );
}

#[test]
fn never_echoes_secret_keys() {
    let secret = "c2VjcmV0c2VjcmV0c2VjcmV0"; // valid base64, but 18 bytes
    for text in [
        format!("[Interface]\nPrivateKey = {secret}\n"),
        format!("[Interface]\nPrivateKey = {{own}}\n[Peer]\nPublicKey = {{k1}}\nPresharedKey = {secret}\n"),
    ] {
        let error = parse(&fill(&text), "wg0.conf").unwrap_err();
        assert!(error.message.contains("key must be 32 bytes"), "{error}");
        assert!(!error.to_string().contains(secret), "{error}");
    }
}

#[test]
fn cuts_long_values_short_in_messages() {
    let long = "x".repeat(10_000);
    let error =
        parse(&format!("[Interface]\nName = a\nAddress = {long}\n"), "wg0.conf").unwrap_err();
    assert_eq!(error.line, Some(3));
    assert!(error.message.len() < 300, "{}", error.message);
    assert!(error.message.contains("…"), "{}", error.message);
}

#[test]
fn shaken_configs_never_panic_and_always_say_where() {
    let wg_quick_without_hook = WG_QUICK.replace("PostUp", "# PostUp");
    for (seed, template) in [(0x5eed_c0f1, FULL), (0x5eed_c0f2, wg_quick_without_hook.as_str())] {
        let valid = fill(template);
        let mut parsed = 0;
        shake(seed, 3000, valid.as_bytes(), |bytes| {
            let text = String::from_utf8_lossy(bytes);
            match parse(&text, "wg0.conf") {
                Ok(config) => {
                    parsed += 1;
                    let keys: Vec<_> = config.netmap.peers.iter().map(|p| p.public_key).collect();
                    assert!(
                        keys.windows(2).all(|pair| pair[0] < pair[1]),
                        "peers unsorted or repeated"
                    );
                }
                Err(error) => assert_well_formed(&error, &text),
            }
        });
        // Some mutations (a flipped comment byte, a duplicated blank line) keep the file valid.
        assert!(parsed > 0, "seed {seed:#x}");
    }
}

/// A file in the system's temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn with(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("weft-config-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn loads_a_file_and_names_it_in_messages() {
    let good = TempFile::with("good.conf", fill(FULL).as_bytes());
    assert_eq!(load(&good.0).unwrap(), parses(FULL));

    let bad = TempFile::with("bad.conf", b"[Interface]\nPrivateKey = x\n");
    let error = load(&bad.0).unwrap_err();
    assert_eq!(error.origin, bad.0.display().to_string());
    assert_eq!(error.line, Some(2));
}

/// A tailnet of 10,000 peers, each with two addresses, an endpoint and a name: some 2 MB.
#[test]
fn loads_a_ten_thousand_peer_file() {
    let mut text = fill("[Interface]\nPrivateKey = {own}\nAddress = 100.64.0.1/32\n");
    for i in 0..10_000u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        let (high, low) = (i >> 8, i & 0xff);
        text += &format!(
            "\n[Peer]\n# peer number {i} of the big tailnet\nName = peer-{i}\n\
             PublicKey = {}\nAllowedIPs = 100.65.{high}.{low}/32, fd7a:115c:a1e0::1:{i:x}/128\n\
             Endpoint = 192.0.2.{low}:41641\nPersistentKeepalive = 25\n",
            PublicKey(key).to_base64()
        );
    }
    assert!(text.len() > 2_000_000, "{} bytes", text.len());
    let file = TempFile::with("big.conf", text.as_bytes());
    let config = load(&file.0).unwrap_or_else(|error| panic!("{error}"));
    let peers = &config.netmap.peers;
    assert_eq!(peers.len(), 10_000);
    assert!(peers.windows(2).all(|pair| pair[0].public_key < pair[1].public_key));
    assert_eq!(peers[300].name, "peer-300");
    assert_eq!(peers[300].allowed_ips, prefixes(&["100.65.1.44/32", "fd7a:115c:a1e0::1:12c/128"]));
}

#[test]
fn refuses_files_that_are_not_configs() {
    let binary = TempFile::with("binary.conf", b"[Interface]\n# ok\nName = \xff\xfe\n");
    let error = load(&binary.0).unwrap_err();
    assert_eq!((error.line, error.message.as_str()), (Some(3), "not UTF-8 text"));

    let mut huge = fill(FULL).into_bytes();
    huge.resize((16 << 20) + 1, b'\n');
    let huge = TempFile::with("huge.conf", &huge);
    let error = load(&huge.0).unwrap_err();
    assert_eq!(
        (error.line, error.message.as_str()),
        (None, "larger than 16 MiB, too big to be a config file")
    );

    let missing = std::env::temp_dir().join("weft-config-no-such-file.conf");
    let error = load(&missing).unwrap_err();
    assert!(error.message.starts_with("cannot open: "), "{error}");
    assert!(
        error.to_string().starts_with(&format!("{}: cannot open", missing.display())),
        "{error}"
    );
}

#[test]
fn special_files_are_refused_without_blocking() {
    let dir = crate::testing::fresh_dir("config-special");
    let fifo = dir.join("wg0.conf");
    crate::testing::mkfifo(&fifo);
    let error = crate::testing::within(5, move || load(&fifo)).unwrap_err();
    assert!(error.message.contains("not a regular file"), "{error}");

    let error = crate::testing::within(5, || load(std::path::Path::new("/dev/zero"))).unwrap_err();
    assert!(error.message.contains("not a regular file"), "{error}");

    // A symlink is fine as long as it ends at a regular file.
    let real = dir.join("real.conf");
    std::fs::write(&real, fill(FULL)).unwrap();
    let link = dir.join("link.conf");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(load(&link).unwrap(), parses(FULL));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Lines holding a secret in a shape the parser refuses must not come back in the message
/// (which ends up in the log and in `weft status`): not the key, not a piece of it.
#[test]
fn refused_lines_holding_keys_are_not_echoed() {
    let truncated = &OWN_PRIVATE[..20];
    for (body, line) in [
        ("[Interface]\nPrivateKey: {own}\n", 2),
        ("[Interface]\nprivatekey {own}\n", 2),
        ("[Interface]\nPrivateKey: TRUNCATED\n", 2),
        ("[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k1}\nPresharedKey: {own}\n", 5),
        ("[Interface]\n{own}\n", 2),
        ("[Interface]\nPrivateKey = {own}\n[Peer {own}]\n", 3),
        ("[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k1}\nEndpoint = {own}\n", 5),
        ("[Interface]\nPrivateKey = {own}\n[Peer]\nPublicKey = {k1}\nAllowedIPs = {own}\n", 5),
    ] {
        let text = fill(body).replace("TRUNCATED", truncated);
        let error = parse(&text, "wg0.conf").unwrap_err();
        assert_eq!(error.line, Some(line), "{error}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(&OWN_PRIVATE[..4]), "{shown}");
        assert!(!shown.contains(&OWN_PRIVATE[20..24]), "{shown}");
    }
}

/// A parsed config is printed with `{:?}` in test failures and debug logs; its keys must not be.
#[test]
fn debug_output_of_a_config_shows_no_secret_key() {
    let config = parses(FULL);
    assert!(config.netmap.peers.iter().any(|peer| peer.preshared_key.is_some()));
    let shown = format!("{config:?}");
    assert!(!shown.contains(&format!("{:?}", [2u8; 32])[..20]), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", config.netmap.self_node.private_key.0)[..20]),
        "{shown}"
    );
}

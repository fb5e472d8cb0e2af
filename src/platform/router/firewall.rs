//! weft's own nftables table, `inet weft`: packets that claim a tailnet (CGNAT) source must
//! have come through the tunnel. Without it anyone on the LAN can send the host a packet from
//! `100.64.0.7` and reach services that trust the tailnet range whenever reverse-path
//! filtering is off or loose (`rp_filter` 0 or 2; systemd sets 2). The rules are the ones
//! tailscaled installs, in a table of our own so that nothing else's rules are touched and
//! the whole table can be replaced or removed in one `nft -f -` transaction.
//!
//! The script is a pure function of the configuration, so its exact text is unit-tested on
//! every OS; only Linux runs it.

use super::tool::Tool;
use super::RouterError;
use std::io;

/// The family and name of the table; `inet` so one table could also hold IPv6 rules.
const TABLE: &str = "inet weft";

/// The range Tailscale hands out addresses from.
const CGNAT_RANGE: &str = "100.64.0.0/10";

/// Part of the CGNAT range that ChromeOS uses for its own VMs, which reach the host on
/// their own interfaces: tailscaled lets them in, and so do we.
const CHROMEOS_VM_RANGE: &str = "100.115.92.0/23";

/// What the table should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FirewallConfig {
    /// The TUN interface, the one way in for tailnet sources.
    pub tun: String,
    /// Whether CGNAT-range packets arriving on other interfaces are dropped; control turns
    /// this off with the node attribute `disable-linux-cgnat-drop-rule` (capver 136) where
    /// the host must reach off-tailnet machines in that range. The forward rule stays.
    pub drop_inbound: bool,
}

/// The script that installs the table for `config`, replacing any earlier one of ours in
/// the same transaction: `nft -f` applies a file atomically, so no packet ever sees the
/// table missing or half-built, also when the TUN name changes.
pub(super) fn install_script(config: &FirewallConfig) -> String {
    let tun = &config.tun;
    let mut script = removal_script();
    script += &format!("table {TABLE} {{\n");
    if config.drop_inbound {
        // `accept` here ends only this chain: other tables still judge the packet.
        // Loopback carries the host's own traffic to its tailnet address.
        script += &format!(
            "\tchain input {{\n\
             \t\ttype filter hook input priority 0; policy accept;\n\
             \t\tiifname {{ \"lo\", \"{tun}\" }} accept\n\
             \t\tip saddr {CHROMEOS_VM_RANGE} accept\n\
             \t\tip saddr {CGNAT_RANGE} counter drop\n\
             \t}}\n"
        );
    }
    // Nothing may leave by the tunnel with a tailnet source it did not bring in itself: a
    // peer would take it for another peer.
    script += &format!(
        "\tchain forward {{\n\
         \t\ttype filter hook forward priority 0; policy accept;\n\
         \t\tiifname != \"{tun}\" oifname \"{tun}\" ip saddr {CGNAT_RANGE} counter drop\n\
         \t}}\n\
         }}\n"
    );
    script
}

/// The script that removes the table, and succeeds when there is none: `add` of an
/// existing table is a no-op, so the `delete` always has something to delete.
pub(super) fn removal_script() -> String {
    format!("add table {TABLE}\ndelete table {TABLE}\n")
}

/// Refuses a name that `nft` would not match literally: a trailing `*` is a wildcard, and a
/// `"` or `\` (which Linux allows in interface names) would end or bend the quoted string
/// the script names it in.
fn check_name(tun: &str) -> Result<(), RouterError> {
    let why = if tun.contains('*') {
        "contains '*', which nft takes as a wildcard"
    } else if tun.contains(['"', '\\']) {
        "contains a quote or a backslash, which nft's script cannot hold in a name"
    } else {
        return Ok(());
    };
    Err(RouterError(format!(
        "the interface name {tun:?} {why}; packets spoofing a tailnet source are not dropped"
    )))
}

/// The table as last installed, and the `nft` that installs it.
pub(super) struct Firewall {
    nft: Box<dyn Tool>,
    /// What the kernel holds, as far as we know; `None`: no table of ours.
    installed: Option<FirewallConfig>,
}

impl Firewall {
    pub(super) fn new(nft: Box<dyn Tool>) -> Firewall {
        Firewall { nft, installed: None }
    }

    /// Brings the table to `wanted`; nothing runs when it already is. On failure the old
    /// table (if any) stays whole, and the next call tries again.
    pub(super) fn apply(&mut self, wanted: &FirewallConfig) -> Result<(), RouterError> {
        if self.installed.as_ref() == Some(wanted) {
            return Ok(());
        }
        check_name(&wanted.tun)?;
        self.run(&install_script(wanted))?;
        self.installed = Some(wanted.clone());
        Ok(())
    }

    /// Removes the table we installed, if we did.
    pub(super) fn remove(&mut self) -> Result<(), RouterError> {
        if self.installed.is_none() {
            return Ok(());
        }
        self.run(&removal_script())?;
        self.installed = None;
        Ok(())
    }

    /// Removes a table a crashed run may have left. Without `nft` there is nothing to do:
    /// nothing could have installed one, and nothing could remove it.
    pub(super) fn remove_stale(&mut self) -> Result<(), RouterError> {
        match self.nft.run(&["-f", "-"], &removal_script()) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            result => judge(result),
        }
    }

    fn run(&mut self, script: &str) -> Result<(), RouterError> {
        judge(self.nft.run(&["-f", "-"], script))
    }
}

/// One line for `weft status`: nft's own first error line, or why it did not run.
fn judge(result: io::Result<super::ToolOutput>) -> Result<(), RouterError> {
    let output = result.map_err(|err| {
        RouterError(format!(
            "cannot run `nft` (nftables), so packets spoofing a tailnet source from other \
             interfaces are not dropped: {err}"
        ))
    })?;
    if output.success {
        return Ok(());
    }
    let lines = || output.stderr.lines().map(str::trim).filter(|line| !line.is_empty());
    let reason = lines().find(|line| line.contains("Error")).or_else(|| lines().next());
    Err(RouterError(format!(
        "`nft -f -` refused weft's firewall table, so packets spoofing a tailnet source \
         from other interfaces are not dropped: {}",
        reason.unwrap_or("no reason given")
    )))
}

#[cfg(test)]
mod tests {
    use super::super::ToolOutput;
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn config(tun: &str) -> FirewallConfig {
        FirewallConfig { tun: tun.into(), drop_inbound: true }
    }

    #[test]
    fn the_script_replaces_the_table_with_tailscaleds_rules() {
        assert_eq!(
            install_script(&config("weft0")),
            "add table inet weft\n\
             delete table inet weft\n\
             table inet weft {\n\
             \tchain input {\n\
             \t\ttype filter hook input priority 0; policy accept;\n\
             \t\tiifname { \"lo\", \"weft0\" } accept\n\
             \t\tip saddr 100.115.92.0/23 accept\n\
             \t\tip saddr 100.64.0.0/10 counter drop\n\
             \t}\n\
             \tchain forward {\n\
             \t\ttype filter hook forward priority 0; policy accept;\n\
             \t\tiifname != \"weft0\" oifname \"weft0\" ip saddr 100.64.0.0/10 counter drop\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn control_can_turn_the_inbound_drop_off_but_not_the_forward_one() {
        let script = install_script(&FirewallConfig { drop_inbound: false, ..config("t0") });
        assert!(!script.contains("hook input"), "{script}");
        assert!(script.contains("oifname \"t0\" ip saddr 100.64.0.0/10 counter drop"), "{script}");
    }

    #[test]
    fn removal_succeeds_with_or_without_a_table() {
        assert_eq!(removal_script(), "add table inet weft\ndelete table inet weft\n");
    }

    type Runs = Rc<RefCell<Vec<String>>>;

    /// Records each script; answers with `answer` (success when `None`).
    struct FakeNft {
        runs: Runs,
        answer: Rc<RefCell<Option<io::Result<ToolOutput>>>>,
    }

    impl Tool for FakeNft {
        fn run(&mut self, args: &[&str], stdin: &str) -> io::Result<ToolOutput> {
            assert_eq!(args, ["-f", "-"]);
            self.runs.borrow_mut().push(stdin.to_string());
            match self.answer.borrow_mut().take() {
                Some(answer) => answer,
                None => Ok(ToolOutput { success: true, stderr: String::new() }),
            }
        }
    }

    type Answer = Rc<RefCell<Option<io::Result<ToolOutput>>>>;

    fn firewall() -> (Firewall, Runs, Answer) {
        let (runs, answer) = (Runs::default(), Answer::default());
        let nft = FakeNft { runs: runs.clone(), answer: answer.clone() };
        (Firewall::new(Box::new(nft)), runs, answer)
    }

    #[test]
    fn installs_once_replaces_on_a_new_name_and_removes_once() {
        let (mut firewall, runs, _) = firewall();
        firewall.apply(&config("weft0")).unwrap();
        firewall.apply(&config("weft0")).unwrap();
        assert_eq!(*runs.borrow(), [install_script(&config("weft0"))]);
        firewall.apply(&config("weft1")).unwrap();
        assert_eq!(runs.borrow()[1], install_script(&config("weft1")));
        firewall.remove().unwrap();
        firewall.remove().unwrap();
        assert_eq!(runs.borrow()[2..], [removal_script()]);
    }

    #[test]
    fn a_refusal_is_reported_in_nfts_words_and_retried() {
        let (mut firewall, runs, answer) = firewall();
        let stderr = "/dev/stdin:1:1-19: Error: Could not process rule: Operation not supported\n\
                      add table inet weft\n^^^^^\n";
        *answer.borrow_mut() = Some(Ok(ToolOutput { success: false, stderr: stderr.into() }));
        let message = firewall.apply(&config("weft0")).unwrap_err().to_string();
        assert!(message.contains("not dropped"), "{message}");
        assert!(
            message.ends_with("Error: Could not process rule: Operation not supported"),
            "{message}"
        );
        firewall.remove().unwrap();
        assert_eq!(runs.borrow().len(), 1, "nothing installed, nothing to remove");
        firewall.apply(&config("weft0")).unwrap();
        assert_eq!(runs.borrow().len(), 2, "tried again");
    }

    #[test]
    fn a_missing_nft_is_a_clear_problem_except_for_stale_removal() {
        let (mut firewall, _, answer) = firewall();
        let missing = || Some(Err(io::Error::new(io::ErrorKind::NotFound, "No such file")));
        *answer.borrow_mut() = missing();
        let message = firewall.apply(&config("weft0")).unwrap_err().to_string();
        assert!(message.starts_with("cannot run `nft` (nftables)"), "{message}");
        *answer.borrow_mut() = missing();
        firewall.remove_stale().unwrap();
        let denied = io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        *answer.borrow_mut() = Some(Err(denied));
        assert!(firewall.remove_stale().is_err());
    }

    #[test]
    fn refuses_a_name_nft_would_not_take_literally() {
        let (mut firewall, runs, _) = firewall();
        let message = firewall.apply(&config("weft*")).unwrap_err().to_string();
        assert!(message.contains("wildcard"), "{message}");
        for name in ["we\"ft", "we\\ft"] {
            let message = firewall.apply(&config(name)).unwrap_err().to_string();
            assert!(message.contains("quote or a backslash"), "{message}");
        }
        assert!(runs.borrow().is_empty());
    }
}

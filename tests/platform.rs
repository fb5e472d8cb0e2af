//! `make install-files`/`make uninstall` (platform/install.sh) and the static checks of the
//! service files and packaging skeletons (platform/check.sh).
//!
//! The install tests stage into a temporary DESTDIR with a dummy binary, once per OS
//! (`SERVICE_OS`), and compare every file, link and mode with the documented layout; they
//! need only `make` and a POSIX sh. platform/check.sh needs python3, shellcheck, mksh,
//! xmllint and systemd-analyze: without them its tests print a skip, or fail under
//! `WEFT_LAB_REQUIRE=1` (as `make test` sets after scripts/install-test-deps.sh).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PREFIX: &str = "/opt/weft";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("weft-platform-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn dummy_binary(scratch: &Scratch) -> PathBuf {
    let bin = scratch.0.join("weft-bin");
    fs::write(&bin, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn make(args: &[&str]) -> Output {
    Command::new("make").arg("-s").args(args).current_dir(repo()).output().expect("run make")
}

fn make_ok(args: &[&str]) -> String {
    let out = make(args);
    assert!(
        out.status.success(),
        "make {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file and link under `root`, as "path mode" or "path -> target", relative to `root`.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut entries = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                let mode = meta.permissions().mode() & 0o7777;
                assert_eq!(mode, 0o755, "directory {name} has mode {mode:04o}");
                pending.push(path);
            } else if meta.file_type().is_symlink() {
                entries.insert(format!("{name} -> {}", fs::read_link(&path).unwrap().display()));
            } else {
                entries.insert(format!("{name} {:04o}", meta.permissions().mode() & 0o7777));
            }
        }
    }
    entries
}

/// Where each OS's service file goes under PREFIX=/opt/weft, and its mode.
fn service_file(os: &str) -> Option<&'static str> {
    Some(match os {
        "Linux" => "opt/weft/lib/systemd/system/weftd.service 0644",
        "FreeBSD" => "opt/weft/etc/rc.d/weftd 0555",
        "NetBSD" => "etc/rc.d/weftd 0555",
        "OpenBSD" => "etc/rc.d/weftd 0555",
        "Darwin" => "Library/LaunchDaemons/com.weft.weftd.plist 0644",
        "SunOS" => "var/svc/manifest/site/weftd.xml 0444",
        _ => return None,
    })
}

fn expected_tree(os: &str) -> BTreeSet<String> {
    let mut expected: BTreeSet<String> = [
        "opt/weft/sbin/weftd 0755",
        "opt/weft/bin/weft -> ../sbin/weftd",
        "opt/weft/share/man/man1/weft.1 0644",
        "opt/weft/share/man/man5/weft.conf.5 0644",
        "opt/weft/share/man/man8/weftd.8 0644",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    expected.extend(service_file(os).map(String::from));
    expected
}

/// Template words that packaging or install.sh should have replaced.
fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (open, close) in [("%%", "%%"), ("@", "@")] {
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + open.len()..];
            let word_len = after.find(|c: char| !(c.is_ascii_uppercase() || c == '_'));
            if let Some(len) = word_len.filter(|&len| len > 0) {
                if after[len..].starts_with(close) {
                    found.push(format!("{open}{}{close}", &after[..len]));
                }
            }
            rest = after;
        }
    }
    if text.contains("${TRUEPREFIX}") {
        found.push("${TRUEPREFIX}".into());
    }
    found
}

fn install_vars(destdir: &Path, bin: &Path, os: Option<&str>) -> Vec<String> {
    let mut vars = vec![
        format!("DESTDIR={}", destdir.display()),
        format!("PREFIX={PREFIX}"),
        format!("BIN={}", bin.display()),
    ];
    vars.extend(os.map(|os| format!("SERVICE_OS={os}")));
    vars
}

fn install_and_uninstall(os: Option<&str>, expect_as: &str) {
    let scratch = Scratch::new(&format!("install-{}", os.unwrap_or("default")));
    let bin = dummy_binary(&scratch);
    let destdir = scratch.0.join("root");
    let vars = install_vars(&destdir, &bin, os);
    let args = |target: &'static str| {
        std::iter::once(target).chain(vars.iter().map(String::as_str)).collect::<Vec<_>>()
    };

    make_ok(&args("install-files"));
    assert_eq!(tree(&destdir), expected_tree(expect_as), "installed for {expect_as}");
    if let Some(entry) = service_file(expect_as) {
        let path = destdir.join(entry.split(' ').next().unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("/opt/weft/sbin/weftd"), "{}: PREFIX not filled in", path.display());
        assert_eq!(placeholders(&text), Vec::<String>::new(), "{}", path.display());
    }
    // A second install over the first (read-only service files included) works.
    make_ok(&args("install-files"));

    make_ok(&args("uninstall"));
    assert_eq!(tree(&destdir), BTreeSet::new(), "left behind by uninstall for {expect_as}");
}

#[test]
fn install_files_puts_each_os_service_file_in_place_and_uninstall_removes_all() {
    for os in ["Linux", "FreeBSD", "NetBSD", "OpenBSD", "Darwin", "SunOS", "none"] {
        install_and_uninstall(Some(os), os);
    }
}

#[test]
fn install_files_picks_the_service_file_of_the_running_os() {
    let uname = Command::new("uname").arg("-s").output().expect("uname");
    let os = String::from_utf8_lossy(&uname.stdout).trim().to_string();
    install_and_uninstall(None, &os);
}

#[test]
fn install_builds_first_and_install_files_does_not() {
    let plan = make_ok(&["-n", "install"]);
    let build = plan.find("cargo build --release --locked").expect("install runs the build");
    let install = plan.find("platform/install.sh install").expect("install runs install.sh");
    assert!(build < install, "{plan}");
    let plan = make_ok(&["-n", "install-files"]);
    assert!(!plan.contains("cargo build"), "{plan}");
    assert!(plan.contains("platform/install.sh install"), "{plan}");
}

#[test]
fn install_files_refuses_a_missing_binary_and_installs_nothing() {
    let scratch = Scratch::new("missing-bin");
    let destdir = scratch.0.join("root");
    let vars = install_vars(&destdir, &scratch.0.join("no-such-binary"), Some("Linux"));
    let args: Vec<&str> =
        std::iter::once("install-files").chain(vars.iter().map(String::as_str)).collect();
    let out = make(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!destdir.exists() || tree(&destdir).is_empty());
}

#[test]
fn placeholder_scan_finds_template_words() {
    assert_eq!(
        placeholders("a %%PREFIX%% b @VARBASE@ c ${TRUEPREFIX} user@host 50%"),
        ["%%PREFIX%%", "@VARBASE@", "${TRUEPREFIX}"]
    );
}

/// Runs platform/check.sh from `root`; `None` when a tool is missing and that is allowed.
fn run_check(root: &Path) -> Option<(i32, String)> {
    let out = Command::new("sh")
        .arg(root.join("platform/check.sh"))
        .current_dir(root)
        .output()
        .expect("run platform/check.sh");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    if code == 77 {
        let required = std::env::var("WEFT_LAB_REQUIRE").as_deref() == Ok("1");
        assert!(!required, "platform/check.sh cannot run: {text}");
        println!("SKIPPED platform/check.sh: {text}");
        return None;
    }
    Some((code, text))
}

#[test]
fn platform_check_passes() {
    if let Some((code, text)) = run_check(repo()) {
        assert_eq!(code, 0, "{text}");
    }
}

/// A copy of what platform/check.sh reads, to break one thing in.
fn checkable_copy(scratch: &Scratch) -> PathBuf {
    let root = scratch.0.join("repo");
    fs::create_dir_all(&root).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .args(["Cargo.toml", "Cargo.lock", "platform", "man"].map(|p| repo().join(p)))
        .arg(&root)
        .status()
        .expect("cp");
    assert!(status.success());
    root
}

fn edit(path: &Path, change: impl FnOnce(String) -> String) {
    let text = fs::read_to_string(path).unwrap();
    let changed = change(text.clone());
    assert_ne!(text, changed, "{}: edit changed nothing", path.display());
    fs::write(path, changed).unwrap();
}

#[test]
fn platform_check_catches_each_kind_of_breakage() {
    type Breakage = (&'static str, &'static str, fn(String) -> String, &'static str);
    let breakages: [Breakage; 7] = [
        (
            "lock",
            "Cargo.lock",
            |s| s[..s.rfind("[[package]]").unwrap()].to_string(),
            "crate lists are stale",
        ),
        (
            "unit",
            "platform/linux/weftd.service",
            |s| s.replace("Type=simple", "Type=simpel"),
            "systemd-analyze verify printed warnings",
        ),
        ("freebsd", "platform/freebsd/rc.d/weftd", |s| s + "if then\n", "sh -n FreeBSD"),
        (
            "netbsd",
            "platform/netbsd/rc.d/weftd",
            |s| s.replace("@VARBASE@/log", "@LOGDIR@"),
            "install.sh NetBSD",
        ),
        ("openbsd", "platform/openbsd/rc.d/weftd", |s| s + "rc_cmd ((\n", "mksh -n OpenBSD"),
        (
            "smf",
            "platform/illumos/weftd.xml",
            |s| s.replace("</service_bundle>", ""),
            "xmllint SunOS",
        ),
        (
            "plist",
            "platform/macos/com.weft.weftd.plist",
            |s| s.replacen("</dict>", "", 1),
            "xmllint Darwin",
        ),
    ];
    for (name, file, change, failure) in breakages {
        let scratch = Scratch::new(&format!("check-{name}"));
        let root = checkable_copy(&scratch);
        edit(&root.join(file), change);
        let Some((code, text)) = run_check(&root) else { return };
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains(&format!("FAILED: {failure}")), "{name}: {text}");
    }
}

/// The `--flags` weftd's own `--help` lists.
fn weftd_flags() -> BTreeSet<String> {
    use std::os::unix::process::CommandExt;
    let out =
        Command::new(env!("CARGO_BIN_EXE_weft")).arg0("weftd").arg("--help").output().unwrap();
    assert!(out.status.success());
    long_flags(&String::from_utf8_lossy(&out.stdout))
}

fn long_flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(String::from)
        .collect()
}

#[test]
fn service_files_pass_weftd_only_flags_it_has() {
    let known = weftd_flags();
    assert!(known.contains("--config") && known.contains("--statedir"), "{known:?}");
    for file in [
        "platform/linux/weftd.service",
        "platform/freebsd/rc.d/weftd",
        "platform/netbsd/rc.d/weftd",
        "platform/openbsd/rc.d/weftd",
        "platform/macos/com.weft.weftd.plist",
        "platform/illumos/weftd.xml",
    ] {
        let text = fs::read_to_string(repo().join(file)).unwrap();
        // Lines that run the service manager itself (`systemctl enable --now`) are not
        // about weftd's options.
        let managers = ["systemctl", "launchctl", "svcadm", "svccfg", "rcctl", "sysrc"];
        for line in text.lines().filter(|l| !managers.iter().any(|m| l.contains(m))) {
            let unknown: Vec<_> = long_flags(line).difference(&known).cloned().collect();
            assert!(unknown.is_empty(), "{file}: weftd has no {unknown:?}: {line}");
        }
    }
}

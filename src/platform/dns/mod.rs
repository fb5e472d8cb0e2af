//! The OS DNS configurator: puts the tailnet's DNS settings into the host's resolver while
//! the user asks for it (`weft up --accept-dns`), and takes them out again — at stop, at
//! `weft down`, or after a crash at the next start.
//!
//! Everything here is portable (`translate` turns the tailnet's settings into the OS's,
//! `manager` detects and drives each OS's manager, `direct` and `darwin` write the files),
//! so every OS's behaviour runs in Linux tests against fake tools in a temporary root; the
//! OS only decides which paths and tools are the real ones.

mod darwin;
mod direct;
mod host;
mod manager;
mod record;
mod resolv_file;
mod tools;
mod translate;

#[cfg(test)]
mod fake_os_tools_test;
#[cfg(test)]
mod fake_tools_test;
#[cfg(all(test, target_os = "linux"))]
mod mount_ns_test;

// The resolv.conf reader reads outside bytes: the fuzz target drives it.
pub(crate) use host::{Held, HostResolver};
#[cfg(feature = "fuzzing")]
pub(crate) use resolv_file::{with_search, writer_of, Writer};
pub(crate) use translate::{os_config, OsDnsConfig, Translation};

use crate::platform::os_kind::OsKind;
use crate::platform::router::bsd::PathRunner;
use manager::Manager;
use record::Touched;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tools::DnsTools;

/// Where the managers read and write, injectable so tests run in a temporary root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DnsPaths {
    pub resolv_conf: PathBuf,
    /// Where direct mode (and OpenBSD's search edit) keeps the original resolv.conf.
    pub backup: PathBuf,
    /// macOS's per-domain resolver files.
    pub resolver_dir: PathBuf,
    /// illumos: whose `hosts:` line must name `dns`.
    pub nsswitch: PathBuf,
    /// The crash record.
    pub record: PathBuf,
    /// systemd-resolved's list of the servers it asks (not its stub's address).
    pub resolved_upstreams: PathBuf,
}

impl DnsPaths {
    /// The host's own files, the record in `state_dir`.
    pub(crate) fn system(state_dir: &Path) -> DnsPaths {
        DnsPaths::under(Path::new("/"), state_dir)
    }

    /// The system's files under `root` (`/` on a real host), the record in `state_dir`.
    pub(crate) fn under(root: &Path, state_dir: &Path) -> DnsPaths {
        let etc = root.join("etc");
        DnsPaths {
            resolv_conf: etc.join("resolv.conf"),
            backup: etc.join("resolv.pre-weft-backup.conf"),
            resolver_dir: etc.join("resolver"),
            nsswitch: etc.join("nsswitch.conf"),
            record: state_dir.join("dns-applied"),
            resolved_upstreams: root.join("run/systemd/resolve/resolv.conf"),
        }
    }
}

pub(crate) struct DnsConfigurator {
    os: OsKind,
    paths: DnsPaths,
    tools: Box<dyn DnsTools>,
    /// The manager and interface that may hold our settings (as recorded); `None` when the
    /// host holds none of ours.
    touched: Option<Touched>,
    /// What was last applied in full; `None` after a failure, so the next call tries again.
    applied: Option<OsDnsConfig>,
    /// Notes already logged: a note every netmap repeats is logged once.
    logged: BTreeSet<String>,
}

impl DnsConfigurator {
    /// The configurator of this OS (`None` on one we do not know), recording in `state_dir`.
    pub(crate) fn system(state_dir: &Path) -> Option<DnsConfigurator> {
        let os = OsKind::current()?;
        Some(DnsConfigurator::new(os, DnsPaths::system(state_dir), Box::<PathRunner>::default()))
    }

    pub(crate) fn new(os: OsKind, paths: DnsPaths, tools: Box<dyn DnsTools>) -> DnsConfigurator {
        DnsConfigurator { os, paths, tools, touched: None, applied: None, logged: BTreeSet::new() }
    }

    /// Takes back what a run that crashed left (as its record says). Call once at start.
    pub(crate) fn remove_stale(&mut self) -> Result<(), String> {
        self.touched = record::load(&self.paths.record)?;
        if let Some(touched) = &self.touched {
            log::info!(
                "taking back the DNS settings an earlier run left ({} on {})",
                touched.manager.name(),
                touched.tun
            );
        }
        self.remove()
    }

    /// Brings the host to `wanted` for interface `tun`: applies it when it differs from
    /// what was last applied, or takes ours back when there is nothing to apply. Notes are
    /// logged once each; an error leaves things so that the next call tries again.
    pub(crate) fn set(&mut self, tun: &str, wanted: Translation) -> Result<(), String> {
        for note in wanted.notes {
            self.note(note);
        }
        let Some(config) = wanted.config else { return self.remove() };
        let same_tun = self.touched.as_ref().is_some_and(|t| t.tun == tun);
        if same_tun && self.applied.as_ref() == Some(&config) {
            return Ok(());
        }
        if !same_tun {
            self.remove()?;
        }
        let manager = match &self.touched {
            Some(touched) => touched.manager,
            None => self.detect()?,
        };
        let touched = Touched { manager, tun: tun.to_string() };
        record::save(&self.paths.record, &touched)?;
        self.touched = Some(touched);
        self.applied = None;
        let notes = manager::apply(manager, &self.paths, self.tools.as_mut(), tun, &config)?;
        notes.into_iter().for_each(|note| self.note(note));
        log::info!(
            "DNS applied through {}: nameservers {:?}, search {:?}, only for {:?}",
            manager.name(),
            config.nameservers,
            config.search_domains,
            config.match_domains
        );
        self.applied = Some(config);
        Ok(())
    }

    /// What weft holds in the host's resolver now; `None` when nothing.
    pub(crate) fn held(&self) -> Option<Held> {
        let touched = self.touched.as_ref()?;
        let nameservers = self.applied.iter().flat_map(|c| c.nameservers.clone()).collect();
        Some(Held { manager: touched.manager, nameservers })
    }

    /// Takes our settings back, if the host holds any; the record goes once they are gone.
    pub(crate) fn remove(&mut self) -> Result<(), String> {
        let Some(touched) = &self.touched else { return Ok(()) };
        let note =
            manager::remove(touched.manager, &self.paths, self.tools.as_mut(), &touched.tun)?;
        log::info!("DNS settings taken back from {}", touched.manager.name());
        direct::remove(&self.paths.record)?;
        self.touched = None;
        self.applied = None;
        note.into_iter().for_each(|note| self.note(note));
        Ok(())
    }

    fn detect(&mut self) -> Result<Manager, String> {
        let (manager, notes) = manager::detect(self.os, &self.paths, self.tools.as_mut())?;
        notes.into_iter().for_each(|note| self.note(note));
        Ok(manager)
    }

    fn note(&mut self, note: String) {
        if self.logged.insert(note.clone()) {
            log::warn!("DNS: {note}");
        }
    }
}

//! Hot reload: the policy (and the lists it names) and the lease file are re-read when they change
//! on disk (notify) and on SIGHUP. A new policy is built completely off to the side; a file that does
//! not load leaves the last good policy in place and the reason is logged with file and line. Every
//! policy change a stand-alone resolver loads is logged as a summary of what changed, for the
//! school's filtering change-control record.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use crate::identity::Leases;
use crate::policy::{Policy, Tier};
use crate::state::State;

/// Changes closer together than this are read once.
const SETTLE: Duration = Duration::from_millis(250);
/// How often the folders of the lists in force are checked to be watched.
const REWATCH: Duration = Duration::from_secs(5);

/// What to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// The local policy file itself.
    Policy,
    /// A list file the policy in force names.
    Lists,
    Leases,
}

/// Re-reads the policy file; on success swaps it in and logs what changed.
pub async fn reload_policy(state: &State, path: &Path) -> bool {
    let p = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || Policy::load(&p)).await;
    match loaded {
        Ok(Ok(policy)) => {
            let old = state.snapshot().policy.clone();
            let changes = diff(&old, &policy);
            if changes.is_empty() {
                tracing::info!(policy = %path.display(), "policy re-read; no changes");
            } else {
                for change in &changes {
                    tracing::info!(policy = %path.display(), "policy change: {change}");
                }
            }
            policy.warn_blocks_without_lists();
            state.set_policy(policy);
            true
        }
        Ok(Err(e)) => {
            tracing::error!("policy not reloaded, keeping the last good policy: {e}");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "policy reload task failed; keeping the last good policy");
            false
        }
    }
}

/// Re-reads the lease file; a broken file keeps the current leases.
pub async fn reload_leases(state: &State, path: &Path) {
    let p = path.to_path_buf();
    match tokio::task::spawn_blocking(move || Leases::load(&p)).await {
        Ok(Ok(leases)) => {
            tracing::info!(leases = leases.len(), "identity leases loaded");
            state.set_leases(leases);
        }
        Ok(Err(e)) => tracing::error!("leases not reloaded, keeping the current ones: {e:#}"),
        Err(e) => tracing::error!(error = %e, "lease reload task failed"),
    }
}

/// Watches the policy, its lists and the lease file, and listens for SIGHUP, until `shutdown`.
/// With `enrolled` (the state dir) the policy comes from the collector: local edits are refused with
/// a log line, and changed lists are loaded under the collector's policy.
///
/// # Errors
/// The file watcher cannot be started.
pub fn spawn(
    state: Arc<State>,
    policy_path: Option<PathBuf>,
    lease_path: PathBuf,
    enrolled: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state_dir = enrolled;
    let enrolled = state_dir.is_some();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<What>();
    let lease_for_watch = lease_path.clone();
    let policy_for_watch = policy_path.clone();
    let state_for_watch = state.clone();
    let watch_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if path.file_name() == lease_for_watch.file_name()
                && path.parent() == lease_for_watch.parent()
            {
                let _ = watch_tx.send(What::Leases);
            } else if let Some(what) =
                policy_input(&state_for_watch, policy_for_watch.as_deref(), path)
            {
                let _ = watch_tx.send(what);
            }
        }
    })?;
    let mut watched = BTreeSet::new();
    if let Some(dir) = lease_path.parent() {
        std::fs::create_dir_all(dir).ok();
        watch_dir(&mut watcher, &mut watched, dir);
    }
    if let Some(p) = &policy_path {
        for dir in policy_dirs(&state, p) {
            watch_dir(&mut watcher, &mut watched, &dir);
        }
    }

    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading policy and leases");
                        let _ = tx.send(What::Policy);
                        let _ = tx.send(What::Leases);
                    }
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }

    tokio::spawn(async move {
        // A policy from the collector can name lists in folders not watched yet.
        let mut rewatch = tokio::time::interval(REWATCH);
        loop {
            let first = tokio::select! {
                w = rx.recv() => match w { Some(w) => w, None => return },
                _ = rewatch.tick() => {
                    let Some(p) = &policy_path else { continue };
                    let mut added = false;
                    for dir in policy_dirs(&state, p) {
                        added |= watch_dir(&mut watcher, &mut watched, &dir);
                    }
                    // Files there may have changed since the policy read them, unwatched.
                    if !added {
                        continue;
                    }
                    What::Lists
                }
                () = shutdown.cancelled() => return,
            };
            // Editors write files in several steps: wait for the burst to settle, then read once.
            tokio::time::sleep(SETTLE).await;
            let mut wanted = BTreeSet::from([first as u8]);
            while let Ok(w) = rx.try_recv() {
                wanted.insert(w as u8);
            }
            if wanted.contains(&(What::Leases as u8)) {
                reload_leases(&state, &lease_path).await;
            }
            let file_changed = wanted.contains(&(What::Policy as u8));
            let lists_changed = wanted.contains(&(What::Lists as u8));
            if enrolled && file_changed {
                tracing::warn!(
                    "local policy change ignored: this resolver is enrolled and takes its policy only from the collector"
                );
            }
            let Some(p) = &policy_path else { continue };
            if enrolled && lists_changed {
                // List files are the school's data, not policy: the collector's policy is rebuilt
                // over the new lists (or the bootstrap file until the collector has sent one).
                reload_enrolled_lists(&state, p, state_dir.as_deref()).await;
            } else if !enrolled && (file_changed || lists_changed) && reload_policy(&state, p).await
            {
                // Newly named lists live in folders not yet watched.
                for dir in policy_dirs(&state, p) {
                    watch_dir(&mut watcher, &mut watched, &dir);
                }
            }
        }
    });
    Ok(())
}

/// Watches `dir` unless it already is; says whether it was added.
fn watch_dir(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
    dir: &Path,
) -> bool {
    if !watched.insert(dir.to_path_buf()) {
        return false;
    }
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch for changes; SIGHUP still reloads");
    }
    true
}

/// Folders holding the policy file and every list it names.
fn policy_dirs(state: &State, policy_path: &Path) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    if let Some(d) = policy_path.parent() {
        dirs.insert(d.to_path_buf());
    }
    for source in &state.snapshot().policy.list_sources {
        if let Some(d) = source.path.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    dirs
}

/// Whether `path` is the policy file or one of the lists of the policy in force.
fn policy_input(state: &State, policy_path: Option<&Path>, path: &Path) -> Option<What> {
    let policy_path = policy_path?;
    if same_file_name(policy_path, path) {
        return Some(What::Policy);
    }
    let snapshot = state.snapshot();
    let lists = &snapshot.policy.list_sources;
    let is_list = lists.iter().any(|s| same_file_name(&s.path, path))
        || path.extension().is_some_and(|e| e == "txt")
            && lists.iter().any(|s| s.path.parent() == path.parent());
    is_list.then_some(What::Lists)
}

/// An enrolled resolver's lists changed: rebuild the policy in force (the collector's last copy in
/// `state_dir`, else the bootstrap file) over them. A failure keeps the last good policy.
async fn reload_enrolled_lists(state: &State, local: &Path, state_dir: Option<&Path>) {
    let (local, state_dir) = (local.to_path_buf(), state_dir.map(Path::to_path_buf));
    let built = tokio::task::spawn_blocking(move || match state_dir {
        Some(dir) => crate::enrolled::starting_policy(&dir, &local).map(|(p, _)| p),
        None => Policy::load(&local).map_err(anyhow::Error::from),
    })
    .await;
    match built {
        Ok(Ok(policy)) => {
            tracing::info!(
                list_entries = policy.lists.len(),
                "lists changed; policy rebuilt over them"
            );
            policy.warn_blocks_without_lists();
            state.set_policy(policy);
        }
        Ok(Err(e)) => tracing::error!("lists not reloaded, keeping the last good policy: {e:#}"),
        Err(e) => tracing::error!(error = %e, "list reload task failed"),
    }
}

fn same_file_name(a: &Path, b: &Path) -> bool {
    a.file_name() == b.file_name() && a.parent().map(canon) == b.parent().map(canon)
}

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// What changed between two policies, one line per change, for the change-control log.
pub fn diff(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    if old.tiers[old.default_tier].name != new.tiers[new.default_tier].name {
        out.push(format!(
            "default tier {} -> {}",
            old.tiers[old.default_tier].name, new.tiers[new.default_tier].name
        ));
    }
    if old.timezone_name != new.timezone_name {
        out.push(format!(
            "timezone {} -> {}",
            old.timezone_name, new.timezone_name
        ));
    }
    for t in &new.tiers {
        match old.tiers.iter().find(|o| o.name == t.name) {
            None => out.push(format!("tier {} added", t.name)),
            Some(o) => tier_diff(o, t, &mut out),
        }
    }
    for o in &old.tiers {
        if !new.tiers.iter().any(|t| t.name == o.name) {
            out.push(format!("tier {} removed", o.name));
        }
    }
    let nets = |p: &Policy| -> BTreeSet<String> {
        p.networks
            .iter()
            .map(|n| format!("{} -> {}", n.cidr, p.tiers[n.tier].name))
            .collect()
    };
    set_diff("network", &nets(old), &nets(new), &mut out);
    let lists = |p: &Policy| -> BTreeSet<String> {
        p.list_sources
            .iter()
            .map(|s| {
                format!(
                    "{} ({}, {} entries)",
                    s.path.display(),
                    s.category,
                    s.entries
                )
            })
            .collect()
    };
    set_diff("list", &lists(old), &lists(new), &mut out);
    if old.block_page != new.block_page {
        out.push(format!(
            "block page {:?} -> {:?}",
            old.block_page, new.block_page
        ));
    }
    if old.bypass != new.bypass {
        out.push(format!(
            "bypass protection {:?} -> {:?}",
            old.bypass, new.bypass
        ));
    }
    if old.alert_categories != new.alert_categories {
        out.push("alert categories changed".to_string());
    }
    out
}

fn tier_diff(old: &Tier, new: &Tier, out: &mut Vec<String>) {
    let name = &new.name;
    let cats = |t: &Tier| -> BTreeSet<String> { t.blocked.iter().map(|c| c.to_string()).collect() };
    set_diff(
        &format!("tier {name} blocked category"),
        &cats(old),
        &cats(new),
        out,
    );
    let set = |v: &[String]| -> BTreeSet<String> { v.iter().cloned().collect() };
    set_diff(
        &format!("tier {name} allow"),
        &set(&old.allow.entries),
        &set(&new.allow.entries),
        out,
    );
    set_diff(
        &format!("tier {name} deny"),
        &set(&old.deny.entries),
        &set(&new.deny.entries),
        out,
    );
    if old.schedules != new.schedules {
        out.push(format!("tier {name} schedules changed"));
    }
    if old.safe_search != new.safe_search {
        out.push(format!(
            "tier {name} safe search {} -> {}",
            old.safe_search.as_str(),
            new.safe_search.as_str()
        ));
    }
    if old.youtube != new.youtube {
        out.push(format!(
            "tier {name} youtube {} -> {}",
            old.youtube.as_str(),
            new.youtube.as_str()
        ));
    }
    if old.block_response != new.block_response {
        out.push(format!(
            "tier {name} block response {} -> {}",
            old.block_response.as_str(),
            new.block_response.as_str()
        ));
    }
}

fn set_diff(what: &str, old: &BTreeSet<String>, new: &BTreeSet<String>, out: &mut Vec<String>) {
    for added in new.difference(old) {
        out.push(format!("{what} + {added}"));
    }
    for removed in old.difference(new) {
        out.push(format!("{what} - {removed}"));
    }
}

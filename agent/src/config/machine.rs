//! Enrolment settings the Windows installer leaves for the service, and what the service does
//! with them.
//!
//! The MSI writes its properties COLLECTOR_URL, ENROL_TOKEN and COLLECTOR_CA to
//! `HKLM\SOFTWARE\Ward\Agent` (values `CollectorUrl`, `EnrolToken`, `CollectorCa`). A service that
//! starts unenrolled enrols itself with them, then deletes `EnrolToken`: the token is a secret and
//! must not outlive its use. `CollectorUrl` stays, as the collector the service ships to when it runs
//! without a configuration file (the installed service has none).
//!
//! `CollectorCa` pins the collector's CA as enrolment always does, in one of two forms a technician
//! can put on a Group Policy or `msiexec` command line: the SHA-256 fingerprint of the CA certificate
//! (as `openssl x509 -noout -fingerprint -sha256` prints it, colons optional), or the path of its PEM
//! file (a share the computer account can read, `\\server\deploy\ward-ca.pem`). With a fingerprint,
//! the agent takes the CA from the collector's own TLS handshake, keeps it only if its SHA-256 is the
//! one given, and then enrols over a connection verified against it.
//!
//! What to do with the settings is decided here without IO ([`plan`]), so it is tested on every
//! platform; only the registry access is Windows code.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Config;

/// The registry key the installer writes, under `HKEY_LOCAL_MACHINE`.
pub const KEY: &str = r"SOFTWARE\Ward\Agent";
/// The registry value names, one per MSI property.
pub const COLLECTOR_VALUE: &str = "CollectorUrl";
/// See [`COLLECTOR_VALUE`].
pub const TOKEN_VALUE: &str = "EnrolToken";
/// See [`COLLECTOR_VALUE`].
pub const CA_VALUE: &str = "CollectorCa";

/// Added to the "not enrolled" message: where else enrolment can come from on this platform.
#[cfg(windows)]
pub const HINT: &str = ", or install the MSI with COLLECTOR_URL, ENROL_TOKEN and COLLECTOR_CA";
/// Added to the "not enrolled" message: where else enrolment can come from on this platform.
#[cfg(not(windows))]
pub const HINT: &str = "";

/// The last automatic enrolment failure, in the state folder, for `ward-agent status`.
pub const ERROR_FILE: &str = "enrolment-error";

/// What `ward-agent status` says about enrolment on a device that is not enrolled: the last automatic
/// attempt's error, else what the installer's settings lack, else what to run.
pub fn status_hint(state_dir: &std::path::Path, settings: &MachineSettings) -> String {
    if let Ok(error) = std::fs::read_to_string(state_dir.join(ERROR_FILE)) {
        return format!(
            "the service's last enrolment attempt failed at {}",
            error.trim()
        );
    }
    match plan(settings) {
        Plan::Enrol(r) => format!(
            "the service enrols with the installer's settings (collector {})",
            r.collector
        ),
        Plan::Incomplete(missing) => format!(
            "the installer gave a token but not {}",
            missing.join(" or ")
        ),
        Plan::Invalid(reason) => reason,
        Plan::Nothing => "run `ward-agent enrol --collector URL --token TOKEN --ca CA`".into(),
    }
}

/// Shortest and longest wait between automatic enrolment attempts that failed.
const RETRY_MIN: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(600);

/// The installer's settings as read; empty values count as absent.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct MachineSettings {
    /// `CollectorUrl`.
    pub collector: Option<String>,
    /// `EnrolToken`.
    pub token: Option<String>,
    /// `CollectorCa`.
    pub ca: Option<String>,
}

impl std::fmt::Debug for MachineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in logs.
        f.debug_struct("MachineSettings")
            .field("collector", &self.collector)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("ca", &self.ca)
            .finish()
    }
}

impl MachineSettings {
    /// Builds the settings from a lookup of value names (the registry, or a test's map).
    pub fn from_values(get: impl Fn(&str) -> Option<String>) -> MachineSettings {
        let value = |name| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        MachineSettings {
            collector: value(COLLECTOR_VALUE),
            token: value(TOKEN_VALUE),
            ca: value(CA_VALUE),
        }
    }
}

/// How the collector's CA is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaPin {
    /// The SHA-256 of the CA certificate's DER.
    Sha256([u8; 32]),
    /// A PEM file holding the CA certificate.
    Pem(PathBuf),
}

impl CaPin {
    /// Reads a `--ca` or `CollectorCa` value: 64 hex digits (colons, spaces, a `sha256:` or
    /// `SHA256 Fingerprint=` prefix allowed) are a fingerprint; anything else is a PEM file's path.
    pub fn parse(text: &str) -> CaPin {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let digits = ["sha256 fingerprint=", "sha256:", "sha256="]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let hex: String = digits
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect();
        let mut sha = [0u8; 32];
        if hex.len() == 64 && hex::decode_to_slice(&hex, &mut sha).is_ok() {
            return CaPin::Sha256(sha);
        }
        CaPin::Pem(PathBuf::from(text))
    }
}

/// One enrolment the service should attempt.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolRequest {
    /// The collector's URL.
    pub collector: String,
    /// The enrolment token.
    pub token: String,
    /// The CA to pin.
    pub ca: CaPin,
}

impl std::fmt::Debug for EnrolRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolRequest")
            .field("collector", &self.collector)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

/// What the service does with the installer's settings while it is not enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No token: nothing to enrol with (not installed with one, or already used and deleted).
    Nothing,
    /// A token without everything else it needs; names the missing MSI properties.
    Incomplete(Vec<&'static str>),
    /// A setting that cannot work, and why.
    Invalid(String),
    /// Enrol with these.
    Enrol(EnrolRequest),
}

/// Decides what to do with `settings`.
pub fn plan(settings: &MachineSettings) -> Plan {
    let Some(token) = &settings.token else {
        return Plan::Nothing;
    };
    let mut missing = Vec::new();
    if settings.collector.is_none() {
        missing.push("COLLECTOR_URL");
    }
    if settings.ca.is_none() {
        missing.push("COLLECTOR_CA");
    }
    if !missing.is_empty() {
        return Plan::Incomplete(missing);
    }
    let collector = settings.collector.clone().unwrap_or_default();
    if !collector.starts_with("https://") || collector.len() <= "https://".len() {
        return Plan::Invalid(format!(
            "COLLECTOR_URL {collector:?} is not an https:// URL"
        ));
    }
    Plan::Enrol(EnrolRequest {
        collector,
        token: token.clone(),
        ca: CaPin::parse(settings.ca.as_deref().unwrap_or_default()),
    })
}

/// The wait after `failures` failed attempts in a row: doubling from 10 s to 10 minutes; a token the
/// collector refused waits the longest, as it will be refused again until someone acts.
pub fn retry_delay(failures: u32, refused: bool) -> Duration {
    if refused {
        return RETRY_MAX;
    }
    RETRY_MIN
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(RETRY_MAX)
}

/// The installer's settings on this machine (none outside Windows).
pub fn read() -> MachineSettings {
    #[cfg(windows)]
    return registry::read(registry::LOCAL_MACHINE, KEY);
    #[cfg(not(windows))]
    MachineSettings::default()
}

/// Removes the enrolment token from the installer's settings, if it is there.
fn delete_token() {
    #[cfg(windows)]
    match registry::delete(registry::LOCAL_MACHINE, KEY, TOKEN_VALUE) {
        Ok(true) => tracing::info!("enrolment token removed from HKLM\\{KEY}"),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "cannot remove the enrolment token from HKLM\\{KEY}"),
    }
}

/// Makes the installer's settings (with the token) readable by SYSTEM and Administrators only.
fn lock_settings() {
    #[cfg(windows)]
    if let Err(e) = registry::restrict(registry::LOCAL_MACHINE, KEY, registry::ADMINS_ONLY) {
        tracing::error!(error = %e, "cannot make HKLM\\{KEY} unreadable to users");
    }
}

/// The collector the installer set, for a service started without a configuration file.
pub fn installed_collector() -> Option<String> {
    read().collector
}

/// Where the collector a device enrolled with is remembered, in the state folder.
pub const COLLECTOR_FILE: &str = "collector-url";

/// Remembers the collector this device enrolled with (best effort: the enrolment itself stands).
pub fn remember_collector(state_dir: &std::path::Path, url: &str) {
    if let Err(e) = std::fs::write(state_dir.join(COLLECTOR_FILE), format!("{url}\n")) {
        tracing::warn!(error = %e, "cannot record the collector's address in the state folder");
    }
}

/// The collector this device enrolled with, if recorded.
pub fn enrolled_collector(state_dir: &std::path::Path) -> Option<String> {
    let url = std::fs::read_to_string(state_dir.join(COLLECTOR_FILE)).ok()?;
    let url = url.trim();
    url.starts_with("https://").then(|| url.to_string())
}

/// The service's automatic enrolment from the installer's settings, attempted while it waits.
#[derive(Debug)]
pub struct AutoEnrolment {
    enabled: bool,
    /// Whether the settings key has been made unreadable to users.
    locked: bool,
    /// The settings of the last failed attempt, how many failed in a row, and when to try again.
    failed: Option<(MachineSettings, u32, Instant)>,
    /// The last plan logged, so a waiting service says each thing once.
    reported: Option<Plan>,
}

impl AutoEnrolment {
    /// Enabled for the Windows service (not for the per-session helper, nor on other platforms).
    pub fn new(service: bool) -> AutoEnrolment {
        AutoEnrolment {
            enabled: service && cfg!(windows),
            locked: false,
            failed: None,
            reported: None,
        }
    }

    /// Enrols with the installer's settings if they ask for it and the last failure's wait is over.
    /// Failures are logged (without the token) and retried later; changed settings retry at once.
    pub async fn try_enrol(&mut self, config: &Config) {
        if !self.enabled {
            return;
        }
        if !self.locked {
            self.locked = true;
            lock_settings();
        }
        if ward_collector_client::Identity::exists(&config.state_dir) {
            // Enrolled already (a reinstall with a token): the token is deleted, never used again.
            return;
        }
        let settings = read();
        if let Some((last, _, at)) = &self.failed {
            if *last == settings && Instant::now() < *at {
                return;
            }
        }
        let plan = plan(&settings);
        let request = match &plan {
            Plan::Enrol(request) => request.clone(),
            other => {
                if self.reported.as_ref() != Some(other) {
                    match other {
                        Plan::Incomplete(missing) => tracing::error!(
                            missing = missing.join(", "),
                            "the installer gave an enrolment token but not everything needed to enrol"
                        ),
                        Plan::Invalid(reason) => tracing::error!(%reason, "cannot enrol"),
                        _ => {}
                    }
                    self.reported = Some(other.clone());
                }
                return;
            }
        };
        tracing::info!(collector = %request.collector, ca = ?request.ca, "enrolling with the installer's settings");
        match crate::commands::enrol_with(&config.state_dir, &request).await {
            Ok(identity) => {
                tracing::info!(device = %identity.device_id, "enrolled");
                let _ = std::fs::remove_file(config.state_dir.join(ERROR_FILE));
                self.failed = None;
            }
            Err(e) => {
                let refused = e
                    .downcast_ref::<ward_collector_client::ClientError>()
                    .is_some_and(|c| !c.is_retryable());
                let failures = match &self.failed {
                    Some((last, n, _)) if *last == settings => n + 1,
                    _ => 1,
                };
                let wait = retry_delay(failures, refused);
                tracing::error!(
                    error = format!("{e:#}"),
                    retry_in_seconds = wait.as_secs(),
                    "enrolment failed"
                );
                // A service's log is hard to find on Windows: `status` shows this file.
                let _ = std::fs::create_dir_all(&config.state_dir).and_then(|()| {
                    std::fs::write(
                        config.state_dir.join(ERROR_FILE),
                        format!("{}: {e:#}", jiff::Timestamp::now()),
                    )
                });
                self.failed = Some((settings, failures, Instant::now() + wait));
            }
        }
    }

    /// Once enrolled, the token has no further use: the service deletes it.
    pub fn forget_token(&self) {
        if self.enabled && read().token.is_some() {
            delete_token();
        }
    }
}

/// The registry, read and written through the Win32 API.
#[cfg(windows)]
pub mod registry {
    use windows::core::{HSTRING, PWSTR};
    use windows::Win32::Foundation::{
        LocalFree, ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_SUCCESS, HLOCAL, WIN32_ERROR,
    };
    use windows::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW,
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows::Win32::Security::{
        DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    };
    use windows::Win32::System::Registry::{
        RegCloseKey, RegDeleteKeyValueW, RegGetKeySecurity, RegGetValueW, RegOpenKeyExW,
        RegSetKeySecurity, HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, REG_SAM_FLAGS,
        RRF_RT_REG_SZ,
    };

    use super::MachineSettings;

    /// `HKEY_LOCAL_MACHINE`, where the installer writes.
    pub const LOCAL_MACHINE: HKEY = HKEY_LOCAL_MACHINE;
    /// `HKEY_CURRENT_USER`, for tests that need no administrator.
    pub const CURRENT_USER: HKEY = HKEY_CURRENT_USER;

    /// The string value `name` of `root\key`; `None` when the key or value is missing or unreadable.
    pub fn string(root: HKEY, key: &str, name: &str) -> Option<String> {
        let (key, name) = (HSTRING::from(key), HSTRING::from(name));
        let mut buf = vec![0u16; 256];
        loop {
            let mut bytes = (buf.len() * 2) as u32;
            // SAFETY: the buffer and its size in bytes are passed together and outlive the call.
            let status = unsafe {
                RegGetValueW(
                    root,
                    &key,
                    &name,
                    RRF_RT_REG_SZ,
                    None,
                    Some(buf.as_mut_ptr().cast()),
                    Some(&mut bytes),
                )
            };
            if status == ERROR_MORE_DATA {
                buf.resize((bytes as usize).div_ceil(2) + 1, 0);
                continue;
            }
            if status != ERROR_SUCCESS {
                return None;
            }
            let chars = (bytes as usize / 2).min(buf.len());
            let text = &buf[..chars];
            let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
            return Some(String::from_utf16_lossy(&text[..end]));
        }
    }

    /// SYSTEM and Administrators only, nothing inherited: `SOFTWARE` lets every user read its keys,
    /// and a pupil must not read an enrolment token the service has not used yet.
    pub const ADMINS_ONLY: &str = "D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)";
    const WRITE_DAC: u32 = 0x0004_0000;
    const READ_CONTROL: u32 = 0x0002_0000;

    /// Opens `root\key` with `access`; closes it when dropped.
    struct Key(HKEY);

    impl Key {
        fn open(root: HKEY, key: &str, access: u32) -> Result<Key, WIN32_ERROR> {
            let mut handle = HKEY::default();
            // SAFETY: the out pointer is ours; the handle is closed by Drop.
            let status = unsafe {
                RegOpenKeyExW(
                    root,
                    &HSTRING::from(key),
                    None,
                    REG_SAM_FLAGS(access),
                    &mut handle,
                )
            };
            if status == ERROR_SUCCESS {
                Ok(Key(handle))
            } else {
                Err(status)
            }
        }
    }

    impl Drop for Key {
        fn drop(&mut self) {
            // SAFETY: a handle RegOpenKeyExW gave us, closed once.
            let _ = unsafe { RegCloseKey(self.0) };
        }
    }

    /// Replaces the access list of `root\key` with `sddl`'s (not inherited). `Ok(false)` when the
    /// key does not exist.
    ///
    /// # Errors
    /// The access list cannot be set (no right to).
    pub fn restrict(root: HKEY, key: &str, sddl: &str) -> Result<bool, windows::core::Error> {
        let key = match Key::open(root, key, WRITE_DAC) {
            Ok(key) => key,
            Err(status) if status == ERROR_FILE_NOT_FOUND => return Ok(false),
            Err(status) => return Err(status.into()),
        };
        let mut descriptor = PSECURITY_DESCRIPTOR::default();
        // SAFETY: the descriptor is allocated by the call and freed below.
        unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                &HSTRING::from(sddl),
                SDDL_REVISION_1,
                &mut descriptor,
                None,
            )?;
        }
        // SAFETY: a valid key handle and descriptor.
        let status = unsafe {
            RegSetKeySecurity(
                key.0,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                descriptor,
            )
        };
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW with LocalAlloc.
        unsafe { LocalFree(Some(HLOCAL(descriptor.0))) };
        if status == ERROR_SUCCESS {
            Ok(true)
        } else {
            Err(status.into())
        }
    }

    /// The access list of `root\key` as SDDL, if it can be read.
    pub fn access_list(root: HKEY, key: &str) -> Option<String> {
        let key = Key::open(root, key, READ_CONTROL).ok()?;
        let mut size = 0u32;
        // SAFETY: a size query, then a read into a buffer of that size.
        unsafe {
            let _ = RegGetKeySecurity(key.0, DACL_SECURITY_INFORMATION, None, &mut size);
            let mut buf = vec![0u8; size as usize];
            let descriptor = PSECURITY_DESCRIPTOR(buf.as_mut_ptr().cast());
            if RegGetKeySecurity(
                key.0,
                DACL_SECURITY_INFORMATION,
                Some(descriptor),
                &mut size,
            ) != ERROR_SUCCESS
            {
                return None;
            }
            let mut text = PWSTR::null();
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                descriptor,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                None,
            )
            .ok()?;
            let sddl = text.to_string().ok();
            LocalFree(Some(HLOCAL(text.0.cast())));
            sddl
        }
    }

    /// The installer's settings under `root\key`.
    pub fn read(root: HKEY, key: &str) -> MachineSettings {
        MachineSettings::from_values(|name| string(root, key, name))
    }

    /// Deletes value `name` of `root\key`: `Ok(true)` when it was there.
    ///
    /// # Errors
    /// The value exists but could not be deleted (no right to).
    pub fn delete(root: HKEY, key: &str, name: &str) -> Result<bool, windows::core::Error> {
        // SAFETY: plain Win32 call on owned strings.
        let status = unsafe { RegDeleteKeyValueW(root, &HSTRING::from(key), &HSTRING::from(name)) };
        if status == ERROR_SUCCESS {
            Ok(true)
        } else if status == ERROR_FILE_NOT_FOUND {
            Ok(false)
        } else {
            Err(status.into())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Sets a value the way a technician or the installer would: with Windows' own `reg.exe`
        /// (Wine ships one).
        fn reg_add(key: &str, name: &str, value: &str) {
            let status = std::process::Command::new("reg")
                .args(["add", &format!("HKCU\\{key}"), "/v", name, "/t", "REG_SZ"])
                .args(["/d", value, "/f"])
                .status()
                .expect("reg.exe runs");
            assert!(status.success(), "reg add {name}");
        }

        #[test]
        fn settings_written_by_reg_are_read_and_the_token_deleted() {
            let key = format!(r"Software\Ward\AgentTest{}", std::process::id());
            assert_eq!(read(CURRENT_USER, &key), MachineSettings::default());
            reg_add(&key, "CollectorUrl", "https://ward.school.example:8443");
            reg_add(&key, "EnrolToken", "token-under-test");
            let fingerprint = "AB:".repeat(31) + "AB";
            reg_add(&key, "CollectorCa", &fingerprint);
            let settings = read(CURRENT_USER, &key);
            assert_eq!(
                settings.collector.as_deref(),
                Some("https://ward.school.example:8443")
            );
            assert_eq!(settings.token.as_deref(), Some("token-under-test"));
            match super::super::plan(&settings) {
                super::super::Plan::Enrol(r) => {
                    assert_eq!(r.ca, super::super::CaPin::Sha256([0xab; 32]))
                }
                other => panic!("{other:?}"),
            }
            // A long value needs a second read with a bigger buffer.
            let long = "x".repeat(1000);
            reg_add(&key, "CollectorCa", &long);
            assert_eq!(read(CURRENT_USER, &key).ca.as_deref(), Some(&*long));

            // Only SYSTEM and Administrators may read the token once the service has locked the key.
            assert!(restrict(CURRENT_USER, &key, ADMINS_ONLY).unwrap());
            let acl = access_list(CURRENT_USER, &key).expect("readable access list");
            assert!(acl.starts_with("D:P"), "{acl}");
            assert!(acl.contains(";;;SY)") && acl.contains(";;;BA)"), "{acl}");
            assert!(!acl.contains(";;;BU)") && !acl.contains(";;;WD)"), "{acl}");
            assert_eq!(
                read(CURRENT_USER, &key).token.as_deref(),
                Some("token-under-test")
            );
            assert!(!restrict(CURRENT_USER, r"Software\Ward\NoSuchKey", ADMINS_ONLY).unwrap());

            assert!(delete(CURRENT_USER, &key, "EnrolToken").unwrap());
            assert!(!delete(CURRENT_USER, &key, "EnrolToken").unwrap());
            let after = read(CURRENT_USER, &key);
            assert_eq!(after.token, None);
            assert!(after.collector.is_some());
            let _ = std::process::Command::new("reg")
                .args(["delete", &format!("HKCU\\{key}"), "/f"])
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(collector: &str, token: &str, ca: &str) -> MachineSettings {
        let values = [
            (COLLECTOR_VALUE, collector),
            (TOKEN_VALUE, token),
            (CA_VALUE, ca),
        ];
        MachineSettings::from_values(|name| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    const FP: &str = "5E:0B:9C:3A:44:1F:27:8D:90:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67";

    #[test]
    fn fingerprints_in_the_forms_tools_print_them() {
        let want = CaPin::parse(&FP.replace(':', ""));
        assert!(matches!(want, CaPin::Sha256(s) if s[0] == 0x5e && s[31] == 0x67));
        for form in [
            FP.to_string(),
            FP.to_lowercase(),
            format!("sha256:{}", FP.replace(':', "")),
            format!("SHA256 Fingerprint={FP}"),
            format!("  {}  ", FP.replace(':', " ")),
        ] {
            assert_eq!(CaPin::parse(&form), want, "{form}");
        }
    }

    #[test]
    fn anything_else_is_a_pem_path() {
        for path in [
            r"\\server\deploy\ward-ca.pem",
            r"C:\ProgramData\Ward\ca.pem",
            "/var/lib/ward/collector/ca.pem",
            &FP[..FP.len() - 3], // a digit short: not a fingerprint
            &FP.replace("5E", "5G"),
        ] {
            assert_eq!(
                CaPin::parse(path),
                CaPin::Pem(PathBuf::from(path)),
                "{path}"
            );
        }
    }

    #[test]
    fn a_complete_set_enrols() {
        let s = settings("https://ward.school.example:8443", "tok", FP);
        assert_eq!(
            plan(&s),
            Plan::Enrol(EnrolRequest {
                collector: "https://ward.school.example:8443".into(),
                token: "tok".into(),
                ca: CaPin::parse(FP),
            })
        );
        let s = settings(" https://c:8443 ", " tok ", r" \\srv\ca.pem ");
        assert!(
            matches!(plan(&s), Plan::Enrol(r) if r.token == "tok" && r.ca == CaPin::Pem(r"\\srv\ca.pem".into()))
        );
    }

    #[test]
    fn no_token_means_nothing_to_do() {
        // After enrolment the token is deleted; an upgrade without properties writes empty values.
        assert_eq!(plan(&settings("https://c:8443", "", FP)), Plan::Nothing);
        assert_eq!(plan(&MachineSettings::default()), Plan::Nothing);
    }

    #[test]
    fn a_token_without_collector_or_ca_names_what_is_missing() {
        assert_eq!(
            plan(&settings("", "tok", "")),
            Plan::Incomplete(vec!["COLLECTOR_URL", "COLLECTOR_CA"])
        );
        assert_eq!(
            plan(&settings("https://c", "tok", "  ")),
            Plan::Incomplete(vec!["COLLECTOR_CA"])
        );
        assert!(matches!(
            plan(&settings("http://c:8443", "tok", FP)),
            Plan::Invalid(r) if r.contains("https://")
        ));
    }

    #[test]
    fn status_says_what_enrolment_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let hint = |s: &MachineSettings| status_hint(dir.path(), s);
        assert!(hint(&MachineSettings::default()).contains("ward-agent enrol --collector"));
        assert!(hint(&settings("", "tok", FP)).contains("COLLECTOR_URL"));
        assert!(hint(&settings("https://c:8443", "tok", FP)).contains("https://c:8443"));
        std::fs::write(
            dir.path().join(ERROR_FILE),
            "2026-11-24T08:00:00Z: refused\n",
        )
        .unwrap();
        let failed = hint(&settings("https://c:8443", "tok", FP));
        assert!(
            failed.contains("failed at 2026-11-24T08:00:00Z: refused"),
            "{failed}"
        );
    }

    #[test]
    fn failed_attempts_back_off_to_ten_minutes() {
        assert_eq!(retry_delay(1, false), Duration::from_secs(10));
        assert_eq!(retry_delay(2, false), Duration::from_secs(20));
        assert_eq!(retry_delay(4, false), Duration::from_secs(80));
        assert_eq!(retry_delay(40, false), Duration::from_secs(600));
        assert_eq!(retry_delay(1, true), Duration::from_secs(600));
    }

    #[test]
    fn the_token_never_reaches_a_log() {
        let s = settings("https://c", "secret-token", FP);
        assert!(!format!("{s:?}").contains("secret-token"));
        assert!(!format!("{:?}", plan(&s)).contains("secret-token"));
    }
}

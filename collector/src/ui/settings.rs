//! The review UI's settings: who must use a second factor, whether policy changes need a second
//! person, and where urgent notifications and digests go. Built by the collector from its config file
//! (`[ui]` section); the defaults are the safe choice.

use super::roles::{Role, Viewer};

/// Where and how notifications are sent.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    /// SMTP relay `host:port` (plain SMTP on a trusted relay; the message carries only a link).
    pub smtp_relay: Option<String>,
    /// Envelope and header sender.
    pub smtp_from: String,
    /// Who gets severity-5 notices (the DSL and deputies).
    pub urgent_to: Vec<String>,
    /// Who gets the weekly digest (governors).
    pub digest_to: Vec<String>,
    /// A URL that gets a JSON POST for each severity-5 alert (id and link only).
    pub webhook: Option<String>,
}

/// Settings of the review UI.
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// Roles that must enrol and use TOTP.
    pub totp_roles: Vec<Role>,
    /// A policy change needs a second person's approval before it reaches resolvers.
    pub policy_approval: bool,
    /// The address staff reach the UI at, for links in notifications, e.g. `https://ward.school.example`.
    pub public_url: String,
    /// Host names that are the collector itself (anything else arriving here is a blocked name).
    pub own_hostnames: Vec<String>,
    /// Notifications.
    pub notifications: Notifications,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            totp_roles: vec![Role::Admin, Role::Dsl],
            policy_approval: false,
            public_url: "https://127.0.0.1:8443".into(),
            own_hostnames: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            notifications: Notifications::default(),
        }
    }
}

impl UiSettings {
    /// Whether this viewer must have TOTP enrolled.
    pub fn totp_required(&self, viewer: &Viewer) -> bool {
        viewer.roles.iter().any(|r| self.totp_roles.contains(r))
    }

    /// Whether a request for `host` (the Host header without port) is for the collector itself.
    pub fn is_own_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.own_hostnames
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The `[ui]` section of `collector.toml` as serde reads it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUi {
    /// Plain-HTTP block page address (default `127.0.0.1:8080`; `none` to turn it off).
    pub block_page_listen: Option<String>,
    /// The address staff use to reach the UI, for links in notifications.
    pub public_url: Option<String>,
    /// Roles that must use TOTP (default admin and dsl).
    pub totp_roles: Option<Vec<String>>,
    /// Policy changes need a second administrator.
    #[serde(default)]
    pub policy_approval: bool,
    /// SMTP relay `host:port`.
    pub smtp_relay: Option<String>,
    /// Sender address.
    pub smtp_from: Option<String>,
    /// Who gets severity-5 notices.
    #[serde(default)]
    pub urgent_to: Vec<String>,
    /// Who gets the weekly digest.
    #[serde(default)]
    pub digest_to: Vec<String>,
    /// `http://` URL posted for each severity-5 alert.
    pub webhook: Option<String>,
    /// The school's CA certificate (PEM), to mint block-page certificates for blocked names.
    pub block_page_ca_cert: Option<std::path::PathBuf>,
    /// That CA's private key (PEM).
    pub block_page_ca_key: Option<std::path::PathBuf>,
}

/// The validated `[ui]` section: the settings, and where to serve the plain-HTTP block page.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// Settings handed to the UI.
    pub settings: UiSettings,
    /// Plain-HTTP block page address, if any.
    pub block_page_listen: Option<std::net::SocketAddr>,
    /// The school CA (certificate, key) that signs block-page certificates, if any.
    pub block_page_ca: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            settings: UiSettings::default(),
            block_page_listen: Some(([127, 0, 0, 1], 8080).into()),
            block_page_ca: None,
        }
    }
}

impl RawUi {
    /// Validates the section; `hostnames` are the collector's configured names.
    ///
    /// # Errors
    /// A bad address, role or URL, as `(key, reason)`.
    pub fn build(
        self,
        hostnames: &[String],
        listen: std::net::SocketAddr,
        config_path: &std::path::Path,
    ) -> Result<UiConfig, (String, String)> {
        let RawUi {
            block_page_listen,
            public_url,
            totp_roles,
            policy_approval,
            smtp_relay,
            smtp_from,
            urgent_to,
            digest_to,
            webhook,
            block_page_ca_cert,
            block_page_ca_key,
        } = self;
        let relative = |p: &std::path::Path| ward_service::config::relative_to(config_path, p);
        let block_page_ca = match (block_page_ca_cert, block_page_ca_key) {
            (Some(cert), Some(key)) => Some((relative(&cert), relative(&key))),
            (None, None) => None,
            _ => {
                return Err((
                    "ui.block_page_ca_cert".into(),
                    "block_page_ca_cert and block_page_ca_key go together".into(),
                ))
            }
        };
        let defaults = UiConfig::default();
        let block_page_listen = match block_page_listen.as_deref() {
            None => defaults.block_page_listen,
            Some("none") => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                (
                    "ui.block_page_listen".to_string(),
                    format!("`{addr}` is not an address:port"),
                )
            })?),
        };
        let totp_roles = match totp_roles {
            None => defaults.settings.totp_roles,
            Some(list) => list
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<_, _>>()
                .map_err(|e| ("ui.totp_roles".to_string(), e))?,
        };
        if let Some(url) = &webhook {
            if !url.starts_with("http://") {
                return Err((
                    "ui.webhook".into(),
                    "must be an http:// URL (a local relay)".into(),
                ));
            }
        }
        let mut own_hostnames = defaults.settings.own_hostnames;
        own_hostnames.extend(hostnames.iter().map(|h| h.to_ascii_lowercase()));
        own_hostnames.push(listen.ip().to_string());
        if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            own_hostnames.push(host.trim().to_ascii_lowercase());
        }
        let public_url = public_url.unwrap_or_else(|| match hostnames.first() {
            Some(h) => format!("https://{h}:{}", listen.port()),
            None => format!("https://{listen}"),
        });
        Ok(UiConfig {
            settings: UiSettings {
                totp_roles,
                policy_approval,
                public_url,
                own_hostnames,
                notifications: Notifications {
                    smtp_relay,
                    smtp_from: smtp_from.unwrap_or_else(|| "ward@localhost".into()),
                    urgent_to,
                    digest_to,
                    webhook,
                },
            },
            block_page_listen,
            block_page_ca,
        })
    }
}

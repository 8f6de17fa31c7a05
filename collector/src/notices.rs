//! Disclosure: which users were told, at logon, that they are monitored, and when last.
//!
//! Monitoring must never be covert, so the agent shows the school's notice at each logon and every
//! heartbeat names the session's user with the time the notice was shown (and the SHA-256 of its
//! text). The store keeps one row per user and device (`disclosures`); this module turns the rows
//! into one summary per user for the CLI (`ward-collector notices`) and the review UI
//! (`/notices`). A user seen in a monitored session who was never shown the notice is flagged:
//! that is a device where the notice is switched off, or fails, and monitoring is not disclosed.

use crate::store::{DeviceRecord, DisclosureRecord, Micros};

/// One user's disclosure across every device they were seen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNotice {
    /// The user.
    pub user: String,
    /// First heartbeat that named them, on any device.
    pub first_seen: Micros,
    /// Latest heartbeat that named them.
    pub last_seen: Micros,
    /// Latest showing of the notice, on any device; `None`: never shown.
    pub last_shown: Option<Micros>,
    /// Hex SHA-256 of the text shown then.
    pub notice_sha256: Option<String>,
    /// Per device, in device order.
    pub devices: Vec<DeviceNotice>,
}

impl UserNotice {
    /// Seen in a monitored session but never shown the notice, on any device.
    pub fn never_shown(&self) -> bool {
        self.last_shown.is_none()
    }

    /// Devices where the user was seen but never shown the notice (the notice is off or failing
    /// there, even if the user saw it elsewhere).
    pub fn unshown_devices(&self) -> impl Iterator<Item = &DeviceNotice> {
        self.devices.iter().filter(|d| d.shown.is_none())
    }
}

/// One user's disclosure on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNotice {
    /// Device id.
    pub device: String,
    /// Its host name, when the device is still enrolled.
    pub hostname: Option<String>,
    /// Latest heartbeat that named the user on it.
    pub last_seen: Micros,
    /// Latest showing of the notice on it.
    pub shown: Option<Micros>,
    /// Hex SHA-256 of the text shown then.
    pub notice_sha256: Option<String>,
}

/// Groups disclosure rows (ordered by user, then device, as the store returns them) per user; users
/// never shown the notice come first, then by name.
pub fn by_user(rows: Vec<DisclosureRecord>, devices: &[DeviceRecord]) -> Vec<UserNotice> {
    let mut users: Vec<UserNotice> = Vec::new();
    for row in rows {
        let device = DeviceNotice {
            hostname: devices
                .iter()
                .find(|d| d.id == row.device)
                .map(|d| d.hostname.clone()),
            device: row.device,
            last_seen: row.last_seen,
            shown: row.shown,
            notice_sha256: row.notice_sha256.clone(),
        };
        let user = match users.last_mut() {
            Some(u) if u.user == row.user => u,
            _ => {
                users.push(UserNotice {
                    user: row.user,
                    first_seen: row.first_seen,
                    last_seen: row.last_seen,
                    last_shown: None,
                    notice_sha256: None,
                    devices: Vec::new(),
                });
                users.last_mut().expect("just pushed")
            }
        };
        user.first_seen = user.first_seen.min(row.first_seen);
        user.last_seen = user.last_seen.max(row.last_seen);
        if let Some(shown) = row.shown {
            if user.last_shown.is_none_or(|t| t < shown) {
                user.last_shown = Some(shown);
                user.notice_sha256 = row.notice_sha256;
            }
        }
        user.devices.push(device);
    }
    users.sort_by(|a, b| (!a.never_shown(), &a.user).cmp(&(!b.never_shown(), &b.user)));
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, device: &str, seen: Micros, shown: Option<Micros>) -> DisclosureRecord {
        DisclosureRecord {
            user: user.into(),
            device: device.into(),
            first_seen: seen,
            last_seen: seen + 10,
            shown,
            notice_sha256: shown.map(|t| format!("{t:064}")),
        }
    }

    #[test]
    fn users_are_summarised_across_devices_and_the_never_shown_come_first() {
        let rows = vec![
            row("alex", "d1", 100, Some(150)),
            row("alex", "d2", 50, Some(300)),
            row("alex", "d3", 400, None),
            row("bo", "d1", 200, None),
            row("cy", "d2", 10, Some(20)),
        ];
        let users = by_user(rows, &[]);
        let names: Vec<&str> = users.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(names, ["bo", "alex", "cy"]);
        assert!(users[0].never_shown());
        let alex = &users[1];
        assert_eq!(
            (alex.first_seen, alex.last_seen, alex.last_shown),
            (50, 410, Some(300))
        );
        assert_eq!(alex.notice_sha256, Some(format!("{:064}", 300)));
        let unshown: Vec<&str> = alex.unshown_devices().map(|d| d.device.as_str()).collect();
        assert_eq!(unshown, ["d3"]);
        assert!(!users[2].never_shown());
    }
}

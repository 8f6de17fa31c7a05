//! Who may see what. Roles combine (an IT technician doing the daily check is admin + reviewer), and
//! every route asks these functions before it reads anything, so a URL typed by hand gets no further
//! than a link would.
//!
//! - admin: devices, policy, users, audit log; no alert content (device alerts only).
//! - dsl: every pupil alert.
//! - reviewer: pupil alerts of the groups assigned to them.
//! - head: the only role that sees alerts about staff.
//! - governor: aggregate reports only; never a name, an alert or a screenshot.

use std::fmt;
use std::str::FromStr;

/// One role an account can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// IT: devices, policy, users.
    Admin,
    /// Designated Safeguarding Lead: all pupil alerts.
    Dsl,
    /// Pupil alerts of assigned groups.
    Reviewer,
    /// Headteacher or designated senior person: alerts about staff.
    Head,
    /// Aggregate reports only.
    Governor,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Dsl,
        Role::Reviewer,
        Role::Head,
        Role::Governor,
    ];

    /// The name used in the CLI, the store and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dsl => "dsl",
            Role::Reviewer => "reviewer",
            Role::Head => "head",
            Role::Governor => "governor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown role `{s}` (admin, dsl, reviewer, head, governor)"))
    }
}

/// The signed-in person as the permission checks see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Account name.
    pub name: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// Pupil groups a reviewer is assigned.
    pub groups: Vec<String>,
}

/// Groups whose members count as staff (their alerts go to the head only).
pub const STAFF_GROUPS: &[&str] = &["staff"];

/// Whether a person in `group` is a member of staff.
pub fn is_staff_group(group: Option<&str>) -> bool {
    group.is_some_and(|g| STAFF_GROUPS.contains(&g))
}

impl Viewer {
    /// Whether the viewer holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the viewer works alerts at all (sees the queue).
    pub fn sees_alerts(&self) -> bool {
        self.has(Role::Dsl)
            || self.has(Role::Reviewer)
            || self.has(Role::Head)
            || self.has(Role::Admin)
    }

    /// Whether the viewer may see one alert about a person in `group` (None: unknown) from `source`.
    pub fn may_see_alert(&self, group: Option<&str>, source: &str) -> bool {
        if source == "device" {
            // Device alerts (silent or tampered agent) name no pupil content; IT needs them.
            return self.has(Role::Admin) || self.has(Role::Dsl);
        }
        if is_staff_group(group) {
            return self.has(Role::Head);
        }
        if self.has(Role::Dsl) {
            return true;
        }
        self.has(Role::Reviewer) && group.is_some_and(|g| self.groups.iter().any(|mine| mine == g))
    }

    /// Which alert subjects the queue may list for this viewer, as a filter the store applies.
    pub fn alert_scope(&self) -> AlertScope {
        AlertScope {
            pupils_all: self.has(Role::Dsl),
            pupil_groups: if self.has(Role::Reviewer) {
                self.groups.clone()
            } else {
                Vec::new()
            },
            staff: self.has(Role::Head),
            device: self.has(Role::Admin) || self.has(Role::Dsl),
        }
    }

    /// Device, policy and user pages.
    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// The audit log: DSL and admins.
    pub fn sees_audit(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Dsl)
    }

    /// Aggregate reports: everyone but a bare reviewer sees them.
    pub fn sees_reports(&self) -> bool {
        self.has(Role::Governor)
            || self.has(Role::Admin)
            || self.has(Role::Dsl)
            || self.has(Role::Head)
    }

    /// CSV export of alerts (names and phrases): roles that see pupil alerts.
    pub fn may_export(&self) -> bool {
        self.has(Role::Dsl) || self.has(Role::Head)
    }
}

/// The set of alerts a viewer may list; the store turns it into a WHERE clause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertScope {
    /// Every non-staff person alert.
    pub pupils_all: bool,
    /// Non-staff alerts of these groups.
    pub pupil_groups: Vec<String>,
    /// Alerts about staff.
    pub staff: bool,
    /// Device alerts.
    pub device: bool,
}

impl AlertScope {
    /// Whether the scope admits one alert (the same rule as [`Viewer::may_see_alert`]).
    pub fn admits(&self, group: Option<&str>, source: &str) -> bool {
        if source == "device" {
            return self.device;
        }
        if is_staff_group(group) {
            return self.staff;
        }
        self.pupils_all || group.is_some_and(|g| self.pupil_groups.iter().any(|x| x == g))
    }
}

/// Parses a comma-separated role list (`admin,reviewer`).
///
/// # Errors
/// An unknown role name.
pub fn parse_roles(list: &str) -> Result<Vec<Role>, String> {
    let mut roles: Vec<Role> = list
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(roles: &str, groups: &[&str]) -> Viewer {
        Viewer {
            name: "x".into(),
            roles: parse_roles(roles).unwrap(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn who_sees_which_alert() {
        let cases = [
            // (roles, groups, subject group, source, expected)
            ("dsl", &[][..], Some("pupil"), "keyboard", true),
            ("dsl", &[], None, "keyboard", true),
            ("dsl", &[], Some("staff"), "keyboard", false),
            ("head", &[], Some("staff"), "keyboard", true),
            ("head", &[], Some("pupil"), "keyboard", false),
            ("reviewer", &["7a"], Some("7a"), "keyboard", true),
            ("reviewer", &["7a"], Some("8b"), "keyboard", false),
            ("reviewer", &["7a"], None, "keyboard", false),
            ("admin", &[], Some("pupil"), "keyboard", false),
            ("admin", &[], None, "device", true),
            ("admin,reviewer", &["pupil"], Some("pupil"), "dns", true),
            ("governor", &[], Some("pupil"), "keyboard", false),
            ("governor", &[], None, "device", false),
        ];
        for (roles, groups, group, source, expected) in cases {
            let v = viewer(roles, groups);
            assert_eq!(
                v.may_see_alert(group, source),
                expected,
                "{roles} {group:?} {source}"
            );
            assert_eq!(
                v.alert_scope().admits(group, source),
                expected,
                "scope {roles} {group:?}"
            );
        }
    }

    #[test]
    fn governors_see_reports_only() {
        let g = viewer("governor", &[]);
        assert!(g.sees_reports());
        assert!(!g.sees_alerts() && !g.sees_audit() && !g.is_admin() && !g.may_export());
    }

    #[test]
    fn role_lists_parse_and_refuse_unknown() {
        assert_eq!(
            parse_roles("reviewer,admin").unwrap(),
            [Role::Admin, Role::Reviewer]
        );
        assert!(parse_roles("root").is_err());
    }
}

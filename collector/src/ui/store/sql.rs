//! The review UI's SQL, written once for SQLite and PostgreSQL where the two agree, which is nearly
//! everywhere: integer times and flags, `ON CONFLICT` upserts, `COALESCE`, `LIMIT`. Placeholders are
//! `$1`, `$2`, ... numbered in order of first use: PostgreSQL reads them natively, SQLite as named
//! parameters that take their index in order of first appearance, so both bind the same values in
//! the same order (a test below holds every statement to that rule).
//!
//! Where they differ, [`Dialect`] says how: SQLite's `LIKE` ignores ASCII case and PostgreSQL's does
//! not (`ILIKE` there), and SQLite's planner takes hints (a unary `+` keeps an index off a term)
//! that PostgreSQL does not parse for text and does not need.

use super::AlertFilter;

/// Which database a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the embedded default).
    Sqlite,
    /// PostgreSQL (trusts).
    Postgres,
}

impl Dialect {
    /// The case-insensitive pattern match.
    fn like(self) -> &'static str {
        match self {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        }
    }

    /// `column`, kept from driving SQLite's index choice when `hint` (no-op on PostgreSQL).
    fn unindexed(self, column: &'static str, hint: bool) -> String {
        match self {
            Dialect::Sqlite if hint => format!("+{column}"),
            _ => column.to_string(),
        }
    }
}

/// A bound value of a statement built at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A `BIGINT`.
    Int(i64),
    /// A `TEXT`.
    Text(String),
}

pub const UI_KEY_INIT: &str =
    "INSERT INTO ui_meta (key, value) VALUES ('ui_key', $1) ON CONFLICT (key) DO NOTHING";
pub const UI_KEY: &str = "SELECT value FROM ui_meta WHERE key = 'ui_key'";
pub const META: &str = "SELECT value FROM ui_meta WHERE key = $1";
pub const SET_META: &str = "INSERT INTO ui_meta (key, value) VALUES ($1, $2) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";
pub const INIT_META: &str =
    "INSERT INTO ui_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
pub const SWAP_META: &str = "UPDATE ui_meta SET value = $1 WHERE key = $2 AND value = $3";

const ACCOUNT: &str = "SELECT u.name, u.roles, u.groups_csv, u.password_hash, u.must_change_password, \
    u.disabled_us, COALESCE(s.failures, 0), s.locked_until_us, s.totp_secret, COALESCE(s.totp_enabled, 0), \
    s.totp_last_step FROM users u LEFT JOIN ui_account_security s ON s.user_name = u.name";
pub fn account() -> String {
    format!("{ACCOUNT} WHERE u.name = $1")
}
pub fn accounts() -> String {
    format!("{ACCOUNT} ORDER BY u.name")
}
pub const ENSURE_SECURITY: &str =
    "INSERT INTO ui_account_security (user_name) VALUES ($1) ON CONFLICT (user_name) DO NOTHING";
pub const SIGN_IN_FAILED: &str =
    "UPDATE ui_account_security SET failures = $1, locked_until_us = $2 WHERE user_name = $3";
pub const CLEAR_FAILURES: &str =
    "UPDATE ui_account_security SET failures = 0, locked_until_us = NULL WHERE user_name = $1";
pub const SET_PASSWORD: &str =
    "UPDATE users SET password_hash = $1, must_change_password = $2 WHERE name = $3";
pub const SET_TOTP: &str = "UPDATE ui_account_security SET totp_secret = $1, totp_enabled = $2, \
    totp_last_step = NULL WHERE user_name = $3";
pub const TOTP_USED: &str =
    "UPDATE ui_account_security SET totp_last_step = $1 WHERE user_name = $2";
pub const SET_ROLES: &str = "UPDATE users SET roles = $1, groups_csv = $2 WHERE name = $3";
pub const SET_DISABLED: &str = "UPDATE users SET disabled_us = $1 WHERE name = $2";

pub const CREATE_SESSION: &str = "INSERT INTO ui_sessions \
    (token_sha256, user_name, created_us, expires_us, second_factor_done) VALUES ($1, $2, $3, $4, $5)";
pub const DROP_EXPIRED_SESSIONS: &str = "DELETE FROM ui_sessions WHERE expires_us < $1";
pub const SESSION: &str =
    "SELECT token_sha256, user_name, created_us, expires_us, second_factor_done \
    FROM ui_sessions WHERE token_sha256 = $1 AND expires_us > $2";
pub const SECOND_FACTOR_DONE: &str =
    "UPDATE ui_sessions SET second_factor_done = 1 WHERE token_sha256 = $1";
pub const DELETE_SESSION: &str = "DELETE FROM ui_sessions WHERE token_sha256 = $1";
pub const DELETE_USER_SESSIONS: &str = "DELETE FROM ui_sessions WHERE user_name = $1";

/// The person's group: from their newest identity lease.
const GROUP: &str = "(SELECT l.group_name FROM leases l WHERE l.user_name = a.user_name \
    ORDER BY l.updated_us DESC LIMIT 1)";
const ALERT_COLUMNS: &str = "a.id, a.device, d.hostname, a.user_name, a.time_us, a.source, a.category, \
    a.severity, a.phrase, a.context, a.application, a.window_title, a.client_ip, a.screenshot_sha256, \
    s.format, a.no_screenshot_reason, a.status";
const ALERT_FROM: &str = "FROM alerts a LEFT JOIN devices d ON d.id = a.device \
    LEFT JOIN screenshots s ON s.sha256 = a.screenshot_sha256";

/// One alert by id, as `rows::alert` reads it.
pub fn alert() -> String {
    format!("SELECT {ALERT_COLUMNS}, {GROUP} {ALERT_FROM} WHERE a.id = $1")
}

/// The queue: alerts matching `filter`, newest first, at most `limit`.
pub fn queue(filter: &AlertFilter, limit: u32, dialect: Dialect) -> (String, Vec<Param>) {
    let mut w = filter_where(filter, true, dialect);
    let limit = w.bind(Param::Int(limit.into()));
    let sql = format!(
        "SELECT {ALERT_COLUMNS}, {GROUP} {ALERT_FROM} {} ORDER BY a.time_us DESC, a.id LIMIT {limit}",
        w.sql()
    );
    (sql, w.values)
}

/// Alerts matching `filter`, counted per category, most first.
pub fn category_counts(filter: &AlertFilter, dialect: Dialect) -> (String, Vec<Param>) {
    let w = filter_where(filter, false, dialect);
    let sql = format!(
        "SELECT a.category, COUNT(*) FROM alerts a {} GROUP BY a.category ORDER BY COUNT(*) DESC, a.category",
        w.sql()
    );
    (sql, w.values)
}

pub const SET_STATUS: &str = "UPDATE alerts SET status = $1 WHERE id = $2";
pub const ADD_TRIAGE_NOTE: &str =
    "INSERT INTO ui_triage_notes (alert_id, time_us, user_name, status, note) \
    VALUES ($1, $2, $3, $4, $5)";
pub const TRIAGE_NOTES: &str =
    "SELECT time_us, user_name, status, note FROM ui_triage_notes WHERE alert_id = $1 ORDER BY time_us";
pub const FALSE_POSITIVE_PHRASES: &str = "SELECT a.phrase, a.category, \
    SUM(CASE WHEN a.status = 'false-positive' THEN 1 ELSE 0 END), COUNT(*) \
    FROM alerts a WHERE a.status <> 'new' AND a.time_us >= $1 GROUP BY a.phrase, a.category \
    HAVING SUM(CASE WHEN a.status = 'false-positive' THEN 1 ELSE 0 END) > 0 \
    ORDER BY 3 DESC, a.phrase LIMIT 200";

const AUDIT_COLUMNS: &str = "seq, time_us, actor, action, subject, detail, prev_sha256, sha256";
pub const LAST_AUDIT: &str = "SELECT seq, sha256 FROM ui_audit ORDER BY seq DESC LIMIT 1";
pub const ADD_AUDIT: &str = "INSERT INTO ui_audit \
    (seq, time_us, actor, action, subject, detail, prev_sha256, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub fn audit_of_subject() -> String {
    format!("SELECT {AUDIT_COLUMNS} FROM ui_audit WHERE subject = $1 ORDER BY seq DESC LIMIT $2")
}
pub fn audit() -> String {
    format!("SELECT {AUDIT_COLUMNS} FROM ui_audit ORDER BY seq DESC LIMIT $1")
}
pub fn audit_chain() -> String {
    format!("SELECT {AUDIT_COLUMNS} FROM ui_audit ORDER BY seq")
}

const UNBLOCK_COLUMNS: &str =
    "id, time_us, host, category, tier, client_ip, user_name, reason, status, \
    decided_by, decided_us, decision_note";
pub const NEXT_UNBLOCK_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM ui_unblock_requests";
pub const ADD_UNBLOCK: &str = "INSERT INTO ui_unblock_requests \
    (id, time_us, host, category, tier, client_ip, user_name, reason, status) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')";
pub fn unblock_requests(open_only: bool) -> String {
    let filter = if open_only {
        "WHERE status = 'open'"
    } else {
        ""
    };
    format!(
        "SELECT {UNBLOCK_COLUMNS} FROM ui_unblock_requests {filter} ORDER BY time_us DESC LIMIT $1"
    )
}
pub const DECIDE_UNBLOCK: &str = "UPDATE ui_unblock_requests SET status = $1, decided_by = $2, \
    decision_note = $3, decided_us = $4 WHERE id = $5 AND status = 'open'";

const CHANGE_COLUMNS: &str =
    "id, time_us, author, reason, base_revision, policy_toml, diff, status, \
    decided_by, decided_us, revision";
pub const NEXT_CHANGE_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM ui_policy_changes";
pub const ADD_CHANGE: &str = "INSERT INTO ui_policy_changes \
    (id, time_us, author, reason, base_revision, policy_toml, diff, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub fn policy_changes() -> String {
    format!("SELECT {CHANGE_COLUMNS} FROM ui_policy_changes ORDER BY id DESC LIMIT $1")
}
pub fn policy_change() -> String {
    format!("SELECT {CHANGE_COLUMNS} FROM ui_policy_changes WHERE id = $1")
}
pub const DECIDE_CHANGE: &str =
    "UPDATE ui_policy_changes SET status = $1, decided_by = $2, revision = $3, \
    decided_us = $4 WHERE id = $5 AND status = 'pending'";

/// Alerts per period (integer division of the offset from `$1` by `$2`) and category.
pub fn period_counts(dns: bool) -> String {
    let source = if dns {
        "a.source = 'dns'"
    } else {
        "a.source NOT IN ('dns', 'device')"
    };
    format!(
        "SELECT (a.time_us - $1) / $2 AS p, a.category, COUNT(*) FROM alerts a \
         WHERE a.time_us >= $1 AND {source} GROUP BY p, a.category ORDER BY p, a.category"
    )
}

pub const RECORD_NOTIFICATION: &str = "INSERT INTO ui_notifications (alert_id, time_us, outcome) \
    VALUES ($1, $2, $3) ON CONFLICT (alert_id) DO NOTHING";
pub const FINISH_NOTIFICATION: &str =
    "UPDATE ui_notifications SET outcome = $1, time_us = $2 WHERE alert_id = $3";
pub const RELEASE_STALE_NOTIFICATIONS: &str =
    "DELETE FROM ui_notifications WHERE outcome = 'sending' AND time_us < $1";
pub const UNNOTIFIED_URGENT: &str = "SELECT a.id FROM alerts a WHERE a.severity >= 5 AND a.received_us >= $1 \
    AND NOT EXISTS (SELECT 1 FROM ui_notifications n WHERE n.alert_id = a.id) ORDER BY a.received_us LIMIT 100";

/// A WHERE clause under construction, numbering its placeholders as values are bound.
struct Where {
    clauses: Vec<String>,
    values: Vec<Param>,
}

impl Where {
    fn bind(&mut self, value: Param) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    fn list(&mut self, items: &[String]) -> String {
        if items.is_empty() {
            return "(NULL)".into();
        }
        let names: Vec<String> = items
            .iter()
            .map(|i| self.bind(Param::Text(i.clone())))
            .collect();
        format!("({})", names.join(", "))
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// `text` as a pattern that matches it anywhere, literally (`%`, `_` and `\` escaped with `\`).
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The WHERE clause for a filter. `for_listing` steers SQLite's choice of index for a listing in time
/// order: with a status, the status index (few new alerts) rather than the category one; severity is
/// never the driving index there. Counts take the covering index instead, so they see every term.
/// PostgreSQL plans from its statistics and gets the plain terms.
fn filter_where(filter: &AlertFilter, for_listing: bool, dialect: Dialect) -> Where {
    let mut w = Where {
        clauses: Vec::new(),
        values: Vec::new(),
    };
    let flag = |b: bool| if b { "TRUE" } else { "FALSE" };
    // People are sorted into staff and groups by their identity leases. The sets are uncorrelated
    // subqueries, built once per statement (SQLite) or hashed (PostgreSQL), so the scope costs one
    // look-up per row.
    let staff = w.list(&filter.staff_groups);
    let groups = w.list(&filter.scope_pupil_groups);
    let staff_set = format!("(SELECT l.user_name FROM leases l WHERE l.group_name IN {staff})");
    let group_set = format!("(SELECT l.user_name FROM leases l WHERE l.group_name IN {groups})");
    w.clauses.push(format!(
        "((a.source = 'device' AND {device}) OR (a.source <> 'device' AND \
         ((a.user_name IN {staff_set} AND {staff_ok}) OR \
          ((a.user_name IS NULL OR a.user_name NOT IN {staff_set}) AND ({all} OR a.user_name IN {group_set})))))",
        device = flag(filter.scope_device),
        staff_ok = flag(filter.scope_staff),
        all = flag(filter.scope_pupils_all),
    ));
    if let Some(since) = filter.since {
        let p = w.bind(Param::Int(since));
        w.clauses.push(format!("a.time_us >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = w.bind(Param::Int(until));
        w.clauses.push(format!("a.time_us < {p}"));
    }
    let category = dialect.unindexed("a.category", for_listing && filter.status.is_some());
    for (column, value) in [
        (category.as_str(), &filter.category),
        ("a.status", &filter.status),
        ("a.device", &filter.device),
        ("a.user_name", &filter.user),
    ] {
        if let Some(value) = value {
            let p = w.bind(Param::Text(value.clone()));
            w.clauses.push(format!("{column} = {p}"));
        }
    }
    if let Some(group) = &filter.group {
        let p = w.bind(Param::Text(group.clone()));
        w.clauses.push(format!(
            "a.user_name IN (SELECT l.user_name FROM leases l WHERE l.group_name = {p})"
        ));
    }
    if let Some(min) = filter.min_severity {
        let p = w.bind(Param::Int(min));
        let severity = dialect.unindexed("a.severity", for_listing);
        w.clauses.push(format!("{severity} >= {p}"));
    }
    if let Some(text) = &filter.text {
        let p = w.bind(Param::Text(like_pattern(text)));
        let like = dialect.like();
        w.clauses.push(format!(
            "(a.phrase {like} {p} ESCAPE '\\' OR a.context {like} {p} ESCAPE '\\' OR \
             a.window_title {like} {p} ESCAPE '\\' OR a.user_name {like} {p} ESCAPE '\\' OR \
             a.device {like} {p} ESCAPE '\\')"
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The placeholder numbers of `sql` in order of appearance.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            rest = &rest[at + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                found.push(n);
            }
        }
        found
    }

    /// SQLite numbers `$N` by first appearance: each new number must be the next one.
    fn numbered_in_order(sql: &str) -> bool {
        let mut next = 1;
        for n in placeholders(sql) {
            if n == next {
                next += 1;
            } else if n > next {
                return false;
            }
        }
        true
    }

    #[test]
    fn every_statement_numbers_placeholders_in_order_of_first_use() {
        let full = AlertFilter {
            since: Some(1),
            until: Some(2),
            category: Some("drugs".into()),
            min_severity: Some(3),
            status: Some("new".into()),
            group: Some("7a".into()),
            device: Some("d1".into()),
            user: Some("alex".into()),
            text: Some("x".into()),
            scope_pupil_groups: vec!["7a".into(), "7b".into()],
            staff_groups: vec!["staff".into()],
            ..AlertFilter::default()
        };
        let mut statements: Vec<String> = [
            UI_KEY_INIT,
            META,
            SET_META,
            ENSURE_SECURITY,
            SIGN_IN_FAILED,
            CLEAR_FAILURES,
            SET_PASSWORD,
            SET_TOTP,
            TOTP_USED,
            SET_ROLES,
            SET_DISABLED,
            CREATE_SESSION,
            DROP_EXPIRED_SESSIONS,
            SESSION,
            SECOND_FACTOR_DONE,
            DELETE_SESSION,
            DELETE_USER_SESSIONS,
            SET_STATUS,
            ADD_TRIAGE_NOTE,
            TRIAGE_NOTES,
            FALSE_POSITIVE_PHRASES,
            ADD_AUDIT,
            ADD_UNBLOCK,
            DECIDE_UNBLOCK,
            ADD_CHANGE,
            DECIDE_CHANGE,
            RECORD_NOTIFICATION,
            UNNOTIFIED_URGENT,
        ]
        .map(str::to_string)
        .to_vec();
        statements.extend([
            account(),
            accounts(),
            alert(),
            audit_of_subject(),
            audit(),
            unblock_requests(true),
            policy_changes(),
            policy_change(),
            period_counts(true),
        ]);
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for filter in [&full, &AlertFilter::default()] {
                let (sql, values) = queue(filter, 10, dialect);
                assert_eq!(placeholders(&sql).iter().max(), Some(&values.len()));
                statements.push(sql);
                let (sql, values) = category_counts(filter, dialect);
                assert_eq!(placeholders(&sql).iter().max().unwrap_or(&0), &values.len());
                statements.push(sql);
            }
        }
        for sql in &statements {
            assert!(numbered_in_order(sql), "{sql}");
        }
        assert!(!numbered_in_order("UPDATE t SET a = $2 WHERE b = $1"));
    }

    #[test]
    fn only_sqlite_gets_planner_hints_and_only_postgres_ilike() {
        let filter = AlertFilter {
            status: Some("new".into()),
            category: Some("drugs".into()),
            min_severity: Some(3),
            text: Some("x".into()),
            ..AlertFilter::default()
        };
        let (sqlite, _) = queue(&filter, 10, Dialect::Sqlite);
        assert!(sqlite.contains("+a.category") && sqlite.contains("+a.severity"));
        assert!(sqlite.contains(" LIKE ") && !sqlite.contains("ILIKE"));
        let (postgres, _) = queue(&filter, 10, Dialect::Postgres);
        assert!(!postgres.contains('+') && postgres.contains(" ILIKE "));
    }
}

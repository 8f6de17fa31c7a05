//! The UI's result rows to records, written once for both backends over the core store's
//! [`Columns`] (each backend says how it reads one column; the statements in `sql` select the same
//! columns in the same order for both).

use super::{
    AccountRecord, AuditRecord, PeriodCount, PhraseStats, PolicyChange, SessionRecord, TriageNote,
    UiAlert, UnblockRequest,
};
use crate::store::rows::Columns;

/// A row of `sql::account()` / `sql::accounts()`.
pub fn account<R: Columns>(r: &R) -> Result<AccountRecord, R::Error> {
    Ok(AccountRecord {
        name: r.text(0)?,
        roles: r.text(1)?,
        groups: r.text(2)?,
        password_hash: r.text(3)?,
        must_change_password: r.int(4)? != 0,
        disabled: r.opt_int(5)?.is_some(),
        failures: r.int(6)?,
        locked_until: r.opt_int(7)?,
        totp_secret: r.opt_text(8)?,
        totp_enabled: r.int(9)? != 0,
        totp_last_step: r.opt_int(10)?,
    })
}

/// A row of `sql::SESSION`.
pub fn session<R: Columns>(r: &R) -> Result<SessionRecord, R::Error> {
    Ok(SessionRecord {
        token_sha256: r.text(0)?,
        user: r.text(1)?,
        created: r.int(2)?,
        expires: r.int(3)?,
        second_factor_done: r.int(4)? != 0,
    })
}

/// A row of `sql::queue()` / `sql::alert()`.
pub fn alert<R: Columns>(r: &R) -> Result<UiAlert, R::Error> {
    Ok(UiAlert {
        id: r.text(0)?,
        device: r.text(1)?,
        hostname: r.opt_text(2)?,
        user: r.opt_text(3)?,
        time: r.int(4)?,
        source: r.text(5)?,
        category: r.text(6)?,
        severity: r.int(7)?,
        phrase: r.text(8)?,
        context: r.text(9)?,
        application: r.opt_text(10)?,
        window_title: r.opt_text(11)?,
        client_ip: r.opt_text(12)?,
        screenshot_sha256: r.opt_text(13)?,
        screenshot_format: r.opt_text(14)?,
        no_screenshot_reason: r.opt_text(15)?,
        status: r.text(16)?,
        group: r.opt_text(17)?,
    })
}

/// A row of `sql::category_counts()`.
pub fn category_count<R: Columns>(r: &R) -> Result<(String, i64), R::Error> {
    Ok((r.text(0)?, r.int(1)?))
}

/// A row of `sql::TRIAGE_NOTES`.
pub fn triage_note<R: Columns>(r: &R) -> Result<TriageNote, R::Error> {
    Ok(TriageNote {
        time: r.int(0)?,
        user: r.text(1)?,
        status: r.text(2)?,
        note: r.text(3)?,
    })
}

/// A row of `sql::FALSE_POSITIVE_PHRASES`.
pub fn phrase_stats<R: Columns>(r: &R) -> Result<PhraseStats, R::Error> {
    Ok(PhraseStats {
        phrase: r.text(0)?,
        category: r.text(1)?,
        false_positives: r.int(2)?,
        triaged: r.int(3)?,
    })
}

/// A row of `sql::audit()` and its kin.
pub fn audit<R: Columns>(r: &R) -> Result<AuditRecord, R::Error> {
    Ok(AuditRecord {
        seq: r.int(0)?,
        time: r.int(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        subject: r.text(4)?,
        detail: r.text(5)?,
        prev_sha256: r.text(6)?,
        sha256: r.text(7)?,
    })
}

/// A row of `sql::unblock_requests()`.
pub fn unblock<R: Columns>(r: &R) -> Result<UnblockRequest, R::Error> {
    Ok(UnblockRequest {
        id: r.int(0)?,
        time: r.int(1)?,
        host: r.text(2)?,
        category: r.text(3)?,
        tier: r.text(4)?,
        client_ip: r.text(5)?,
        user: r.opt_text(6)?,
        reason: r.text(7)?,
        status: r.text(8)?,
        decided_by: r.opt_text(9)?,
        decided: r.opt_int(10)?,
        decision_note: r.opt_text(11)?,
    })
}

/// A row of `sql::policy_changes()` / `sql::policy_change()`.
pub fn change<R: Columns>(r: &R) -> Result<PolicyChange, R::Error> {
    Ok(PolicyChange {
        id: r.int(0)?,
        time: r.int(1)?,
        author: r.text(2)?,
        reason: r.text(3)?,
        base_revision: r.int(4)?,
        policy_toml: r.text(5)?,
        diff: r.text(6)?,
        status: r.text(7)?,
        decided_by: r.opt_text(8)?,
        decided: r.opt_int(9)?,
        revision: r.opt_int(10)?,
    })
}

/// A row of `sql::period_counts()`.
pub fn period_count<R: Columns>(r: &R) -> Result<PeriodCount, R::Error> {
    Ok(PeriodCount {
        period: r.int(0)?,
        category: r.text(1)?,
        count: r.int(2)?,
    })
}

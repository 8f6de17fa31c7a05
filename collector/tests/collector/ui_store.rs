//! The review UI's store on the configured backend (SQLite here, PostgreSQL in the suite's rerun
//! under `pg_virtualenv`): role scopes, literal free text, triage, the append-only audit chain,
//! sessions, and on PostgreSQL the index behind the queue.

use std::sync::Arc;

use ward_collector::config::{Config, Database};
use ward_collector::store::{AlertRecord, LeaseRecord, NewUser, Store};
use ward_collector::ui::store::{
    verify_audit_chain, AlertFilter, PolicyChange, SessionRecord, UiStore,
};

use crate::harness::test_config;

struct Fixture {
    _dir: tempfile::TempDir,
    config: Config,
    store: Arc<dyn Store>,
    ui: Arc<dyn UiStore>,
}

pub(crate) fn record(
    id: &str,
    user: Option<&str>,
    time: i64,
    source: &str,
    context: &str,
) -> AlertRecord {
    AlertRecord {
        id: id.into(),
        device: "d1".into(),
        user: user.map(str::to_string),
        time,
        received: time,
        source: source.into(),
        category: "bullying".into(),
        severity: 3,
        phrase: "p".into(),
        context: context.into(),
        language: None,
        application: None,
        window_title: None,
        wordlist_version: None,
        client_ip: None,
        screenshot: None,
        no_screenshot_reason: None,
    }
}

/// A DSL account; alex (7a), sam (8b) and mr.t (staff) with leases; five alerts a1..a5: alex,
/// sam, mr.t, a device alert, and someone with no lease yet.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let store = ward_collector::app::open_store(&config).unwrap();
    store
        .add_user(&NewUser {
            name: "dsl".into(),
            roles: "dsl".into(),
            groups: String::new(),
            password_hash: "x".into(),
            must_change_password: false,
            created: 0,
        })
        .unwrap();
    for (device, user, group) in [
        ("d1", "alex", "7a"),
        ("d1", "sam", "8b"),
        ("d2", "mr.t", "staff"),
    ] {
        store
            .put_lease(&LeaseRecord {
                device: device.into(),
                user: user.into(),
                group: group.into(),
                addresses: "10.0.0.1".into(),
                expires: 99,
                updated: 1,
            })
            .unwrap();
    }
    let alerts: Vec<AlertRecord> = [
        (Some("alex"), "keyboard", "100% sure"),
        (Some("sam"), "keyboard", "plain"),
        (Some("mr.t"), "keyboard", "staff text"),
        (None, "device", "device silent"),
        (Some("newbie"), "keyboard", "no lease yet"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (user, source, text))| {
        record(
            &format!("a{}", i + 1),
            *user,
            (i as i64 + 1) * 10,
            source,
            text,
        )
    })
    .collect();
    store.insert_alerts(&alerts).unwrap();
    let ui = ward_collector::ui::store::open(&config.database, &config.data_dir).unwrap();
    Fixture {
        _dir: dir,
        config,
        store,
        ui,
    }
}

fn ids(ui: &dyn UiStore, filter: &AlertFilter) -> Vec<String> {
    let mut ids: Vec<String> = ui
        .queue(filter, 100)
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    ids.sort();
    ids
}

fn staff() -> Vec<String> {
    vec!["staff".to_string()]
}

/// Runs one statement on the database behind the store's back (not through any collector code).
fn raw_execute(config: &Config, sql: &str) -> Result<u64, String> {
    match &config.database {
        Database::Sqlite => rusqlite::Connection::open(config.data_dir.join("ward.db"))
            .and_then(|c| c.execute(sql, []))
            .map(|n| n as u64)
            .map_err(|e| e.to_string()),
        Database::Postgres(url) => postgres::Client::connect(url, postgres::NoTls)
            .and_then(|mut c| c.execute(sql, &[]))
            .map_err(|e| format!("{e:?}")),
    }
}

#[test]
fn each_role_lists_only_its_scope() {
    let f = fixture();
    let ui = &*f.ui;
    let dsl = AlertFilter {
        scope_pupils_all: true,
        staff_groups: staff(),
        ..Default::default()
    };
    assert_eq!(ids(ui, &dsl), ["a1", "a2", "a5"]);
    let head = AlertFilter {
        scope_staff: true,
        staff_groups: staff(),
        ..Default::default()
    };
    assert_eq!(ids(ui, &head), ["a3"]);
    let reviewer = AlertFilter {
        scope_pupil_groups: vec!["7a".into()],
        staff_groups: staff(),
        ..Default::default()
    };
    assert_eq!(ids(ui, &reviewer), ["a1"]);
    let admin = AlertFilter {
        scope_device: true,
        staff_groups: staff(),
        ..Default::default()
    };
    assert_eq!(ids(ui, &admin), ["a4"]);
    let governor = AlertFilter {
        staff_groups: staff(),
        ..Default::default()
    };
    assert!(ids(ui, &governor).is_empty());
    assert_eq!(
        ui.category_counts(&dsl).unwrap(),
        [("bullying".to_string(), 3)]
    );
    // Newest first, with the person's group from their lease.
    let listed = ui.queue(&dsl, 2).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|a| (a.id.as_str(), a.group.as_deref()))
            .collect::<Vec<_>>(),
        [("a5", None), ("a2", Some("8b"))]
    );
}

#[test]
fn free_text_is_literal_and_ignores_case() {
    let f = fixture();
    let base = AlertFilter {
        scope_pupils_all: true,
        staff_groups: staff(),
        ..Default::default()
    };
    let search = |text: &str| {
        ids(
            &*f.ui,
            &AlertFilter {
                text: Some(text.into()),
                ..base.clone()
            },
        )
    };
    assert_eq!(search("100%"), ["a1"]);
    assert!(search("_").is_empty(), "_ is not a wildcard");
    assert!(search("1%0").is_empty(), "% is not a wildcard");
    assert_eq!(search("PLAIN"), ["a2"]);
    assert_eq!(search("ALEX"), ["a1"], "user names match too");
}

#[test]
fn triage_sets_status_and_keeps_notes() {
    let f = fixture();
    let ui = &*f.ui;
    let changed = ui
        .triage(
            &["a1".into(), "nope".into()],
            "false-positive",
            "spelling test",
            "dsl",
            5,
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(ui.alert("a1").unwrap().unwrap().status, "false-positive");
    assert!(ui.alert("nope").unwrap().is_none());
    let notes = ui.triage_notes("a1").unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].note.as_str(), notes[0].user.as_str()),
        ("spelling test", "dsl")
    );
    let fp = ui.false_positive_phrases(0).unwrap();
    assert_eq!((fp[0].false_positives, fp[0].triaged), (1, 1));
    let new_only = AlertFilter {
        scope_pupils_all: true,
        staff_groups: staff(),
        status: Some("new".into()),
        ..Default::default()
    };
    assert_eq!(ids(ui, &new_only), ["a2", "a5"]);
}

#[test]
fn the_audit_log_is_append_only_in_the_database() {
    let f = fixture();
    for i in 0..3 {
        let entry = f.ui.append_audit(i, "dsl", "alert.view", "a1", "").unwrap();
        assert_eq!(entry.seq, i + 1);
    }
    f.ui.append_audit(9, "dsl", "alert.view", "a2", "").unwrap();
    assert_eq!(verify_audit_chain(&f.ui.audit_chain().unwrap()), None);
    assert_eq!(f.ui.audit(Some("a1"), 10).unwrap().len(), 3);
    assert_eq!(f.ui.audit(None, 2).unwrap()[0].seq, 4);
    for statement in [
        "UPDATE ui_audit SET actor = 'x' WHERE seq = 2",
        "DELETE FROM ui_audit",
    ] {
        let refused = raw_execute(&f.config, statement).unwrap_err();
        assert!(refused.contains("append-only"), "{statement}: {refused}");
    }
    if matches!(f.config.database, Database::Postgres(_)) {
        let refused = raw_execute(&f.config, "TRUNCATE ui_audit").unwrap_err();
        assert!(refused.contains("append-only"), "{refused}");
    }
    assert_eq!(f.ui.audit_chain().unwrap().len(), 4);
}

#[test]
fn sessions_live_in_the_database_and_end_on_request() {
    let f = fixture();
    let session = SessionRecord {
        token_sha256: "t1".into(),
        user: "dsl".into(),
        created: 100,
        expires: 200,
        second_factor_done: false,
    };
    f.ui.create_session(&session).unwrap();
    // A second store on the same database (another collector of the trust) knows the session.
    let other = ward_collector::ui::store::open(&f.config.database, &f.config.data_dir).unwrap();
    assert_eq!(other.session("t1", 150).unwrap(), Some(session.clone()));
    assert_eq!(other.session("t1", 200).unwrap(), None, "expired");
    other.session_second_factor_done("t1").unwrap();
    assert!(f.ui.session("t1", 150).unwrap().unwrap().second_factor_done);
    f.ui.create_session(&SessionRecord {
        token_sha256: "t2".into(),
        ..session.clone()
    })
    .unwrap();
    f.ui.delete_session("t1").unwrap();
    assert_eq!(other.session("t1", 150).unwrap(), None);
    other.delete_user_sessions("dsl").unwrap();
    assert_eq!(f.ui.session("t2", 150).unwrap(), None);
    // The UI key is one per database, whoever asks first.
    let key = f.ui.ui_key("first").unwrap();
    assert_eq!(other.ui_key("second").unwrap(), key);
}

#[test]
fn accounts_lockout_and_second_factor_round_trip() {
    let f = fixture();
    let ui = &*f.ui;
    let fresh = ui.account("dsl").unwrap().unwrap();
    assert_eq!(
        (fresh.failures, fresh.locked_until, fresh.totp_enabled),
        (0, None, false)
    );
    ui.sign_in_failed("dsl", 5, Some(1_000)).unwrap();
    let locked = ui.account("dsl").unwrap().unwrap();
    assert_eq!((locked.failures, locked.locked_until), (5, Some(1_000)));
    ui.set_password("dsl", "new-hash", true).unwrap();
    let reset = ui.account("dsl").unwrap().unwrap();
    assert_eq!(
        (
            reset.failures,
            reset.locked_until,
            reset.password_hash.as_str()
        ),
        (0, None, "new-hash")
    );
    assert!(reset.must_change_password);
    ui.set_totp("dsl", Some("SECRET"), true).unwrap();
    ui.totp_used("dsl", 42).unwrap();
    let totp = ui.account("dsl").unwrap().unwrap();
    assert_eq!(
        (
            totp.totp_secret.as_deref(),
            totp.totp_enabled,
            totp.totp_last_step
        ),
        (Some("SECRET"), true, Some(42))
    );
    ui.set_roles("dsl", "dsl,reviewer", "7a").unwrap();
    ui.set_disabled("dsl", Some(7)).unwrap();
    let changed = ui.account("dsl").unwrap().unwrap();
    assert_eq!(
        (
            changed.roles.as_str(),
            changed.groups.as_str(),
            changed.disabled
        ),
        ("dsl,reviewer", "7a", true)
    );
    assert_eq!(ui.accounts().unwrap().len(), 1);
    ui.set_meta("digest", "1").unwrap();
    ui.set_meta("digest", "2").unwrap();
    assert_eq!(ui.meta("digest").unwrap().as_deref(), Some("2"));
    assert_eq!(ui.meta("none").unwrap(), None);
}

#[test]
fn unblock_requests_policy_changes_reports_and_notifications() {
    let f = fixture();
    let ui = &*f.ui;
    let first = ui
        .add_unblock_request(
            1,
            "game.example",
            "games",
            "pupil",
            "10.0.0.1",
            Some("alex"),
            "homework",
        )
        .unwrap();
    let second = ui
        .add_unblock_request(2, "chat.example", "chat", "pupil", "10.0.0.2", None, "club")
        .unwrap();
    assert_eq!((first, second), (1, 2));
    assert!(ui
        .decide_unblock(first, "allowed", "admin", "fine", 3)
        .unwrap());
    assert!(!ui
        .decide_unblock(first, "refused", "admin", "again", 4)
        .unwrap());
    let open = ui.unblock_requests(true, 10).unwrap();
    assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
    let all = ui.unblock_requests(false, 10).unwrap();
    assert_eq!(all[1].decided_by.as_deref(), Some("admin"));

    let change = PolicyChange {
        id: 0,
        time: 5,
        author: "it".into(),
        reason: "lunchtime games".into(),
        base_revision: 1,
        policy_toml: "x = 1".into(),
        diff: "+x = 1".into(),
        status: "pending".into(),
        decided_by: None,
        decided: None,
        revision: None,
    };
    assert_eq!(ui.propose_policy(&change).unwrap(), 1);
    assert!(ui
        .decide_policy_change(1, "applied", "head", Some(2), 6)
        .unwrap());
    assert!(!ui
        .decide_policy_change(1, "rejected", "head", None, 7)
        .unwrap());
    let stored = ui.policy_change(1).unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.revision, stored.decided),
        ("applied", Some(2), Some(6))
    );
    assert_eq!(ui.policy_changes(10).unwrap().len(), 1);

    // Alerts at 10..50: periods of 20 from 10 hold a1,a2 | a3 (a4 is a device alert) | a5.
    let counts = ui.period_counts(10, 20, false).unwrap();
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.period, c.count))
            .collect::<Vec<_>>(),
        [(0, 2), (1, 1), (2, 1)]
    );
    assert!(ui.period_counts(0, 20, true).unwrap().is_empty());

    let mut urgent = record("u1", Some("alex"), 60, "keyboard", "urgent");
    urgent.severity = 5;
    f.store.insert_alerts(&[urgent]).unwrap();
    assert_eq!(ui.unnotified_urgent(0).unwrap(), ["u1"]);
    // A claim (`sending`) is taken once; a claim its collector never finished lapses, one it
    // finished stays.
    assert!(ui.record_notification("u1", 61, "sending").unwrap());
    assert!(!ui.record_notification("u1", 62, "sending").unwrap());
    assert!(ui.unnotified_urgent(0).unwrap().is_empty());
    assert_eq!(ui.release_stale_notifications(61).unwrap(), 0);
    assert_eq!(ui.release_stale_notifications(62).unwrap(), 1);
    assert_eq!(ui.unnotified_urgent(0).unwrap(), ["u1"]);
    assert!(ui.record_notification("u1", 70, "sending").unwrap());
    ui.finish_notification("u1", 71, "webhook sent").unwrap();
    assert_eq!(ui.release_stale_notifications(1_000).unwrap(), 0);
    assert!(ui.unnotified_urgent(0).unwrap().is_empty());

    // Once-only tasks: a value is set only from what it held.
    assert!(ui.swap_meta("digest_sent_us", None, "10").unwrap());
    assert!(!ui.swap_meta("digest_sent_us", None, "11").unwrap());
    assert!(!ui.swap_meta("digest_sent_us", Some("9"), "12").unwrap());
    assert!(ui.swap_meta("digest_sent_us", Some("10"), "12").unwrap());
    assert_eq!(ui.meta("digest_sent_us").unwrap().as_deref(), Some("12"));
}

/// On PostgreSQL the queue must read an index, not the table, with enough alerts that a sequential
/// scan would be the planner's choice if no index fitted.
#[test]
fn the_queue_reads_an_index_on_postgresql() {
    let f = fixture();
    let Database::Postgres(url) = &f.config.database else {
        return; // SQLite's plans are held to the mark by bench/ui.
    };
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "INSERT INTO alerts (id, device, user_name, time_us, received_us, source, category, severity, phrase, context, status)
               SELECT 'g' || g, 'd' || (g % 300), 'pupil' || (g % 2000), g * 1000000, g * 1000000, 'keyboard',
                      (ARRAY['bullying', 'drugs', 'self-harm', 'violence'])[1 + g % 4], 1 + g % 5, 'p', 'c',
                      CASE WHEN g % 40 = 0 THEN 'new' ELSE 'no-action' END
                 FROM generate_series(1::BIGINT, 100000) g;
             INSERT INTO leases (device, user_name, group_name, addresses, expires_us, updated_us)
               SELECT 'd' || (g % 300), 'pupil' || g, CASE WHEN g % 10 = 1 THEN 'staff' ELSE '7a' END, '', 99, 1
                 FROM generate_series(1, 2000) g;
             ANALYZE;",
        )
        .unwrap();
    let ui = ward_collector::ui::store::postgres::PostgresUi::open(url).unwrap();
    let dsl = AlertFilter {
        scope_pupils_all: true,
        scope_device: true,
        staff_groups: staff(),
        ..Default::default()
    };
    let new_only = AlertFilter {
        status: Some("new".into()),
        ..dsl.clone()
    };
    for filter in [&new_only, &dsl] {
        let plan = ui.explain_queue(filter, 500).unwrap().join("\n");
        println!("{plan}\n");
        assert!(!plan.contains("Seq Scan on alerts"), "{plan}");
        assert!(plan.contains("using alerts_by"), "{plan}");
    }
    assert_eq!(ui.queue(&new_only, 500).unwrap().len(), 500);
}

//! Hot reload: policy and lease changes apply within seconds, under load, without losing a query;
//! a broken file keeps the last good policy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::harness::{self, Options, Ward, POLICY};
use crate::upstream::Upstream;

const STAFF: &str = "127.0.0.10";

fn blocked(ward: &Ward, from: &str, name: &str) -> bool {
    let msg = ward.ask(from, name, RecordType::A);
    msg.metadata.response_code == ResponseCode::NXDomain
        || msg
            .answers
            .iter()
            .any(|r| matches!(&r.data, RData::A(a) if a.0.octets() == [192, 0, 2, 80]))
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn with_staff_deny(entry: &str) -> String {
    POLICY.replace(
        "[tiers.staff]\n",
        &format!("[tiers.staff]\ndeny = [\"{entry}\"]\n"),
    )
}

#[test]
fn policy_edits_apply_under_load_without_losing_a_query() {
    let up = Upstream::start();
    let ward = Arc::new(Ward::start(Options::new(up.addr)));
    assert!(!blocked(&ward, STAFF, "bet.test."));
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, lost) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (ward, stop, answered, lost) =
                (ward.clone(), stop.clone(), answered.clone(), lost.clone());
            std::thread::spawn(move || {
                let names = ["load.test.", "bet.test.", "www.google.com.", "roblox.test."];
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let packet = harness::query(names[i % names.len()], RecordType::A, true);
                    match harness::exchange_udp(ward.addr, STAFF, &packet, Duration::from_secs(5)) {
                        Some(_) => answered.fetch_add(1, Ordering::Relaxed),
                        None => lost.fetch_add(1, Ordering::Relaxed),
                    };
                    i += 1;
                }
            })
        })
        .collect();
    let policy = ward.dir.path().join("policy.toml");
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        let text = if round % 2 == 0 {
            with_staff_deny("bet.test")
        } else {
            POLICY.to_string()
        };
        std::fs::write(&policy, text).unwrap();
        if round == 3 {
            ward.signal("HUP");
        }
    }
    std::fs::write(&policy, with_staff_deny("bet.test")).unwrap();
    eventually("the new deny entry applies", || {
        blocked(&ward, STAFF, "bet.test.")
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (answered, lost) = (
        answered.load(Ordering::Relaxed),
        lost.load(Ordering::Relaxed),
    );
    assert!(answered > 200, "only {answered} answered");
    assert_eq!(
        lost,
        0,
        "{lost} of {} queries lost during reloads",
        answered + lost
    );
    let change = ward.wait_for_log("policy change: tier staff deny + bet.test");
    assert!(change.contains("policy.toml"), "{change}");
}

#[test]
fn a_broken_policy_keeps_the_last_good_one_and_says_where() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    let policy = ward.dir.path().join("policy.toml");
    std::fs::write(&policy, with_staff_deny("bet.test")).unwrap();
    eventually("the deny entry applies", || {
        blocked(&ward, STAFF, "bet.test.")
    });
    std::fs::write(
        &policy,
        "default_tier = \"byod-strict\"\n[block_page]\nipv4 = \"not an address\"\n",
    )
    .unwrap();
    let line = ward.wait_for_log("keeping the last good policy");
    assert!(line.contains("policy.toml:3:"), "{line}");
    assert!(
        blocked(&ward, STAFF, "bet.test."),
        "the last good policy still applies"
    );
    // An attempt to allow an illegal-list domain is refused the same way.
    std::fs::write(
        &policy,
        POLICY.replace(
            "[tiers.staff]\n",
            "[tiers.staff]\nallow = [\"abuse.test\"]\n",
        ),
    )
    .unwrap();
    let line = ward.wait_for_log("abuse.test");
    assert!(
        line.contains("illegal") && line.contains("keeping the last good policy"),
        "{line}"
    );
    assert!(blocked(&ward, STAFF, "abuse.test."));
    assert!(blocked(&ward, STAFF, "bet.test."));
}

#[test]
fn identity_leases_take_precedence_and_apply_within_two_seconds() {
    let up = Upstream::start();
    let ward = Ward::start(Options::new(up.addr));
    // Gambling, not games: the pupil tier's lunchtime schedule would make this depend on the clock.
    let unknown = "127.0.0.30";
    // Unknown client: byod-strict answers NXDOMAIN for gambling.
    let msg = ward.ask(unknown, "bet.test.", RecordType::A);
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    // A staff-VLAN address is staff: gambling allowed.
    assert!(!blocked(&ward, STAFF, "bet.test."));
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let leases = serde_json::json!([
        { "version": 1, "addresses": [unknown], "user": "jsmith", "group": "Students", "expires": expires.to_string() },
        { "version": 1, "addresses": [STAFF], "user": "pupil2", "group": "pupil", "expires": expires.to_string() },
    ]);
    let written = Instant::now();
    std::fs::write(ward.state().join("leases.json"), leases.to_string()).unwrap();
    eventually("the lease applies", || {
        let msg = ward.ask(unknown, "bet.test.", RecordType::A);
        msg.answers
            .iter()
            .any(|r| matches!(&r.data, RData::A(a) if a.0.octets() == [192, 0, 2, 80]))
    });
    assert!(
        written.elapsed() < Duration::from_secs(2),
        "took {:?}",
        written.elapsed()
    );
    // Lease over network: the pupil signed in on a staff-VLAN machine gets the pupil tier.
    assert!(blocked(&ward, STAFF, "bet.test."));
}

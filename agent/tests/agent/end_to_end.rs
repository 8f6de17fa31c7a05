//! ward-agent against a running ward-collector, on a real X desktop: what a pupil types and the
//! titles of their windows become alerts in the store, exactly once, whatever happens in between.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::desktop::{wait_until, Desktop};
use crate::programs::{keyboard, wait_for, Agent, Collector, QUICK_NOTICE};

/// Starts the agent on `desktop` and waits until the monitoring notice has come and gone.
fn run_on(agent: &mut Agent, desktop: &Desktop) {
    agent.run(Some(&desktop.display));
    desktop.wait_notice_closed("the monitoring notice closes", || agent.log());
}

#[test]
fn a_typed_phrase_and_a_concerning_title_become_alerts_with_screenshots() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), QUICK_NOTICE);
    agent.enrol(&collector);
    let mut desktop = Desktop::start();
    let window = desktop.open_terminal("Chat");
    run_on(&mut agent, &desktop);
    desktop.xdotool(&["windowactivate", "--sync", &window.to_string()]);

    desktop.type_text("honestly i just want to kill myself tonight");
    desktop.keys(&["Return"]);
    let typed = collector.wait_alert("the typed phrase", keyboard);
    assert_eq!(typed["category"], "suicide");
    assert_eq!(typed["severity"], 5);
    assert_eq!(typed["window_title"], "Chat");
    assert_eq!(typed["application"], "xterm");
    assert_eq!(typed["screenshot"], true);
    let context = typed["context"].as_str().unwrap();
    assert!(context.contains("kill myself"), "{context}");
    assert_eq!(collector.screenshot_size(&typed), (1280, 720));

    desktop.set_title(window, "how to kill myself painlessly - Google Search");
    let title = collector.wait_alert("the window title", |a| a["source"] == "window-title");
    assert_eq!(
        title["window_title"],
        "how to kill myself painlessly - Google Search"
    );
    // One screenshot per window per minute: the second alert says why it has none.
    assert_eq!(title["screenshot"], false);
    assert!(title["no_screenshot_reason"]
        .as_str()
        .unwrap()
        .starts_with("rate limited"));

    // Typed text never reaches the log.
    let log = agent.log();
    assert!(
        !log.contains("honestly") && !log.contains("tonight"),
        "{log}"
    );
    // SIGTERM stops it cleanly.
    assert!(agent.stop().success());
}

#[test]
fn backspaced_text_and_a_benign_session_raise_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), QUICK_NOTICE);
    agent.enrol(&collector);
    let mut desktop = Desktop::start();
    let window = desktop.open_terminal("Homework");
    run_on(&mut agent, &desktop);
    desktop.xdotool(&["windowactivate", "--sync", &window.to_string()]);

    desktop.type_text("The causes of the First World War were complex. ");
    desktop.keys(&["Return"]);
    // Typed, then deleted before it was finished.
    desktop.type_text("i want to kill mys");
    desktop.keys(&["BackSpace"; 18]);
    desktop.type_text("finish my essay");
    desktop.keys(&["Return"]);
    desktop.type_text("The skill of the archer and the Scunthorpe United score. ");
    desktop.keys(&["Return"]);
    // The marker: keys are handled in order, so when it arrives everything before it was seen.
    desktop.type_text("i will kill myself ");
    desktop.keys(&["Return"]);
    collector.wait_alert("the marker", keyboard);
    std::thread::sleep(Duration::from_millis(500));
    let alerts: Vec<Value> = collector.alerts().into_iter().filter(keyboard).collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(alerts[0]["context"]
        .as_str()
        .unwrap()
        .contains("i will kill myself"));
}

#[test]
fn alerts_spooled_while_the_collector_is_down_arrive_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("collector");
    let mut collector = Collector::start(&data);
    let port = collector.port;
    let mut agent = Agent::new(
        &tmp.path().join("agent"),
        &collector.url(),
        "[shipper]\nretry_max_seconds = 2\n",
    );
    agent.enrol(&collector);
    collector.stop();
    agent.run(None);
    let out = agent.command(&["send-test-alert", "--count", "30"]);
    assert!(out.status.success());
    let ids: HashSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 30);
    // Down for a while: the agent retries and keeps everything.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(agent.spool_depth(), 30);
    let collector = Collector::start_on(&data, port);
    wait_for("the spool to drain", 60, || {
        (agent.spool_depth() == 0).then_some(())
    });
    let stored: Vec<String> = collector
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "duplicates in the store");
    assert_eq!(unique, ids);
}

#[test]
fn kill_9_while_shipping_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(
        &tmp.path().join("agent"),
        &collector.url(),
        "[shipper]\nbatch_alerts = 5\nretry_max_seconds = 2\n",
    );
    agent.enrol(&collector);
    let out = agent.command(&["send-test-alert", "--count", "200"]);
    let ids: HashSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 200);
    agent.run(None);
    // Kill it in the middle of shipping: some delivered, some not.
    wait_for("some deliveries", 60, || {
        let depth = agent.spool_depth();
        (depth < 200).then_some(())
    });
    agent.kill9();
    let left = agent.spool_depth();
    assert!(left > 0, "killed too late to test anything");
    agent.run(None);
    wait_for("the spool to drain", 60, || {
        (agent.spool_depth() == 0).then_some(())
    });
    let stored: Vec<String> = collector
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "duplicates in the store");
    assert_eq!(unique, ids);
}

#[test]
fn a_full_spool_evicts_and_reports_what_it_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("collector");
    let mut collector = Collector::start(&data);
    let port = collector.port;
    let mut agent = Agent::new(
        &tmp.path().join("agent"),
        &collector.url(),
        "[spool]\nmax_alerts = 5\n[shipper]\nretry_max_seconds = 2\n",
    );
    agent.enrol(&collector);
    collector.stop();
    let out = agent.command(&["send-test-alert", "--count", "8"]);
    assert!(out.status.success());
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(agent.spool_depth(), 5);
    let status = agent.command(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["spool_dropped_total"], 3);
    assert_eq!(status["spool_depth"], 5);
    let collector = Collector::start_on(&data, port);
    agent.run(None);
    let lost = collector.wait_alert("the lost-alerts report", |a| {
        a["source"] == "device" && a["phrase"] == "alerts lost on this device"
    });
    assert!(
        lost["context"].as_str().unwrap().contains("3 alert(s)"),
        "{lost}"
    );
    wait_for("the spool to drain", 60, || {
        (agent.spool_depth() == 0).then_some(())
    });
    // The newest five survived; the three oldest were evicted.
    let stored: HashSet<String> = collector
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids[3..] {
        assert!(stored.contains(id));
    }
    for id in &ids[..3] {
        assert!(!stored.contains(id));
    }
}

/// Copies a folder tree.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn wordlists_reload_live_and_a_broken_file_keeps_the_last_good_set() {
    let tmp = tempfile::tempdir().unwrap();
    let lists = tmp.path().join("wordlists");
    copy_tree(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wordlists"),
        &lists,
    );
    let collector = Collector::start(&tmp.path().join("collector"));
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), QUICK_NOTICE);
    // Point this agent at its own copy of the lists.
    let config = std::fs::read_to_string(&agent.config)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("wordlists") {
                format!("wordlists = \"{}\"", lists.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&agent.config, config).unwrap();
    agent.enrol(&collector);
    let mut desktop = Desktop::start();
    let window = desktop.open_terminal("Notes");
    run_on(&mut agent, &desktop);

    std::fs::write(
        lists.join("en/weapons-local.txt"),
        "@category weapons\n@language en\n4 zorblax blade\n",
    )
    .unwrap();
    wait_until("the reload", || agent.log().contains("wordlists reloaded"));
    desktop.xdotool(&["windowactivate", "--sync", &window.to_string()]);
    desktop.type_text("bring the zorblax blade ");
    desktop.keys(&["Return"]);
    let first = collector.wait_alert("the new phrase", keyboard);
    assert_eq!(first["phrase"], "zorblax blade");

    // A broken line: the whole new set is refused and the last good one stays.
    std::fs::write(
        lists.join("en/broken.txt"),
        "@category weapons\n9 not a severity\n",
    )
    .unwrap();
    wait_until("the refusal", || {
        agent.log().contains("keeping the last good set")
    });
    desktop.type_text("the zorblax blade again ");
    desktop.keys(&["Return"]);
    wait_for("a second alert", 60, || {
        (collector.alerts().iter().filter(|a| keyboard(a)).count() == 2).then_some(())
    });
}

#[test]
fn the_session_helper_and_the_service_split_the_work() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    // The school's own notice text; heartbeats every second so its record arrives promptly.
    let notice = "This computer is monitored by the school to keep you safe.";
    let config = format!(
        "[identity]\nuser = \"pupil.notice\"\n{}notice = \"{notice}\"\n[shipper]\nheartbeat_seconds = 1\n",
        QUICK_NOTICE
    );
    let mut agent = Agent::new(&tmp.path().join("agent"), &collector.url(), &config);
    agent.enrol(&collector);
    let mut desktop = Desktop::start();
    let window = desktop.open_terminal("Chat");
    // The service ships; the helper watches the display and only spools.
    agent.run(None);
    let _helper = agent.session_helper(&desktop.display);
    let helper_log = agent.dir.join("helper.log");
    desktop.wait_notice_closed("the helper's notice closes", || {
        std::fs::read_to_string(&helper_log).unwrap_or_default()
    });
    desktop.xdotool(&["windowactivate", "--sync", &window.to_string()]);
    desktop.type_text("they said kill yourself ");
    desktop.keys(&["Return"]);
    let alert = collector.wait_alert("the helper's alert, shipped by the service", keyboard);
    assert_eq!(alert["window_title"], "Chat");
    assert!(!std::fs::read_to_string(&helper_log)
        .unwrap()
        .contains("alerts delivered"));
    assert!(agent.log().contains("alerts delivered"));
    let device = &collector.devices()[0];
    assert!(device["last_heartbeat"].is_string(), "{device}");
    assert!(
        matches!(device["sessions_without_helper"].as_u64(), None | Some(0)),
        "{device}"
    );
    // Disclosure: the helper's session record carries the showing, the service's heartbeat takes it
    // to the collector, which records it for the user with the SHA-256 of the school's text.
    let seen = wait_for("the notice record at the collector", 60, || {
        collector
            .notices()
            .into_iter()
            .find(|u| u["user"] == "pupil.notice" && u["never_shown"] == false)
    });
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(notice.as_bytes()));
    assert_eq!(seen["notice_sha256"], sha256.as_str(), "{seen}");
    assert!(seen["last_shown"].is_string(), "{seen}");
    assert_eq!(seen["devices"][0]["device"], device["id"], "{seen}");
}

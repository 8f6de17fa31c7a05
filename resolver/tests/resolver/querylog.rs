//! The query log's bounds on disk: files rotate at their size without splitting a record, rotated
//! files past the retention period are deleted at start, and the oldest go while all of them
//! together pass the total bound, keeping the newest records.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::harness::{Options, Ward};

/// 1/64 MiB, the smallest rotation size the config accepts.
const ROTATE_BYTES: u64 = 16_384;
/// The total bound given below (0.1 MiB).
const TOTAL_BYTES: u64 = 104_857;

/// Rotated files in the log folder, oldest first, with their sizes.
fn rotated(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(name, _)| name.starts_with("queries-"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_query_log_rotates_at_its_size_and_keeps_within_retention_and_its_total_bound() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("state/querylog");
    std::fs::create_dir_all(&logs).unwrap();
    // Left from earlier runs: one file past the 30-day retention, and a large recent one that on
    // its own passes the total bound.
    let expired = logs.join("queries-20200101T000000Z.jsonl");
    std::fs::write(&expired, "{}\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&expired)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(40 * 86_400))
        .unwrap();
    let oversized = logs.join("queries-20200102T000000Z.jsonl");
    std::fs::write(&oversized, "{}\n".repeat(60_000)).unwrap();

    let mut options = Options::new("127.0.0.1:9".parse().unwrap());
    options.extra =
        "[query_log]\nrotate_mib = 0.015625\nmax_total_mib = 0.1\nretention_days = 30\n"
            .to_string();
    let ward = Ward::start_in(dir, options);
    ward.wait_for_log("past the retention period");
    ward.wait_for_log("over the total size bound");
    assert!(!expired.exists() && !oversized.exists());

    // About 200 KB of records: a dozen rotations.
    const QUERIES: usize = 600;
    for i in 0..QUERIES {
        let answer = ward.ask("127.0.0.1", &format!("q{i}.roblox.test."), RecordType::A);
        assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    }
    let last = format!("\"q{}.roblox.test\"", QUERIES - 1);
    let current = logs.join("queries.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&current)
        .unwrap_or_default()
        .contains(&last)
    {
        assert!(Instant::now() < deadline, "the last record was not written");
        std::thread::sleep(Duration::from_millis(50));
    }

    let files = rotated(&logs);
    assert!(files.len() >= 4, "{files:?}");
    for (name, len) in &files {
        assert!(*len <= ROTATE_BYTES, "{name} is {len} bytes");
    }
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    assert!(total <= TOTAL_BYTES, "{total} bytes kept: {files:?}");
    // What is kept is the newest records, whole and in order, up to the last query.
    let mut names = Vec::new();
    for name in files
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(["queries.jsonl"])
    {
        for line in std::fs::read_to_string(logs.join(name)).unwrap().lines() {
            let record: serde_json::Value = serde_json::from_str(line).expect("a whole record");
            names.push(record["name"].as_str().unwrap().to_string());
        }
    }
    let first: usize = names[0]
        .trim_start_matches('q')
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first > 0, "the oldest rotated files were deleted");
    let expected: Vec<String> = (first..QUERIES)
        .map(|i| format!("q{i}.roblox.test"))
        .collect();
    assert_eq!(names, expected);
}

//! The command-line contract every program keeps: help, version, and a broken config named.

use std::process::Command;

use ward_tests::program;

const PROGRAMS: [&str; 3] = ["ward-resolver", "ward-collector", "ward-agent"];

#[test]
fn every_program_prints_help_and_version() {
    for name in PROGRAMS {
        let out = Command::new(program(name)).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name} --help failed");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("Usage:"), "{name} --help: {help}");
        let out = Command::new(program(name))
            .arg("--version")
            .output()
            .unwrap();
        let version = String::from_utf8(out.stdout).unwrap();
        assert!(version.starts_with(name), "{name} --version: {version}");
    }
}

#[test]
fn a_broken_config_is_named_with_its_line_and_exits_78() {
    let dir = tempdir();
    let path = dir.join("broken.toml");
    std::fs::write(
        &path,
        "# a comment\nlisten = [\"127.0.0.1:5353\"]\nlistne = 5\n",
    )
    .unwrap();
    let cases: [(&str, Vec<&str>); 3] = [
        ("ward-resolver", vec!["--config"]),
        ("ward-collector", vec!["--config"]),
        ("ward-agent", vec!["run", "--config"]),
    ];
    for (name, args) in cases {
        let out = Command::new(program(name))
            .args(&args)
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{name} exit code");
        let err = String::from_utf8(out.stderr).unwrap();
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains(&format!("{}:", path.display())),
            "{name}: {err}"
        );
        assert!(
            last.contains(":3:") || last.contains(":2:"),
            "{name} names no line: {err}"
        );
    }
}

#[test]
fn check_config_accepts_the_examples_and_names_a_broken_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempdir().join("check-config");
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "# a comment\nlistne = 5\n").unwrap();
    // A data or state directory that must not be created by a check.
    let untouched = dir.join("must-not-exist");
    let cases: [(&str, Vec<&str>, &str, &str); 2] = [
        (
            "ward-collector",
            vec!["--check-config", "--config"],
            "config/collector.toml",
            "--data-dir",
        ),
        (
            "ward-agent",
            vec!["run", "--check-config", "--config"],
            "config/agent.toml",
            "--state-dir",
        ),
    ];
    for (name, args, example, dir_flag) in cases {
        let out = Command::new(program(name))
            .args(&args)
            .arg(root.join(example))
            .arg(dir_flag)
            .arg(&untouched)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name} rejected {example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{name} printed on a good config");
        assert!(!untouched.exists(), "{name} created its directory");
        let out = Command::new(program(name))
            .args(&args)
            .arg(&broken)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{name} exit code");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("{}:2:", broken.display())),
            "{name} names no file:line: {err}"
        );
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

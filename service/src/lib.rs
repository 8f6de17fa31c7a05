//! What every Ward program does the same way: logging, reading its configuration file, and shutting
//! down cleanly on SIGINT/SIGTERM. Kept here so the three binaries behave identically for a technician.
#![deny(missing_docs)]

pub mod config;
pub mod logging;
pub mod shutdown;

/// Exit code for a configuration that cannot be used (sysexits' EX_CONFIG), so scripts and systemd can
/// tell "fix the file" apart from a crash.
pub const EXIT_CONFIG: i32 = 78;
/// Exit code for any other failure.
pub const EXIT_FAILURE: i32 = 1;

/// Ends a program: prints the error chain on one line to standard error and picks the exit code
/// ([`EXIT_CONFIG`] when the cause is a configuration file).
pub fn exit_code(program: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {err:#}");
            let config = err.chain().any(|cause| cause.is::<config::ConfigError>());
            std::process::ExitCode::from(if config { EXIT_CONFIG } else { EXIT_FAILURE } as u8)
        }
    }
}

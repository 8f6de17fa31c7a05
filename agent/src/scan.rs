//! `ward-agent scan`: how IT staff test a wordlist change, and how detection quality is measured.

use crate::cli::ScanArgs;

/// Scans standard input line by line.
///
/// # Errors
/// The wordlists cannot be loaded, or standard input is not readable.
pub fn run(_args: ScanArgs) -> anyhow::Result<()> {
    anyhow::bail!("scan: the detector is not built yet")
}

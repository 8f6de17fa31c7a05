//! Socket activation against the real binary: a listener bound here is handed over as systemd
//! would (fd 3, LISTEN_PID of the program itself, LISTEN_FDNAMES) and the block page answers on it.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::crash::BIN;

/// Kills the collector even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_block_page_answers_on_a_passed_block_http_socket() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The socket arrives as standard input; the shell moves it to fd 3 and, by exec'ing, gives the
    // collector its own pid, which is what LISTEN_PID must name.
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=block-http exec "$0" "$@" 3<&0 0</dev/null"#)
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    // The socket already listens, so connecting needs no wait; the reply comes once it is served.
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: blocked.example.org\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 "), "{reply}");
    assert!(reply.contains("blocked.example.org"), "{reply}");
}

//! Starting the real `ward-resolver` binary on a loopback port with a test policy, and asking it
//! questions as a client would (hickory-proto messages over UDP and TCP, and `dig`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ward-resolver");

/// The policy every test starts from. Loopback addresses stand in for school networks:
/// 127.0.0.10 is on the staff VLAN, 127.0.0.20 on the pupil network, anything else unknown.
pub const POLICY: &str = r#"
default_tier = "byod-strict"

[block_page]
ipv4 = "192.0.2.80"
ipv6 = "2001:db8::80"
ttl = 60

[[lists]]
path = "lists"

[[lists]]
path = "iwf.txt"
category = "illegal"

[[networks]]
name = "staff VLAN"
cidr = "127.0.0.10/32"
tier = "staff"

[[networks]]
name = "curriculum"
cidr = "127.0.0.20/32"
tier = "pupil"

[groups]
"Students" = "pupil"

[tiers.staff]
block = ["adult"]
safe_search = "moderate"
youtube = "moderate"

[tiers.pupil]
block = ["adult", "games", "gambling", "self-harm"]
deny = ["denied.test"]
safe_search = "strict"
youtube = "strict"

[[tiers.pupil.schedule]]
name = "lunchtime games"
allow = ["games"]
days = ["mon-fri"]
from = "12:30"
to = "13:15"

[tiers.sixth-form]
block = ["adult"]

[tiers.byod-strict]
block = ["adult", "games", "gambling", "self-harm", "social-media"]
safe_search = "strict"
youtube = "strict"
block_response = "nxdomain"
"#;

/// Options for one resolver.
#[derive(Clone)]
pub struct Options {
    /// Upstream address.
    pub upstream: SocketAddr,
    /// Policy text.
    pub policy: String,
    /// Extra lines for resolver.toml.
    pub extra: String,
    /// Listen addresses written into resolver.toml; when empty, `--listen 127.0.0.1:0` is given.
    pub listen: Vec<String>,
    /// How long one upstream attempt may take, in milliseconds.
    pub attempt_timeout_ms: u64,
    /// How long a client waits at most before SERVFAIL, in milliseconds.
    pub deadline_ms: u64,
}

impl Options {
    /// The default test policy against `upstream`.
    pub fn new(upstream: SocketAddr) -> Options {
        Options {
            upstream,
            policy: POLICY.to_string(),
            extra: String::new(),
            listen: Vec::new(),
            attempt_timeout_ms: 300,
            deadline_ms: 900,
        }
    }
}

/// A running resolver; killed when dropped.
pub struct Ward {
    /// Its address (UDP and TCP).
    pub addr: SocketAddr,
    /// The folder holding its config, policy, lists and state.
    pub dir: tempfile::TempDir,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

/// Writes a test policy folder: policy.toml, resolver.toml, lists.
pub fn write_config(dir: &Path, options: &Options) -> PathBuf {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    std::fs::create_dir_all(dir.join("lists")).unwrap();
    write("lists/games.txt", "roblox.test\n");
    write("lists/gambling.txt", "0.0.0.0 bet.test\n");
    write("lists/self-harm.txt", "||harm.test^\n");
    write("lists/adult.txt", "adult.test\n");
    write("lists/doh.txt", "doh.test\n");
    write("iwf.txt", "abuse.test\n");
    write("policy.toml", &options.policy);
    let listen: Vec<String> = options.listen.iter().map(|a| format!("\"{a}\"")).collect();
    let listen = if listen.is_empty() {
        "\"127.0.0.1:0\"".to_string()
    } else {
        listen.join(", ")
    };
    let config = format!(
        "listen = [{listen}]\nupstreams = [\"{}\"]\npolicy = \"policy.toml\"\nstate_dir = \"state\"\n\
         [upstream]\nattempt_timeout_ms = {}\ndeadline_ms = {}\n{}\n",
        options.upstream, options.attempt_timeout_ms, options.deadline_ms, options.extra
    );
    write("resolver.toml", &config);
    dir.join("resolver.toml")
}

impl Ward {
    /// Starts the binary and waits until it listens.
    pub fn start(options: Options) -> Ward {
        Ward::start_in(tempfile::tempdir().unwrap(), options)
    }

    /// Starts the binary in `dir`, which may already hold state (`dir/state`).
    pub fn start_in(dir: tempfile::TempDir, options: Options) -> Ward {
        let config = write_config(dir.path(), &options);
        let mut command = Command::new(BIN);
        command
            .args(["--log-format", "json", "--config"])
            .arg(&config);
        if options.listen.is_empty() {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .arg("--upstream")
            .arg(options.upstream.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split(' ').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("ward-resolver did not start: {:?}", log.lock().unwrap());
            }
        };
        Ward {
            addr,
            dir,
            child,
            log,
        }
    }

    /// Log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(l) = self.log().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The state folder.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Sends a signal to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Asks `name`/`rtype` from `from` over UDP with EDNS.
    pub fn ask(&self, from: &str, name: &str, rtype: RecordType) -> Message {
        ask_udp(self.addr, from, &query(name, rtype, true)).expect("an answer over UDP")
    }

    /// Asks over TCP.
    pub fn ask_tcp(&self, name: &str, rtype: RecordType) -> Message {
        let bytes = exchange_tcp(self.addr, &query(name, rtype, true)).expect("an answer over TCP");
        Message::from_vec(&bytes).unwrap()
    }
}

impl Drop for Ward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A recursive query, with EDNS (payload 1232) when `edns`.
pub fn query(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
    }
    msg.to_vec().unwrap()
}

/// Sends raw bytes over UDP from the loopback address `from`; the parsed answer, or `None` when
/// nothing came back within five seconds.
pub fn ask_udp(server: SocketAddr, from: &str, packet: &[u8]) -> Option<Message> {
    let bytes = exchange_udp(server, from, packet, Duration::from_secs(5))?;
    Some(Message::from_vec(&bytes).expect("a parseable answer"))
}

/// Raw UDP exchange.
pub fn exchange_udp(
    server: SocketAddr,
    from: &str,
    packet: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let ip: IpAddr = from.parse().unwrap();
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(packet, server).unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// Raw TCP exchange.
pub fn exchange_tcp(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(server).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).ok()?;
    Some(answer)
}

/// The Extended DNS Error in an answer: (code, text).
pub fn ede(msg: &Message) -> Option<(u16, String)> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match msg.edns.as_ref()?.option(EdnsCode::Unknown(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        )),
        _ => None,
    }
}

/// Answer records as zone-file lines.
pub fn answers(msg: &Message) -> Vec<String> {
    msg.answers.iter().map(|r| r.to_string()).collect()
}

/// Runs `dig` against the resolver and returns its output.
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=5", "+tries=1"])
        .args(args)
        .output()
        .expect("dig is installed (dnsutils, see tests/packages.txt)");
    String::from_utf8(out.stdout).unwrap()
}

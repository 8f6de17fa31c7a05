//! Immediate notice of severity-5 alerts (imminent risk to life) to the DSL by email and/or webhook,
//! and the weekly digest for governors.
//!
//! A notice carries no alert content: only that an urgent alert exists and a link to it, which needs
//! a sign-in. So a notice read on a phone's lock screen, or kept by a mail server, discloses nothing
//! about a pupil. The digest carries aggregates only. Delivery is at least once: an alert is marked
//! notified after the attempt, so a crash in between sends it again rather than never.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{now_us, Ui};
use crate::store::Micros;

/// How often the collector looks for new urgent alerts.
const POLL: Duration = Duration::from_secs(5);
/// How long one SMTP or webhook exchange may take.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// A notification claimed but never finished (its collector stopped mid-send) is sent again after
/// this: well past the longest an email and a webhook can take.
const CLAIM_LAPSES: Duration = Duration::from_secs(300);
/// When the last weekly digest went (or, before the first, when the collector first ran).
const DIGEST_SENT: &str = "digest_sent_us";
/// The outcome recorded while a collector is sending.
const SENDING: &str = "sending";

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connecting or talking to the server failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server refused a step, with its reply.
    #[error("server refused {step}: {reply}")]
    Refused {
        /// What we asked.
        step: &'static str,
        /// What it said.
        reply: String,
    },
    /// It took too long.
    #[error("timed out")]
    Timeout,
    /// The webhook address is not one we can post to.
    #[error("unsupported webhook address `{0}` (http://host:port/path)")]
    BadUrl(String),
}

/// One email.
#[derive(Debug, Clone)]
pub struct Email {
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

async fn reply<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    step: &'static str,
    want: u8,
) -> Result<(), SendError> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(SendError::Refused {
                step,
                reply: "connection closed".into(),
            });
        }
        text.push_str(&line);
        // Multi-line replies continue with "250-"; the last line has a space after the code.
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    if text.as_bytes().first() == Some(&want) {
        Ok(())
    } else {
        Err(SendError::Refused {
            step,
            reply: text.trim().to_string(),
        })
    }
}

fn clean_header(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// Sends one email through an SMTP relay (RFC 5321, no authentication, as a local relay expects).
///
/// # Errors
/// The relay cannot be reached, refuses a step, or is too slow.
pub async fn send_email(relay: &str, email: &Email) -> Result<(), SendError> {
    tokio::time::timeout(IO_TIMEOUT, send_email_inner(relay, email))
        .await
        .map_err(|_| SendError::Timeout)?
}

async fn send_email_inner(relay: &str, email: &Email) -> Result<(), SendError> {
    let stream = TcpStream::connect(relay).await?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    reply(&mut reader, "greeting", b'2').await?;
    write.write_all(b"EHLO ward-collector\r\n").await?;
    reply(&mut reader, "EHLO", b'2').await?;
    write
        .write_all(format!("MAIL FROM:<{}>\r\n", clean_header(&email.from)).as_bytes())
        .await?;
    reply(&mut reader, "MAIL FROM", b'2').await?;
    for to in &email.to {
        write
            .write_all(format!("RCPT TO:<{}>\r\n", clean_header(to)).as_bytes())
            .await?;
        reply(&mut reader, "RCPT TO", b'2').await?;
    }
    write.write_all(b"DATA\r\n").await?;
    reply(&mut reader, "DATA", b'3').await?;
    let date = jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    let mut message = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        clean_header(&email.from),
        email.to.iter().map(|t| clean_header(t)).collect::<Vec<_>>().join(", "),
        clean_header(&email.subject),
        date
    );
    for line in email.body.lines() {
        // Dot-stuffing: a line starting with '.' gets another, so it cannot end the message.
        if line.starts_with('.') {
            message.push('.');
        }
        message.push_str(line);
        message.push_str("\r\n");
    }
    message.push_str(".\r\n");
    write.write_all(message.as_bytes()).await?;
    reply(&mut reader, "message", b'2').await?;
    write.write_all(b"QUIT\r\n").await?;
    let _ = reply(&mut reader, "QUIT", b'2').await;
    Ok(())
}

/// POSTs a JSON body to an `http://` webhook (a local relay to chat or paging systems).
///
/// # Errors
/// Bad address, unreachable, or a non-2xx answer.
pub async fn post_webhook(url: &str, body: &str) -> Result<(), SendError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| SendError::BadUrl(url.into()))?;
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() {
        return Err(SendError::BadUrl(url.into()));
    }
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = TcpStream::connect(&addr).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).await?;
        if status
            .split_whitespace()
            .nth(1)
            .is_some_and(|c| c.starts_with('2'))
        {
            Ok(())
        } else {
            Err(SendError::Refused {
                step: "webhook",
                reply: status.trim().to_string(),
            })
        }
    };
    tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .map_err(|_| SendError::Timeout)?
}

/// The notice for one urgent alert: a link and nothing else about it.
pub fn urgent_email(ui: &Ui, alert_id: &str) -> Email {
    let n = &ui.settings.notifications;
    Email {
        from: n.smtp_from.clone(),
        to: n.urgent_to.clone(),
        subject: "Ward: an urgent safeguarding alert needs you now".into(),
        body: format!(
            "A severity 5 alert (possible imminent risk to life) has just arrived.\n\n\
             Open it here (sign-in needed):\n{}/alerts/{}\n\n\
             This message deliberately contains no details.\n",
            ui.settings.public_url.trim_end_matches('/'),
            alert_id
        ),
    }
}

/// Sends the notices for one alert; the outcome as recorded.
async fn notify_one(ui: &Ui, alert_id: &str) -> String {
    let n = &ui.settings.notifications;
    let mut outcomes = Vec::new();
    if let (Some(relay), false) = (&n.smtp_relay, n.urgent_to.is_empty()) {
        match send_email(relay, &urgent_email(ui, alert_id)).await {
            Ok(()) => outcomes.push("email sent".to_string()),
            Err(e) => {
                tracing::error!(alert = alert_id, error = %e, "urgent alert email failed");
                outcomes.push(format!("email failed: {e}"));
            }
        }
    }
    if let Some(url) = &n.webhook {
        let body = serde_json::json!({
            "event": "urgent-alert",
            "severity": 5,
            "link": format!("{}/alerts/{}", ui.settings.public_url.trim_end_matches('/'), alert_id),
        })
        .to_string();
        match post_webhook(url, &body).await {
            Ok(()) => outcomes.push("webhook sent".into()),
            Err(e) => {
                tracing::error!(alert = alert_id, error = %e, "urgent alert webhook failed");
                outcomes.push(format!("webhook failed: {e}"));
            }
        }
    }
    if outcomes.is_empty() {
        outcomes.push("no notification channel configured".into());
    }
    outcomes.join("; ")
}

/// One pass: notify every urgent alert received since `since` that has not been notified; returns
/// how many this collector notified. Each alert is claimed first (a `sending` record), so of several
/// collectors on one database exactly one sends; a claim left behind by a collector that stopped
/// mid-send lapses after [`CLAIM_LAPSES`] and the alert is notified again.
///
/// # Errors
/// The store failed.
pub async fn notify_pending(ui: &Ui, since: Micros) -> Result<usize, super::UiError> {
    let lapsed = now_us() - CLAIM_LAPSES.as_micros() as i64;
    ui.db(move |s| s.release_stale_notifications(lapsed))
        .await?;
    let ids = ui.db(move |s| s.unnotified_urgent(since)).await?;
    let mut sent = 0;
    for id in &ids {
        let i = id.clone();
        if !ui
            .db(move |s| s.record_notification(&i, now_us(), SENDING))
            .await?
        {
            continue; // Another collector of the trust has it.
        }
        let outcome = notify_one(ui, id).await;
        let (i, o) = (id.clone(), outcome.clone());
        ui.db(move |s| s.finish_notification(&i, now_us(), &o))
            .await?;
        ui.audit("ward-collector", "alert.notify", id, &outcome)
            .await?;
        sent += 1;
    }
    Ok(sent)
}

/// The weekly digest for governors: aggregates only.
///
/// # Errors
/// The store failed.
pub async fn digest(ui: &Ui, now: Micros) -> Result<Email, super::UiError> {
    let week = 7 * 86_400_000_000;
    let start = now - week;
    let (alerts, blocked, changes) = ui
        .db(move |s| {
            Ok((
                s.period_counts(start, week, false)?,
                s.period_counts(start, week, true)?,
                s.policy_changes(100)?,
            ))
        })
        .await?;
    let devices = ui.app.with_store(|s| s.devices()).await?;
    let mut body = String::from("Ward weekly report: the last seven days, in numbers only.\n\nSafeguarding alerts by category:\n");
    let list = |counts: &[super::store::PeriodCount], out: &mut String| {
        if counts.is_empty() {
            out.push_str("  none\n");
        }
        for c in counts {
            out.push_str(&format!("  {:<18} {}\n", c.category, c.count));
        }
    };
    list(&alerts, &mut body);
    body.push_str("\nBlocked attempts reported by the filter:\n");
    list(&blocked, &mut body);
    let live: Vec<_> = devices.iter().filter(|d| d.revoked.is_none()).collect();
    body.push_str(&format!(
        "\nDevices: {} enrolled, {} silent now.\n",
        live.len(),
        live.iter().filter(|d| d.silent_since.is_some()).count()
    ));
    let recent: Vec<_> = changes.iter().filter(|c| c.time >= start).collect();
    body.push_str(&format!(
        "\nFiltering changes this week: {}\n",
        recent.len()
    ));
    for c in recent {
        body.push_str(&format!(
            "  {} by {}: {} ({})\n",
            ui.time(c.time),
            c.author,
            c.reason,
            c.status
        ));
    }
    body.push_str(&format!(
        "\nFull reports: {}/reports\n",
        ui.settings.public_url.trim_end_matches('/')
    ));
    Ok(Email {
        from: ui.settings.notifications.smtp_from.clone(),
        to: ui.settings.notifications.digest_to.clone(),
        subject: "Ward weekly safeguarding and filtering report".into(),
        body,
    })
}

/// Runs the notifier until shutdown: urgent alerts every few seconds, the digest once a week.
pub async fn run(ui: Ui, shutdown: tokio_util::sync::CancellationToken) {
    // Alerts stored while the collector was down are still urgent when it starts.
    let since = now_us() - 86_400_000_000;
    loop {
        if let Err(e) = notify_pending(&ui, since).await {
            tracing::error!(error = ?e, "urgent alert notification pass failed");
        }
        if let Err(e) = maybe_digest(&ui).await {
            tracing::error!(error = ?e, "weekly digest failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn maybe_digest(ui: &Ui) -> Result<(), super::UiError> {
    let n = &ui.settings.notifications;
    let (Some(relay), false) = (n.smtp_relay.clone(), n.digest_to.is_empty()) else {
        return Ok(());
    };
    let now = now_us();
    let raw = ui.db(|s| s.meta(DIGEST_SENT)).await?;
    let last = raw.as_deref().and_then(|v| v.parse::<i64>().ok());
    if last.is_some_and(|l| now - l < 7 * 86_400_000_000) {
        return Ok(());
    }
    let Some(was) = raw else {
        // The first digest goes a week after the collector first runs, not at once.
        ui.db(move |s| s.swap_meta(DIGEST_SENT, None, &now.to_string()))
            .await?;
        return Ok(());
    };
    let email = digest(ui, now).await?;
    // Claimed before sending, so of several collectors of a trust only one sends it.
    let (from, claim) = (was.clone(), now.to_string());
    if !ui
        .db(move |s| s.swap_meta(DIGEST_SENT, Some(&from), &claim))
        .await?
    {
        return Ok(());
    }
    match send_email(&relay, &email).await {
        Ok(()) => {
            ui.audit(
                "ward-collector",
                "digest.sent",
                "digest",
                &email.to.join(", "),
            )
            .await?;
        }
        Err(e) => {
            tracing::error!(error = %e, "weekly digest could not be sent");
            // Give the claim back, so the next pass tries again.
            let claim = now.to_string();
            ui.db(move |s| s.swap_meta(DIGEST_SENT, Some(&claim), &was))
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A minimal SMTP server: answers each command, returns what it received.
    async fn smtp_listener(refuse_rcpt: bool) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            let mut seen = String::new();
            write.write_all(b"220 test ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                seen.push_str(&line);
                let reply: &[u8] = if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        b"250 queued\r\n"
                    } else {
                        continue;
                    }
                } else if line.starts_with("EHLO") {
                    b"250-test\r\n250 8BITMIME\r\n"
                } else if line.starts_with("RCPT") && refuse_rcpt {
                    b"550 no such user\r\n"
                } else if line.starts_with("DATA") {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if line.starts_with("QUIT") {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    b"250 ok\r\n"
                };
                write.write_all(reply).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    fn email() -> Email {
        Email {
            from: "ward@school.example".into(),
            to: vec!["dsl@school.example".into(), "deputy@school.example".into()],
            subject: "Ward: an urgent safeguarding alert needs you now\r\nBcc: evil@x".into(),
            body: "Open it:\nhttps://ward/alerts/1\n.hidden line\n".into(),
        }
    }

    #[tokio::test]
    async fn an_email_goes_through_an_smtp_relay() {
        let (addr, server) = smtp_listener(false).await;
        send_email(&addr, &email()).await.unwrap();
        let seen = server.await.unwrap();
        assert!(
            seen.contains("MAIL FROM:<ward@school.example>\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("RCPT TO:<dsl@school.example>\r\n")
                && seen.contains("RCPT TO:<deputy@school.example>\r\n")
        );
        assert!(
            seen.contains(
                "Subject: Ward: an urgent safeguarding alert needs you nowBcc: evil@x\r\n"
            ),
            "no header injection: {seen}"
        );
        assert!(
            seen.contains("\r\n..hidden line\r\n"),
            "dot-stuffed: {seen}"
        );
        assert!(seen.contains("https://ward/alerts/1"));
    }

    #[tokio::test]
    async fn a_refused_recipient_is_an_error() {
        let (addr, _server) = smtp_listener(true).await;
        let err = send_email(&addr, &email()).await.unwrap_err();
        assert!(err.to_string().contains("550"), "{err}");
    }

    #[tokio::test]
    async fn a_webhook_gets_the_json_and_a_failure_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        post_webhook(
            &format!("http://{addr}/hook"),
            "{\"event\":\"urgent-alert\"}",
        )
        .await
        .unwrap();
        let seen = server.await.unwrap();
        assert!(seen.starts_with("POST /hook HTTP/1.1\r\n"), "{seen}");
        assert!(seen.ends_with("{\"event\":\"urgent-alert\"}"));
        assert!(matches!(
            post_webhook("https://x/", "{}").await,
            Err(SendError::BadUrl(_))
        ));
    }
}

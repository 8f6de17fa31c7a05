//! The block page. The resolver answers a blocked name with the collector's address, so the browser
//! arrives here asking for that name (the Host header): over plain HTTP on the block-page port, or on
//! the UI's TLS port. The page says what was blocked, the category and the tier, and offers a 'request
//! a review' form whose requests land in the unblock queue with the requester's address and, when a
//! sign-in lease names them, their user name.
//!
//! The page is anonymous, so its form is protected by a token signed for the host and the requester's
//! address (a page on another site cannot forge one), and its inputs are bounded.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::html::Html;
use super::layout::{self, host_of};
use super::{now_us, query_pairs, read_form, secure_headers, Ui, UiError};
use crate::html;

/// Longest reason kept.
const MAX_REASON: usize = 1000;
/// How long a block page's form stays valid.
const FORM_SECONDS: i64 = 3600;

/// The requester's address: the TLS server's peer or the HTTP listener's connection.
fn client_ip(request_ext: &axum::http::Extensions) -> Option<IpAddr> {
    if let Some(peer) = request_ext.get::<crate::tls::Peer>() {
        return Some(canonical(peer.addr.ip()));
    }
    request_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()))
}

/// What the page can say about a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The requester's tier.
    pub tier: String,
    /// The category (or the list) that blocked the name.
    pub category: String,
    /// The signed-in user, when a lease names them.
    pub user: Option<String>,
}

/// Works out the tier and category of a blocked name for a requester, from the policy in force, the
/// live identity leases and the resolvers' recent block reports.
async fn explain(ui: &Ui, host: &str, ip: Option<IpAddr>) -> Explanation {
    let host_l = host.to_string();
    let now = now_us();
    let store = ui.app.clone();
    let found = store
        .with_store(move |s| {
            let policy = s.latest_policy()?;
            let leases = s.live_leases(now)?;
            let recent = s.alerts(&crate::store::AlertQuery {
                since: Some(now - 86_400_000_000),
                limit: Some(2000),
            })?;
            Ok((policy, leases, recent))
        })
        .await;
    let Ok((policy, leases, recent)) = found else {
        return Explanation {
            tier: "unknown".into(),
            category: "unknown".into(),
            user: None,
        };
    };
    let table: toml::Table = policy
        .and_then(|p| toml::from_str(&p.policy_toml).ok())
        .unwrap_or_default();
    let lease = ip.and_then(|ip| {
        leases.iter().find(|l| {
            l.addresses
                .split(',')
                .any(|a| a.trim().parse::<IpAddr>().ok() == Some(ip))
        })
    });
    let tier = tier_for(&table, lease.map(|l| l.group.as_str()), ip);
    let deny_hit = table
        .get("tiers")
        .and_then(|t| t.get(&tier))
        .and_then(|t| t.get("deny"))
        .and_then(|d| d.as_array())
        .is_some_and(|d| {
            d.iter()
                .filter_map(|x| x.as_str())
                .any(|rule| covers(rule, &host_l))
        });
    let category = if deny_hit {
        "on the school's deny list for this tier".to_string()
    } else {
        recent
            .iter()
            .rev()
            .find(|a| {
                a.source == "dns" && a.phrase.trim_end_matches('.').eq_ignore_ascii_case(&host_l)
            })
            .map(|a| a.category.clone())
            .unwrap_or_else(|| "a category blocked for this tier".into())
    };
    Explanation {
        tier,
        category,
        user: lease.map(|l| l.user.clone()),
    }
}

/// Whether a policy domain rule covers a name (`example.com` covers subdomains; `=name` exactly).
fn covers(rule: &str, host: &str) -> bool {
    match rule.strip_prefix('=') {
        Some(exact) => exact.eq_ignore_ascii_case(host),
        None => {
            let rule = rule.to_ascii_lowercase();
            host == rule || host.ends_with(&format!(".{rule}"))
        }
    }
}

/// The tier for a group (mapped by `[groups]`, or a tier of the same name), else a network, else the
/// default tier.
fn tier_for(table: &toml::Table, group: Option<&str>, ip: Option<IpAddr>) -> String {
    let tiers = table.get("tiers").and_then(|t| t.as_table());
    if let Some(group) = group {
        if let Some(t) = table
            .get("groups")
            .and_then(|g| g.get(group))
            .and_then(|t| t.as_str())
        {
            return t.to_string();
        }
        if tiers.is_some_and(|t| t.contains_key(group)) {
            return group.to_string();
        }
    }
    if let (Some(ip), Some(networks)) = (ip, table.get("networks").and_then(|n| n.as_array())) {
        for n in networks {
            let net = n
                .get("cidr")
                .and_then(|c| c.as_str())
                .and_then(|c| c.parse::<ipnet_lite::Net>().ok());
            if net.is_some_and(|net| net.contains(ip)) {
                if let Some(t) = n.get("tier").and_then(|t| t.as_str()) {
                    return t.to_string();
                }
            }
        }
    }
    table
        .get("default_tier")
        .and_then(|d| d.as_str())
        .unwrap_or("byod-strict")
        .to_string()
}

/// A tiny CIDR type (the policy's networks), to avoid a dependency for one comparison.
mod ipnet_lite {
    use std::net::IpAddr;
    use std::str::FromStr;

    /// An address range.
    pub struct Net(IpAddr, u8);

    impl FromStr for Net {
        type Err = ();
        fn from_str(s: &str) -> Result<Net, ()> {
            let (addr, len) = s.split_once('/').ok_or(())?;
            Ok(Net(
                addr.parse().map_err(|_| ())?,
                len.parse().map_err(|_| ())?,
            ))
        }
    }

    impl Net {
        /// Whether `ip` is in the range.
        pub fn contains(&self, ip: IpAddr) -> bool {
            match (self.0, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let bits = u32::from(self.1.min(32));
                    let mask = if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits)
                    };
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let bits = u32::from(self.1.min(128));
                    let mask = if bits == 0 {
                        0
                    } else {
                        u128::MAX << (128 - bits)
                    };
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            }
        }
    }
}

fn respond(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    secure_headers(response.headers_mut(), "text/html; charset=utf-8");
    response
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Renders the block page for `host` (also used for any path on a blocked name).
async fn render(
    ui: &Ui,
    host: &str,
    headers_ext: &axum::http::Extensions,
    message: Option<Html>,
) -> Response {
    if !valid_host(host) {
        return respond(
            StatusCode::BAD_REQUEST,
            layout::bare("Blocked", Html::lit("<p>This address was blocked.</p>")),
        );
    }
    let ip = client_ip(headers_ext);
    let why = explain(ui, host, ip).await;
    let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
    let expires = now_us() / 1_000_000 + FORM_SECONDS;
    let sig = ui.key.sign_link("unblock", host, &ip_text, expires);
    let body = html!(
        "<p><strong id=\"blocked-host\">{}</strong> is blocked by the school's web filter.</p>\
         <dl class=\"facts\"><dt>Why</dt><dd id=\"blocked-category\">{}</dd><dt>Your filtering level</dt><dd id=\"blocked-tier\">{}</dd>\
         <dt>Your device</dt><dd>{}{}</dd></dl>{}\
         <h2>Think this is wrong?</h2><form method=\"post\" action=\"/blocked/request\">\
         <input type=\"hidden\" name=\"host\" value=\"{}\"><input type=\"hidden\" name=\"exp\" value=\"{}\"><input type=\"hidden\" name=\"sig\" value=\"{}\">\
         <label for=\"reason\">Tell IT why you need this site (for example, the lesson it is for)</label>\
         <textarea id=\"reason\" name=\"reason\" maxlength=\"1000\" required></textarea>\
         <p><button type=\"submit\">Request a review</button></p></form>\
         <p class=\"muted\">School devices and networks are filtered and monitored to keep everyone safe. Your request is sent to \
         the school's IT team with your device's address{}.</p>",
        host,
        why.category,
        why.tier,
        ip_text,
        why.user.as_ref().map(|u| format!(" (signed in as {u})")).unwrap_or_default(),
        message.unwrap_or_default(),
        host,
        expires,
        sig,
        if why.user.is_some() { " and your name" } else { "" }
    );
    respond(StatusCode::OK, layout::bare("This site is blocked", body))
}

/// `GET /blocked?host=NAME`: the block page for a named host (links and tests); any request for a
/// blocked name reaches [`render`] through [`by_host`].
pub async fn page(State(ui): State<Ui>, request: Request) -> Response {
    let host = query_pairs(request.uri().query())
        .get("host")
        .map(str::to_ascii_lowercase)
        .or_else(|| host_of(request.headers()))
        .unwrap_or_default();
    render(&ui, &host, request.extensions(), None).await
}

/// `POST /blocked/request`: a request for review into the unblock queue.
pub async fn request(State(ui): State<Ui>, request: Request) -> Result<Response, UiError> {
    let (parts, body) = request.into_parts();
    let form = read_form(body).await?;
    let host = form.get("host").unwrap_or_default().to_ascii_lowercase();
    let ip = client_ip(&parts.extensions);
    let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
    let expires: i64 = form.get("exp").and_then(|e| e.parse().ok()).unwrap_or(0);
    if !valid_host(&host)
        || !ui.key.check_link(
            "unblock",
            &host,
            &ip_text,
            expires,
            now_us() / 1_000_000,
            form.get("sig").unwrap_or_default(),
        )
    {
        return Err(UiError::Forbidden(
            "This form has expired. Reload the page and try again.",
        ));
    }
    let reason: String = form
        .get("reason")
        .unwrap_or_default()
        .chars()
        .take(MAX_REASON)
        .collect();
    if reason.trim().is_empty() {
        return Ok(render(
            &ui,
            &host,
            &parts.extensions,
            Some(Html::lit(
                "<p class=\"notice\" role=\"alert\">Please say why you need the site.</p>",
            )),
        )
        .await);
    }
    let why = explain(&ui, &host, ip).await;
    let (h, w, i, r) = (host.clone(), why.clone(), ip_text.clone(), reason.clone());
    let id = ui
        .db(move |s| {
            s.add_unblock_request(
                now_us(),
                &h,
                &w.category,
                &w.tier,
                &i,
                w.user.as_deref(),
                &r,
            )
        })
        .await?;
    ui.audit(
        why.user.as_deref().unwrap_or("block-page"),
        "unblock.request",
        &format!("unblock-{id}"),
        &format!("{host} from {ip_text}"),
    )
    .await?;
    let body = html!(
        "<p class=\"ok\" role=\"status\">Your request to review <strong>{}</strong> was sent to the school's IT team (request {}).</p>",
        host,
        id
    );
    Ok(respond(StatusCode::OK, layout::bare("Request sent", body)))
}

/// Middleware for the TLS port: a request whose Host is not the collector's own name is for a
/// blocked site, whatever its path, so it gets the block page.
pub async fn by_host(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let own = host_of(request.headers()).is_none_or(|h| ui.settings.is_own_host(&h));
    if own || path.starts_with("/api/") || path.starts_with("/assets/") {
        return next.run(request).await;
    }
    if request.method() == axum::http::Method::POST && path == "/blocked/request" {
        return next.run(request).await;
    }
    let host = host_of(request.headers()).unwrap_or_default();
    render(&ui, &host, request.extensions(), None).await
}

/// The plain-HTTP block-page router: every path shows the block page for the Host asked for.
pub fn http_router(ui: Ui) -> Router {
    Router::new()
        .route("/blocked/request", post(request))
        .route("/assets/ward.css", get(layout::stylesheet))
        .fallback(page)
        .with_state(ui)
}

/// Serves the plain-HTTP block page on `listener` until `shutdown`.
///
/// # Errors
/// The listener fails.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    ui: Ui,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let app = http_router(ui).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// An IPv4-mapped IPv6 address as plain IPv4 (dual-stack sockets report those).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_networks() {
        assert!(covers("tiktok.com", "www.tiktok.com"));
        assert!(covers("tiktok.com", "tiktok.com"));
        assert!(!covers("tiktok.com", "nottiktok.com"));
        assert!(covers("=www.x.org", "www.x.org") && !covers("=www.x.org", "a.www.x.org"));
        let table: toml::Table = toml::from_str(
            "default_tier = \"byod-strict\"\n[groups]\nStudents = \"pupil\"\n[tiers.pupil]\n[tiers.staff]\n\
             [[networks]]\ncidr = \"10.10.0.0/16\"\ntier = \"staff\"\n",
        )
        .unwrap();
        assert_eq!(tier_for(&table, Some("Students"), None), "pupil");
        assert_eq!(tier_for(&table, Some("staff"), None), "staff");
        assert_eq!(tier_for(&table, None, "10.10.3.4".parse().ok()), "staff");
        assert_eq!(
            tier_for(&table, None, "10.11.3.4".parse().ok()),
            "byod-strict"
        );
    }
}

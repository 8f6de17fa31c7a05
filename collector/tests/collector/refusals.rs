//! Every refusal: the right status and code, a reason, and nothing stored.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ward_collector_client::{Client, ClientError, Identity};
use ward_protocol::{AlertBatch, DeviceKind, IngestReceipt};

use crate::harness::{alert, batch, screenshot, Collector};

fn refused(result: Result<IngestReceipt, ClientError>, status: u16, code: &str) -> ClientError {
    let err = result.unwrap_err();
    assert_eq!(err.status(), Some(status), "{err}");
    assert_eq!(err.code(), Some(code), "{err}");
    assert!(!err.is_retryable() || status == 429);
    if let ClientError::Refused { error, .. } = &err {
        assert!(!error.reason.is_empty());
    }
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_device_certificate_are_refused() {
    let collector = Collector::start().await;
    let anonymous = Client::anonymous(&collector.url, collector.ca_pem.as_bytes()).unwrap();
    let result = anonymous.send_alerts(&batch(vec![alert("ws-101")])).await;
    refused(result, 401, "client-certificate-required");
    assert_eq!(collector.count(), 0);
}

/// A certificate for a device id the collector knows, signed by a CA the collector does not.
fn forged_identity(collector: &Collector, device_id: &str) -> Identity {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Ward collector CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_ca_cert_der(ca_cert.der(), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name.push(DnType::CommonName, device_id);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Identity {
        device_id: device_id.into(),
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
        ca_pem: collector.ca_pem.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let collector = Collector::start().await;
    let (real, _) = collector.enrol(DeviceKind::Agent).await;
    let forged = forged_identity(&collector, &real.device_id);
    let client = Client::new(&collector.url, &forged).unwrap();
    let result = client
        .send_alerts(&batch(vec![alert(&real.device_id)]))
        .await;
    refused(result, 401, "untrusted-certificate");
    assert_eq!(collector.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_at_once() {
    let collector = Collector::start().await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    client
        .send_alerts(&batch(vec![alert(&identity.device_id)]))
        .await
        .unwrap();
    let now = jiff::Timestamp::now().as_microsecond();
    assert!(collector
        .store()
        .revoke_device(&identity.device_id, now)
        .unwrap());
    // Same client, same kept-alive connection: the very next request is refused.
    let result = client
        .send_alerts(&batch(vec![alert(&identity.device_id)]))
        .await;
    refused(result, 403, "device-revoked");
    assert_eq!(collector.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_malformed_and_wrong_version_bodies_are_refused() {
    let collector = Collector::start_with(|c| c.limits.max_request_bytes = 64 * 1024).await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    let device = identity.device_id.clone();

    let mut big = alert(&device);
    big.screenshot = Some(screenshot(100 * 1024));
    refused(
        client.send_alerts(&batch(vec![big])).await,
        413,
        "too-large",
    );

    let result = client
        .post_json::<_, IngestReceipt>("/api/v1/alerts", "this is not a batch")
        .await;
    refused(result, 400, "malformed-json");

    let mut wrong_version: AlertBatch = batch(vec![alert(&device)]);
    wrong_version.version = 99;
    refused(
        client.send_alerts(&wrong_version).await,
        400,
        "unsupported-version",
    );

    let mut json = serde_json::to_value(batch(vec![alert(&device)])).unwrap();
    json["alerts"][0]["keystrokes"] = "every key pressed".into();
    let err = refused(
        client.post_json("/api/v1/alerts", &json).await,
        400,
        "unknown-field",
    );
    assert!(err.to_string().contains("keystrokes"), "{err}");

    let mut bad = alert(&device);
    bad.severity = 9;
    let err = refused(
        client.send_alerts(&batch(vec![bad])).await,
        422,
        "invalid-field",
    );
    assert!(err.to_string().contains("alerts[0].severity"), "{err}");

    let err = refused(
        client
            .send_alerts(&batch(vec![alert("someone-else")]))
            .await,
        422,
        "invalid-field",
    );
    assert!(err.to_string().contains("alerts[0].device"), "{err}");

    let mut not_png = alert(&device);
    not_png.screenshot = Some(ward_protocol::Screenshot {
        format: "png".into(),
        width: 1,
        height: 1,
        data_base64: "aGVsbG8gd29ybGQ=".into(),
    });
    refused(
        client.send_alerts(&batch(vec![not_png])).await,
        422,
        "invalid-field",
    );

    let mut csam = alert(&device);
    csam.category = ward_protocol::Category::Csam;
    csam.screenshot = Some(screenshot(1024));
    refused(
        client.send_alerts(&batch(vec![csam])).await,
        422,
        "invalid-field",
    );

    assert_eq!(collector.count(), 0);
    assert!(collector.screenshots().addresses().unwrap().is_empty());
    // And the device still works afterwards.
    client
        .send_alerts(&batch(vec![alert(&device)]))
        .await
        .unwrap();
    assert_eq!(collector.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let collector = Collector::start_with(|c| {
        c.limits.device_requests_per_second = 0.5;
        c.limits.device_request_burst = 3.0;
    })
    .await;
    let (identity, client) = collector.enrol(DeviceKind::Agent).await;
    let mut limited = None;
    for _ in 0..10 {
        match client
            .send_alerts(&batch(vec![alert(&identity.device_id)]))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                limited = Some(e);
                break;
            }
        }
    }
    let err = limited.expect("never rate limited");
    assert!(err.is_retryable());
    assert!(matches!(
        err,
        ClientError::Refused {
            status: 429,
            retry_after: Some(_),
            ..
        }
    ));
    assert_eq!(collector.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_resolvers_keep_to_their_routes() {
    let collector = Collector::start().await;
    let (agent, agent_client) = collector.enrol(DeviceKind::Agent).await;
    let (resolver, resolver_client) = collector.enrol(DeviceKind::Resolver).await;
    // The stream and policy are for resolvers.
    let err = agent_client.policy().await.unwrap_err();
    assert_eq!(err.code(), Some("forbidden"), "{err}");
    // Resolvers send only DNS alerts, agents never.
    let mut dns = alert(&agent.device_id);
    dns.source = ward_protocol::AlertSource::Dns;
    refused(
        agent_client.send_alerts(&batch(vec![dns])).await,
        422,
        "invalid-field",
    );
    let typed = alert(&resolver.device_id);
    refused(
        resolver_client.send_alerts(&batch(vec![typed])).await,
        422,
        "invalid-field",
    );
    let mut dns = alert(&resolver.device_id);
    dns.source = ward_protocol::AlertSource::Dns;
    dns.category = ward_protocol::Category::Extremism;
    dns.phrase = "blocked.example".into();
    dns.client_ip = Some("10.1.2.3".parse().unwrap());
    resolver_client
        .send_alerts(&batch(vec![dns]))
        .await
        .unwrap();
    // Valid alerts in a batch one alert too long are refused whole.
    let too_many = batch(
        (0..=ward_protocol::MAX_BATCH)
            .map(|_| alert(&agent.device_id))
            .collect(),
    );
    refused(
        agent_client.send_alerts(&too_many).await,
        422,
        "invalid-field",
    );
    let stored = collector.store().alerts(&Default::default()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].source, "dns");
    assert_eq!(stored[0].client_ip.as_deref(), Some("10.1.2.3"));
}

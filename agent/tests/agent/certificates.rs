//! The collector trusts only device certificates its own CA issued and that are still valid: a
//! certificate forged with another CA, or an expired one from the right CA, is refused.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
};
use ward_collector_client::{Client, Identity};
use ward_protocol::{Heartbeat, PROTOCOL_VERSION};

use crate::programs::{Agent, Collector};

fn heartbeat() -> Heartbeat {
    Heartbeat {
        version: PROTOCOL_VERSION,
        time: jiff::Timestamp::now(),
        hostname: "ws-forged".into(),
        os: "linux".into(),
        agent_version: "0".into(),
        wordlist_version: None,
        spool_depth: 0,
        spool_dropped: 0,
        sessions: Vec::new(),
    }
}

/// A client certificate for `device_id` signed by `issuer`, valid between the given years.
fn certificate(
    device_id: &str,
    issuer: &Issuer<'_, KeyPair>,
    years: (i32, i32),
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, device_id);
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn forged_and_expired_client_certificates_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start(&tmp.path().join("collector"));
    let agent = Agent::new(&tmp.path().join("agent"), &collector.url(), "");
    agent.enrol(&collector);
    let genuine = Identity::load(&agent.dir.join("state")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let send = |identity: &Identity| {
        runtime.block_on(async {
            Client::new(&collector.url(), identity)
                .unwrap()
                .send_heartbeat(&heartbeat())
                .await
        })
    };

    // The control: the enrolled certificate works.
    send(&genuine).expect("the genuine certificate is accepted");

    // Same device id, same subject, but signed by a CA the collector never saw.
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let rogue_key = KeyPair::generate().unwrap();
    let rogue_ca = Issuer::new(ca_params, rogue_key);
    let (cert_pem, key_pem) = certificate(&genuine.device_id, &rogue_ca, (2025, 2030));
    let forged = Identity {
        cert_pem,
        key_pem,
        ..genuine.clone()
    };
    let err = send(&forged).expect_err("a forged certificate is refused");
    assert!(matches!(err.status(), None | Some(401 | 403)), "{err}");

    // Signed by the collector's own CA, but expired.
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(collector.data.join("ca-key.pem")).unwrap())
            .unwrap();
    let ca = Issuer::from_ca_cert_pem(&genuine.ca_pem, ca_key).unwrap();
    let (cert_pem, key_pem) = certificate(&genuine.device_id, &ca, (2020, 2021));
    let expired = Identity {
        cert_pem,
        key_pem,
        ..genuine.clone()
    };
    let err = send(&expired).expect_err("an expired certificate is refused");
    assert!(matches!(err.status(), None | Some(401 | 403)), "{err}");
}

//! Enforcement entry points against a real registry with a published TUF
//! repository: the admission webhook (real AdmissionReview payloads over
//! HTTPS: allowed, denied, exempt, malformed, oversized, mutating, dry
//! run), Gatekeeper provider requests, and the containerd image verifier
//! run as a process with real descriptors.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tuf_oci::store::{MEDIA_TYPE_MANIFEST, Reference, RegistryConfig, RegistryStore, Store};

use crate::fault_proxy::FaultProxy;
use crate::registry::{Auth, Registry};
use crate::support::{describe, trusted_root, tuf_oci_in};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", describe(&out));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// POST `body` to `https://addr/path`, trusting `ca`: (status, body).
async fn post(addr: &str, ca: &Path, path: &str, body: &[u8]) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413) before reading all of a large body.
    let _ = tls.write_all(body).await;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

fn review(uid: &str, namespace: &str, kind: &str, object: Value, dry_run: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "object": object,
            "dryRun": dry_run,
        }
    }))
    .unwrap()
}

fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .map(|i| json!({"name": "c", "image": i}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_gatekeeper_and_containerd_against_a_real_registry() {
    let registry = Registry::start(Auth::None);
    // Images are named through a recording proxy, to count registry load.
    let proxy = FaultProxy::start(&registry.addr);
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = tuf_oci_in(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        out
    };
    run(&["demo", "--repository", "oci:./store:demo-trust"]);
    let root = trusted_root(&run(&["sign", "oci:./store:1.0"]));
    run(&["copy", "oci:./store", &format!("{}/store", registry.addr)]);
    // An unsigned image beside it.
    let images = RegistryStore::new(&registry.addr, "store", RegistryConfig::default()).unwrap();
    images.put_blob(b"{}").await.unwrap();
    let unsigned = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[]}}"#
    );
    images
        .put_manifest(
            &Reference::Tag("unsigned".into()),
            MEDIA_TYPE_MANIFEST,
            unsigned.as_bytes(),
        )
        .await
        .unwrap();
    let host = proxy.addr.clone();
    let signed = format!("{host}/store:1.0");
    let not_signed = format!("{host}/store:unsigned");
    std::fs::write(
        dir.path().join("policy.yaml"),
        format!(
            "version: 1\nexempt:\n  images: [\"{host}/exempt/*\"]\ntrust:\n  - images: [\"{host}/store\"]\n    root: {root}\n"
        ),
    )
    .unwrap();
    certificates(dir.path());
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let _server = Server(
        crate::support::tuf_oci()
            .args([
                "admission",
                "serve",
                "--policy",
                "policy.yaml",
                "--tls-cert",
                "server.crt",
                "--tls-key",
                "server.key",
                "--listen",
                &listen,
                "--cache",
                "cache",
                "--namespace",
                "tuf-oci",
                "--max-body-bytes",
                "65536",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the webhook did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ca = dir.path().join("ca.crt");
    let admit = |body: Vec<u8>, path: &'static str| {
        let (listen, ca) = (listen.clone(), ca.clone());
        async move {
            let (status, text) = post(&listen, &ca, path, &body).await;
            assert_eq!(status, 200, "{text}");
            let value: Value = serde_json::from_str(&text).unwrap();
            value["response"].clone()
        }
    };

    // Allowed, with the uid echoed; cold, then warm.
    proxy.clear_requests();
    let response = admit(
        review("uid-1", "default", "Pod", pod(&[&signed]), false),
        "/validate",
    )
    .await;
    assert_eq!(response["uid"], "uid-1");
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        !proxy.requests().is_empty(),
        "the cold admission asked the registry"
    );
    proxy.clear_requests();
    let response = admit(
        review("uid-2", "default", "Pod", pod(&[&signed]), false),
        "/validate",
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        proxy.requests().len() <= 1,
        "warm: at most 1 registry request: {:?}",
        proxy.requests()
    );

    // Denied: a Deployment whose init container is unsigned; the message
    // names the image and the reason.
    let deployment = json!({"spec": {"template": {"spec": {"initContainers": [{"image": not_signed}], "containers": [{"image": signed}]}}}});
    let response = admit(
        review("uid-3", "default", "Deployment", deployment, false),
        "/validate",
    )
    .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "image {not_signed}: not trusted: no trusted target \"store:unsigned\""
        )),
        "{message}"
    );
    // No rule covers it: denied, saying so.
    let stranger = format!("{host}/other/app:1.0");
    let response = admit(
        review("uid-4", "default", "Pod", pod(&[&stranger]), false),
        "/validate",
    )
    .await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no trust rule in the policy covers"),
        "{response}"
    );
    // Exempt: kube-system, the webhook's own namespace, exempt images.
    for (uid, ns, image) in [
        ("uid-5", "kube-system", stranger.as_str()),
        ("uid-6", "tuf-oci", stranger.as_str()),
    ] {
        let response = admit(review(uid, ns, "Pod", pod(&[image]), false), "/validate").await;
        assert_eq!(response["allowed"], true, "{response}");
    }
    let exempt = format!("{host}/exempt/tool:1");
    let response = admit(
        review("uid-7", "default", "Pod", pod(&[&exempt]), false),
        "/validate",
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");
    // A dry run is decided the same way.
    let response = admit(
        review("uid-8", "default", "Pod", pod(&[&not_signed]), true),
        "/validate",
    )
    .await;
    assert_eq!(
        (response["uid"].as_str(), response["allowed"].as_bool()),
        (Some("uid-8"), Some(false))
    );

    // Mutating: the verified tag is pinned to its digest.
    let response = admit(
        review("uid-9", "default", "Pod", pod(&[&signed]), false),
        "/mutate",
    )
    .await;
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let value = patch[0]["value"].as_str().unwrap();
    assert_eq!(patch[0]["path"], "/spec/containers/0/image");
    assert!(
        value.starts_with(&format!("{host}/store@sha256:")),
        "{patch}"
    );
    // The pinned reference is admitted too (a digest reference).
    let response = admit(
        review("uid-10", "default", "Pod", pod(&[value]), false),
        "/validate",
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");

    // Malformed and oversized requests.
    let (status, text) = post(&listen, &ca, "/validate", b"{\"kind\": \"Nope\"}").await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("not an admission.k8s.io/v1 AdmissionReview"),
        "{text}"
    );
    let big = review(
        "uid-11",
        "default",
        "Pod",
        json!({"pad": "x".repeat(100_000)}),
        false,
    );
    let (status, _) = post(&listen, &ca, "/validate", &big).await;
    assert_eq!(status, 413);

    // Gatekeeper external data: a batch in, one item per image out.
    let request = json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": [signed, not_signed]}});
    let (status, text) = post(
        &listen,
        &ca,
        "/gatekeeper",
        &serde_json::to_vec(&request).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["kind"], "ProviderResponse");
    let items = value["response"]["items"].as_array().unwrap();
    assert!(
        items[0]["value"]
            .as_str()
            .unwrap()
            .contains("/store@sha256:"),
        "{value}"
    );
    assert!(
        items[1]["error"]
            .as_str()
            .unwrap()
            .contains("no trusted target"),
        "{value}"
    );

    // The containerd verifier: one process per pull, the on-disk cache kept.
    let trusted_digest = value.clone()["response"]["items"][0]["value"]
        .as_str()
        .unwrap()
        .split('@')
        .nth(1)
        .unwrap()
        .to_owned();
    let verifier = |image: &str, digest: &str, descriptor_digest: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tuf-oci-image-verifier"))
            .args([
                "-name",
                image,
                "-digest",
                digest,
                "-stdin-media-type",
                "application/vnd.oci.descriptor.v1+json",
            ])
            .env("TUF_OCI_POLICY", dir.path().join("policy.yaml"))
            .env("TUF_OCI_CACHE", dir.path().join("containerd-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let descriptor =
            json!({"mediaType": MEDIA_TYPE_MANIFEST, "digest": descriptor_digest, "size": 386});
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(descriptor.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, said) = verifier(&signed, &trusted_digest, &trusted_digest);
    assert_eq!(code, Some(0), "{said}");
    assert!(dir.path().join("containerd-cache").is_dir());
    let other_digest = format!("sha256:{}", "0".repeat(64));
    let (code, said) = verifier(&signed, &other_digest, &other_digest);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("is to be pulled, but role \"targets\" trusts"),
        "{said}"
    );
    let (code, said) = verifier(&signed, &trusted_digest, &other_digest);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the descriptor names"), "{said}");
    let (code, said) = verifier(&not_signed, &other_digest, &other_digest);
    assert_eq!(code, Some(1), "{said}");
}

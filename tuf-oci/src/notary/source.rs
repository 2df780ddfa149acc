//! Where Notary trust data comes from: a live notary-server (its HTTP API),
//! a directory that mirrors the server's URL paths, or a Docker/notary
//! client trust directory (`~/.docker/trust`).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use tracing::Instrument;

use super::NotaryError;
use super::model::{NotaryFile, NotaryMetaRole, NotaryRoot};
use super::verify::NotaryRepository;
use crate::net::{HttpTimeouts, client_builder, describe, read_body};

/// Notary's metadata size limit is far below this.
const MAX_FILE: u64 = 16 << 20;

fn fetch_error(what: String) -> NotaryError {
    NotaryError::Fetch(what)
}

/// Every delegated role the snapshot lists, with its sha256 (hex).
fn delegations(snapshot: &[u8]) -> Result<Vec<(String, Option<String>)>, NotaryError> {
    let snapshot = NotaryFile::<NotaryMetaRole>::parse("snapshot", "Snapshot", snapshot)?;
    Ok(snapshot
        .signed
        .meta
        .iter()
        .filter(|(name, _)| name.starts_with("targets/"))
        .map(|(name, meta)| {
            let hex = meta
                .hashes
                .get("sha256")
                .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
                .map(hex::encode);
            (name.clone(), hex)
        })
        .collect())
}

/// Read `targets.json` and every delegated role the snapshot lists.
fn read_targets(
    repository: &mut NotaryRepository,
    read: impl Fn(&str) -> Result<Vec<u8>, NotaryError>,
) -> Result<(), NotaryError> {
    repository
        .targets
        .insert("targets".into(), read("targets.json")?);
    for (role, _) in delegations(&repository.snapshot)? {
        repository
            .targets
            .insert(role.clone(), read(&format!("{role}.json"))?);
    }
    Ok(())
}

/// Read a GUN from a directory laid out like the server's URLs:
/// `DIR/v2/GUN/_trust/tuf/{N.root,timestamp,snapshot,targets,targets/ROLE}.json`.
pub fn read_mirror(dir: &Path, gun: &str) -> Result<NotaryRepository, NotaryError> {
    let base = dir.join("v2").join(gun).join("_trust/tuf");
    let read = |name: &str| {
        std::fs::read(base.join(name))
            .map_err(|e| fetch_error(format!("{}: {e}", base.join(name).display())))
    };
    let mut repository = NotaryRepository {
        gun: gun.to_owned(),
        ..NotaryRepository::default()
    };
    let current = NotaryFile::<NotaryRoot>::parse("root", "Root", &read("root.json")?)?;
    for v in 1..=current.signed.version {
        repository.roots.insert(v, read(&format!("{v}.root.json"))?);
    }
    repository.timestamp = read("timestamp.json")?;
    repository.snapshot = read("snapshot.json")?;
    read_targets(&mut repository, read)?;
    Ok(repository)
}

/// Read a GUN from a notary/Docker client trust directory
/// (`DIR/tuf/GUN/metadata/*.json`): only the current root is there, so the
/// chain starts at it (trusted as the client trusted it).
pub fn read_trust_dir(dir: &Path, gun: &str) -> Result<NotaryRepository, NotaryError> {
    let base = dir.join("tuf").join(gun).join("metadata");
    let read = |name: &str| {
        std::fs::read(base.join(name))
            .map_err(|e| fetch_error(format!("{}: {e}", base.join(name).display())))
    };
    let root = read("root.json")?;
    let version = NotaryFile::<NotaryRoot>::parse("root", "Root", &root)?
        .signed
        .version;
    let mut repository = NotaryRepository {
        gun: gun.to_owned(),
        roots: [(version, root)].into(),
        timestamp: read("timestamp.json")?,
        snapshot: read("snapshot.json")?,
        ..NotaryRepository::default()
    };
    read_targets(&mut repository, read)?;
    Ok(repository)
}

/// How to reach a notary-server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra CA certificates (PEM) for HTTPS.
    pub ca_file: Option<std::path::PathBuf>,
    /// A bearer token, when the server uses token auth.
    pub token: Option<String>,
}

/// Fetch a GUN from a live notary-server at `url` (`http(s)://host:port`):
/// every root version, the timestamp, and the snapshot, targets and
/// delegations the timestamp names, by checksum (one consistent state).
pub async fn fetch(
    url: &str,
    gun: &str,
    options: &ServerOptions,
) -> Result<NotaryRepository, NotaryError> {
    let mut builder = client_builder(HttpTimeouts::default());
    if let Some(ca) = &options.ca_file {
        let pem = std::fs::read(ca).map_err(|e| fetch_error(format!("{}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| fetch_error(format!("{}: {e}", ca.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|e| fetch_error(describe(&e)))?;
    let base = format!("{}/v2/{gun}/_trust/tuf", url.trim_end_matches('/'));
    // The bearer token: given, or obtained through the docker token flow
    // when the server asks for one (401 with a Bearer challenge).
    let token = std::sync::Mutex::new(options.token.clone());
    let get = |name: String| {
        let (client, base, token) = (client.clone(), base.clone(), &token);
        async move {
            let url = format!("{base}/{name}");
            let send = |bearer: Option<String>| {
                let mut request = client.get(&url);
                if let Some(bearer) = bearer {
                    request = request.bearer_auth(bearer);
                }
                request.send()
            };
            let current = token.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut response = send(current.clone())
                .await
                .map_err(|e| fetch_error(format!("{url}: {}", describe(&e))))?;
            if response.status().as_u16() == 401 {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|h| h.to_str().ok())
                    .and_then(crate::store::registry::auth::Challenge::parse);
                if let Some(crate::store::registry::auth::Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }) = challenge
                {
                    let fresh = token_from(
                        &client,
                        &realm,
                        service.as_deref(),
                        scope
                            .as_deref()
                            .unwrap_or(&format!("repository:{gun}:pull")),
                    )
                    .await?;
                    *token.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
                    response = send(Some(fresh))
                        .await
                        .map_err(|e| fetch_error(format!("{url}: {}", describe(&e))))?;
                }
            }
            let status = response.status();
            if !status.is_success() {
                let body = read_body(response, 4096).await.unwrap_or_default();
                return Err(fetch_error(format!(
                    "{url}: {status}: {}",
                    String::from_utf8_lossy(&body).trim(),
                )));
            }
            read_body(response, MAX_FILE).await.map_err(|e| {
                fetch_error(match e {
                    crate::net::BodyError::TooLarge => format!("{url}: over {MAX_FILE} bytes"),
                    crate::net::BodyError::Failed(why) => format!("{url}: {why}"),
                })
            })
        }
        .instrument(tracing::debug_span!("notary fetch", gun))
    };
    let mut repository = NotaryRepository {
        gun: gun.to_owned(),
        ..NotaryRepository::default()
    };
    let current = NotaryFile::<NotaryRoot>::parse("root", "Root", &get("root.json".into()).await?)?;
    for v in 1..=current.signed.version {
        repository
            .roots
            .insert(v, get(format!("{v}.root.json")).await?);
    }
    repository.timestamp = get("timestamp.json".into()).await?;
    let timestamp =
        NotaryFile::<NotaryMetaRole>::parse("timestamp", "Timestamp", &repository.timestamp)?;
    let by_checksum = |role: &str, meta: Option<&super::model::NotaryMeta>| {
        let hex = meta
            .and_then(|m| m.hashes.get("sha256"))
            .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
            .map(hex::encode);
        match hex {
            Some(hex) => format!("{role}.{hex}.json"),
            None => format!("{role}.json"),
        }
    };
    repository.snapshot = get(by_checksum(
        "snapshot",
        timestamp.signed.meta.get("snapshot"),
    ))
    .await?;
    let snapshot =
        NotaryFile::<NotaryMetaRole>::parse("snapshot", "Snapshot", &repository.snapshot)?;
    repository.targets.insert(
        "targets".into(),
        get(by_checksum("targets", snapshot.signed.meta.get("targets"))).await?,
    );
    let mut roles: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (role, _) in delegations(&repository.snapshot)? {
        roles.insert(
            role.clone(),
            get(by_checksum(&role, snapshot.signed.meta.get(&role))).await?,
        );
    }
    repository.targets.extend(roles);
    Ok(repository)
}

/// A token from the token service at `realm` (the docker token flow), with
/// the credentials in `$NOTARY_AUTH` (base64 of `user:password`, as the
/// notary client reads it) when set.
async fn token_from(
    client: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: &str,
) -> Result<String, NotaryError> {
    let mut query = vec![("scope", scope)];
    if let Some(service) = service {
        query.push(("service", service));
    }
    let mut request = client.get(realm).query(&query);
    if let Ok(auth) = std::env::var("NOTARY_AUTH") {
        request = request.header("authorization", format!("Basic {auth}"));
    }
    let response = request
        .send()
        .await
        .map_err(|e| fetch_error(format!("token service {realm}: {}", describe(&e))))?;
    let status = response.status();
    let body = read_body(response, 1 << 20)
        .await
        .map_err(|_| fetch_error(format!("token service {realm}: the answer cannot be read")))?;
    if !status.is_success() {
        return Err(fetch_error(format!(
            "token service {realm}: {status}: {} (set $NOTARY_AUTH to base64(user:password))",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| fetch_error(format!("token service {realm}: {e}")))?;
    value["token"]
        .as_str()
        .or_else(|| value["access_token"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| fetch_error(format!("token service {realm}: no token in the answer")))
}

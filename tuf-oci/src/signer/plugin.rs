//! External signer plugins: an executable `tuf-signer-NAME` that speaks the
//! JSON protocol of `spec/signer-plugins.md` on stdin/stdout, so cloud KMS
//! and other key services plug in without being compiled in. Every
//! signature a plugin returns is verified against the key it described
//! before it is used ([`sign_metadata`](super::sign_metadata)).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tracing::Instrument;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Error, SignFuture, Signer};
use crate::crypto::hash::HashAlgorithm;
use crate::crypto::{PublicKey, Scheme, ecdsa_raw_to_der};
use crate::metadata::{Key, KeyId};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The protocol version this host speaks.
const PROTOCOL_VERSION: &str = "1";
/// The most a plugin may print on stdout.
const MAX_OUTPUT: usize = 1 << 20;

/// Find `tuf-signer-NAME` in `dirs`, or else in `TUF_OCI_PLUGIN_DIR` if set,
/// else on `PATH`.
pub fn plugin_path(name: &str, dirs: Option<&[PathBuf]>) -> Result<PathBuf, Error> {
    let file = format!("tuf-signer-{name}");
    let dirs: Vec<PathBuf> = match (dirs, std::env::var_os("TUF_OCI_PLUGIN_DIR")) {
        (Some(dirs), _) => dirs.to_vec(),
        (None, Some(dir)) => vec![dir.into()],
        (None, None) => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default(),
    };
    dirs.into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Plugin {
            plugin: name.to_owned(),
            reason: format!("{file} not found in TUF_OCI_PLUGIN_DIR or PATH"),
        })
}

/// A key behind an external signer plugin.
#[derive(Debug)]
pub struct PluginSigner {
    name: String,
    path: PathBuf,
    plugin_key_id: String,
    scheme: Scheme,
    message_input: bool,
    timeout: Duration,
    key: Key,
    key_id: KeyId,
}

impl PluginSigner {
    /// Find the plugin and ask it to describe `plugin_key_id`.
    pub async fn open(
        name: &str,
        plugin_key_id: &str,
        dirs: Option<&[PathBuf]>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let path = plugin_path(name, dirs)?;
        let fail = |reason: String| Error::Plugin {
            plugin: name.to_owned(),
            reason,
        };
        let reply = call(
            name,
            &path,
            "describe-key",
            json!({"keyId": plugin_key_id}),
            timeout,
        )
        .await?;
        let field = |k: &str| {
            reply
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| fail(format!("describe-key: no {k:?} in the answer")))
        };
        let scheme = Scheme::from_tuf(field("keytype")?, field("scheme")?)?;
        let der = B64
            .decode(field("publicKey")?)
            .map_err(|e| fail(format!("describe-key: publicKey is not base64: {e}")))?;
        let public = PublicKey::from_spki_der(scheme, &der)?;
        let inputs: Vec<&str> = reply
            .get("inputs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let message_input = inputs.contains(&"message");
        // Digest input is SHA-256: only for the schemes that hash with it.
        let digest_ok = matches!(scheme, Scheme::EcdsaP256Sha256 | Scheme::RsaPssSha256)
            && inputs.contains(&"digest");
        if !message_input && !digest_ok {
            return Err(fail(format!(
                "describe-key: inputs {inputs:?} do not allow signing {} keys",
                scheme.name()
            )));
        }
        // The key ID is ours, computed from the public key, never the plugin's.
        let key = Key::from_public(&public);
        let key_id = key.key_id();
        Ok(Self {
            name: name.to_owned(),
            path,
            plugin_key_id: plugin_key_id.to_owned(),
            scheme,
            message_input,
            timeout,
            key,
            key_id,
        })
    }

    async fn sign_now(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let input = if self.message_input {
            json!({"type": "message", "data": B64.encode(msg)})
        } else {
            json!({"type": "digest", "hashAlgorithm": "sha256", "data": B64.encode(HashAlgorithm::Sha256.digest(msg))})
        };
        let request =
            json!({"keyId": self.plugin_key_id, "scheme": self.scheme.name(), "input": input});
        let reply = call(&self.name, &self.path, "sign", request, self.timeout).await?;
        let fail = |reason: &str| Error::Plugin {
            plugin: self.name.clone(),
            reason: format!("sign: {reason}"),
        };
        let sig = reply
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("no signature in the answer"))?;
        let sig = B64
            .decode(sig)
            .map_err(|_| fail("signature is not base64"))?;
        match (self.scheme, reply.get("encoding").and_then(Value::as_str)) {
            (Scheme::EcdsaP256Sha256, Some("raw")) => Ok(ecdsa_raw_to_der(&sig)?),
            _ => Ok(sig),
        }
    }
}

/// Run `plugin command` with `request` (plus the protocol version) on stdin;
/// parse its stdout.
async fn call(
    name: &str,
    path: &PathBuf,
    command: &str,
    mut request: Value,
    timeout: Duration,
) -> Result<Value, Error> {
    let span = tracing::debug_span!("signer_plugin", plugin = name, command);
    async {
        let fail = |reason: String| Error::Plugin {
            plugin: name.to_owned(),
            reason,
        };
        request["protocolVersion"] = json!(PROTOCOL_VERSION);
        let mut child = tokio::process::Command::new(path)
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", path.display())))?;
        // Write the request while the answer is read, both under the
        // timeout: a plugin that answers (or hangs) before reading a large
        // request blocks neither side, and a timeout drops (closes) stdin.
        // A plugin that does not read its input is answered by its exit
        // (the write then fails, which is fine). At most MAX_OUTPUT + 1
        // bytes are read: an endless answer is cut off (and the plugin
        // killed on drop), not buffered.
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let input = request.to_string();
        let run = async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    let _ = stdin.write_all(input.as_bytes()).await;
                }
            };
            let read = async {
                let mut out = Vec::new();
                (&mut stdout)
                    .take(MAX_OUTPUT as u64 + 1)
                    .read_to_end(&mut out)
                    .await
                    .map(|_| out)
            };
            let ((), out) = tokio::join!(write, read);
            let out = out?;
            if out.len() > MAX_OUTPUT {
                return Ok(None);
            }
            Ok::<_, std::io::Error>(Some((child.wait().await?, out)))
        };
        let (status, stdout) = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(Some(output))) => output,
            Ok(Ok(None)) => {
                return Err(fail(format!(
                    "{command}: more than {MAX_OUTPUT} bytes of output"
                )));
            }
            Ok(Err(e)) => return Err(fail(format!("{command}: {e}"))),
            Err(_) => {
                return Err(fail(format!(
                    "{command}: no answer within {} s (killed)",
                    timeout.as_secs()
                )));
            }
        };
        let reply: Option<Value> = serde_json::from_slice(&stdout).ok();
        if !status.success() {
            let error = reply.as_ref().and_then(|r| r.get("error"));
            let code = error
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("ERROR");
            let message = error
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("no error message");
            return Err(fail(format!(
                "{command} failed ({status}): {code}: {message}"
            )));
        }
        reply.ok_or_else(|| fail(format!("{command}: the answer is not JSON")))
    }
    .instrument(span)
    .await
}

impl Signer for PluginSigner {
    fn key(&self) -> &Key {
        &self.key
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign<'a>(&'a self, msg: &'a [u8]) -> SignFuture<'a> {
        Box::pin(self.sign_now(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin that neither reads a large request nor answers is cut off
    /// by the timeout (the request does not fit a pipe buffer).
    #[tokio::test]
    async fn a_plugin_that_does_not_read_its_input_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tuf-signer-deaf");
        std::fs::write(
            &path,
            "#!/bin/sh
sleep 30
",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let request = json!({"message": "A".repeat(1 << 20)});
        let started = std::time::Instant::now();
        let err = call("deaf", &path, "sign", request, Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no answer within 1 s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

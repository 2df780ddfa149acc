//! `tuf-signer-file`: the reference external signer plugin
//! (`spec/signer-plugins.md`). Its key IDs are paths of PKCS#8 PEM key
//! files; encrypted ones are opened with `TUF_SIGNER_FILE_PASSPHRASE`. It
//! exists to test the protocol end to end and as a template for KMS
//! plugins.
//!
//! ```text
//! tuf-signer-file get-plugin-metadata | describe-key | sign   (JSON on stdin, JSON on stdout)
//! ```

use std::io::Read;
use std::process::ExitCode;

use base64::Engine;
use serde_json::{Value, json};
use tuf_oci::crypto::PrivateKey;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let mut input = String::new();
    let request: Value = match std::io::stdin().read_to_string(&mut input) {
        Ok(_) if command == "get-plugin-metadata" => Value::Null,
        Ok(_) => match serde_json::from_str(&input) {
            Ok(v) => v,
            Err(e) => return fail("VALIDATION_ERROR", &format!("request is not JSON: {e}")),
        },
        Err(e) => return fail("ERROR", &format!("cannot read stdin: {e}")),
    };
    if command != "get-plugin-metadata" && request["protocolVersion"] != "1" {
        return fail(
            "UNSUPPORTED_CONTRACT_VERSION",
            "this plugin speaks protocol version 1",
        );
    }
    let reply = match command.as_str() {
        "get-plugin-metadata" => Ok(json!({
            "name": "file",
            "version": env!("CARGO_PKG_VERSION"),
            "protocolVersions": ["1"],
            "capabilities": ["describe-key", "sign"],
        })),
        "describe-key" => key(&request).map(|k| {
            let public = k.public_key();
            json!({
                "keyId": request["keyId"],
                "keytype": public.scheme().keytype(),
                "scheme": public.scheme().name(),
                "publicKey": B64.encode(public.to_spki_der()),
                "inputs": ["message"],
            })
        }),
        "sign" => key(&request).and_then(|k| {
            if request["input"]["type"] != "message" {
                return Err((
                    "VALIDATION_ERROR",
                    "this plugin signs whole messages only".to_owned(),
                ));
            }
            let data = request["input"]["data"].as_str().unwrap_or_default();
            let msg = B64
                .decode(data)
                .map_err(|e| ("VALIDATION_ERROR", format!("data is not base64: {e}")))?;
            let sig = k.sign(&msg).map_err(|e| ("ERROR", e.to_string()))?;
            Ok(json!({"keyId": request["keyId"], "signature": B64.encode(sig), "encoding": "der"}))
        }),
        other => Err(("VALIDATION_ERROR", format!("unknown command {other:?}"))),
    };
    match reply {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => fail(code, &message),
    }
}

/// The key file the request's `keyId` names.
fn key(request: &Value) -> Result<PrivateKey, (&'static str, String)> {
    let path = request["keyId"]
        .as_str()
        .ok_or(("VALIDATION_ERROR", "no keyId".to_owned()))?;
    let pem =
        std::fs::read_to_string(path).map_err(|e| ("ACCESS_DENIED", format!("{path}: {e}")))?;
    let passphrase = std::env::var("TUF_SIGNER_FILE_PASSPHRASE").ok();
    PrivateKey::from_pem(&pem, passphrase.as_deref())
        .map(|(k, _)| k)
        .map_err(|e| ("ACCESS_DENIED", format!("{path}: {e}")))
}

/// Report an error the protocol's way: exit 1, JSON on stdout.
fn fail(code: &str, message: &str) -> ExitCode {
    println!("{}", json!({"error": {"code": code, "message": message}}));
    ExitCode::FAILURE
}

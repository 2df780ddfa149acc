//! Gatekeeper external data (externaldata.gatekeeper.sh/v1beta1): a batch of
//! image references in, one item per image out: the trusted digest
//! reference, or an error saying why not.

use serde_json::{Value, json};

use super::{Decision, Enforcer};

const API_VERSION: &str = "externaldata.gatekeeper.sh/v1beta1";

/// Answer the `ProviderRequest` in `body`; `Err` (a message) for a body
/// that is not one.
pub async fn provide(enforcer: &Enforcer, body: &[u8]) -> Result<Value, String> {
    let request: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if request.get("kind").and_then(Value::as_str) != Some("ProviderRequest") {
        return Err(format!("not a {API_VERSION} ProviderRequest"));
    }
    let keys = request
        .pointer("/request/keys")
        .and_then(Value::as_array)
        .ok_or("request.keys is missing")?;
    let mut items = Vec::new();
    for key in keys {
        let Some(image) = key.as_str() else {
            items.push(json!({"key": key, "error": "not a string"}));
            continue;
        };
        items.push(match enforcer.check(image).await {
            Decision::Allowed {
                digest: Some(digest),
                ..
            } => {
                let name = crate::image::ImageRef::parse(image)
                    .map(|i| i.name())
                    .unwrap_or_else(|_| image.to_owned());
                json!({"key": image, "value": format!("{name}@{digest}")})
            }
            Decision::Allowed { detail, .. } => json!({"key": image, "value": detail}),
            Decision::Denied { reason, .. } => json!({"key": image, "error": reason}),
        });
    }
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": "ProviderResponse",
        "response": {"idempotent": true, "items": items, "systemError": ""},
    }))
}

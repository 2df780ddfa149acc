//! Kubernetes `AdmissionReview` (admission.k8s.io/v1): validate every image
//! of a Pod or workload, and, mutating, pin verified tags to their digests.

use base64::Engine;
use serde_json::{Value, json};

use super::{Decision, Enforcer, pod_images};

/// Answer the `AdmissionReview` in `body`. `Err` (a message) for a body
/// that is not a review (the server answers 400). With `mutate`, allowed
/// images given by tag are rewritten to `NAME@DIGEST` (a JSON patch), so
/// that the kubelet pulls exactly what was verified.
///
/// Deciding has no side effects beyond caches, so `dryRun` requests are
/// answered like any other (the webhook declares `sideEffects: None`).
pub async fn review(enforcer: &Enforcer, body: &[u8], mutate: bool) -> Result<Value, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let api_version = review.get("apiVersion").and_then(Value::as_str);
    if api_version != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return Err(format!(
            "not an admission.k8s.io/v1 AdmissionReview (apiVersion {api_version:?})"
        ));
    }
    let request = review
        .get("request")
        .ok_or("the AdmissionReview has no request")?;
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .ok_or("request.uid is missing")?;
    let respond = |allowed: bool, message: String, patch: Option<Vec<Value>>| {
        let mut response = json!({ "uid": uid, "allowed": allowed });
        if allowed {
            response["status"] = json!({ "code": 200, "message": message });
        } else {
            response["status"] = json!({ "code": 403, "reason": "Forbidden", "message": message });
        }
        if let Some(patch) = patch.filter(|p| !p.is_empty()) {
            let bytes = serde_json::to_vec(&patch).expect("a patch serializes");
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        Ok(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }))
    };
    let namespace = request
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if enforcer.namespace_exempt(namespace) {
        return respond(true, format!("namespace {namespace} is exempt"), None);
    }
    let kind = request
        .pointer("/kind/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(object) = request.get("object").filter(|o| !o.is_null()) else {
        return respond(true, "no object to check".into(), None);
    };
    let images = pod_images(kind, object);
    if images.is_empty() {
        return respond(true, format!("{kind}: no images"), None);
    }
    let mut denied = Vec::new();
    let mut patch = Vec::new();
    let mut decided: Vec<(String, Decision)> = Vec::new();
    for found in &images {
        let decision = match decided.iter().find(|(i, _)| i == &found.image) {
            Some((_, d)) => d.clone(),
            None => {
                let d = enforcer.check(&found.image).await;
                decided.push((found.image.clone(), d.clone()));
                d
            }
        };
        match decision {
            Decision::Denied { image, reason } => denied.push(format!("image {image}: {reason}")),
            Decision::Allowed {
                image,
                digest: Some(digest),
                ..
            } if mutate && !image.contains('@') => {
                let name = crate::image::ImageRef::parse(&image)
                    .map(|i| i.name())
                    .unwrap_or(image);
                patch.push(json!({"op": "replace", "path": found.pointer, "value": format!("{name}@{digest}")}));
            }
            Decision::Allowed { .. } => {}
        }
    }
    if denied.is_empty() {
        let message = format!("{} image(s) verified", decided.len());
        respond(true, message, mutate.then_some(patch))
    } else {
        respond(false, denied.join("; "), None)
    }
}

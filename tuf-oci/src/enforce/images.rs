//! The images a Kubernetes object would run, with where each is written.

use serde_json::Value;

/// One image in an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodImage {
    /// JSON pointer to the `image` field (for a patch).
    pub pointer: String,
    /// The image reference.
    pub image: String,
}

/// Where the pod spec is, by kind.
fn pod_spec_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some("/spec/template/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Every container, init container and ephemeral container image of a
/// Pod or workload `object` of `kind`; none for other kinds.
pub fn pod_images(kind: &str, object: &Value) -> Vec<PodImage> {
    let Some(base) = pod_spec_pointer(kind) else {
        return Vec::new();
    };
    let Some(spec) = object.pointer(base) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, container) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(image) = container.get("image").and_then(Value::as_str) {
                out.push(PodImage {
                    pointer: format!("{base}/{list}/{i}/image"),
                    image: image.to_owned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_of_every_workload_kind() {
        let spec = json!({"initContainers": [{"image": "a"}], "containers": [{"image": "b"}, {"name": "no-image"}], "ephemeralContainers": [{"image": "c"}]});
        let pod = json!({"spec": spec});
        let found = pod_images("Pod", &pod);
        assert_eq!(
            found
                .iter()
                .map(|i| (i.pointer.as_str(), i.image.as_str()))
                .collect::<Vec<_>>(),
            [
                ("/spec/initContainers/0/image", "a"),
                ("/spec/containers/0/image", "b"),
                ("/spec/ephemeralContainers/0/image", "c")
            ]
        );
        let deployment = json!({"spec": {"template": {"spec": spec}}});
        assert_eq!(pod_images("Deployment", &deployment).len(), 3);
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}});
        assert_eq!(
            pod_images("CronJob", &cron)[1].pointer,
            "/spec/jobTemplate/spec/template/spec/containers/0/image"
        );
        assert!(pod_images("ConfigMap", &json!({})).is_empty());
    }
}

//! The signed envelope, `{"signatures": [...], "signed": {...}}`, and
//! threshold verification.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::canonical::{self, MAX_METADATA_LEN, escape_control_characters};
use super::canonical_check;
use super::canonical_writer::{to_canonical_json, to_canonical_json_within};
use super::fields::{Text, read_once, required};
use super::{Error, ErrorKind, Key, KeyId, Role, Unrecognized};

/// One signature over the canonical form of `signed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// The key ID the signature claims.
    pub keyid: KeyId,
    /// The signature, lowercase hex.
    pub sig: String,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// A metadata file: a role's `signed` object and its signatures.
///
/// The canonical bytes of `signed` are kept as received (or as built), so
/// verification covers every field, known or not.
#[derive(Debug, Clone)]
pub struct Metadata<T> {
    /// The role name this metadata was read or built as.
    role: String,
    /// The typed `signed` object.
    pub signed: T,
    /// The signatures, in file order.
    pub signatures: Vec<Signature>,
    canonical_signed: Vec<u8>,
    /// Signatures this process made over `canonical_signed` with a private
    /// key in memory (key, hex signature): valid by construction, so
    /// threshold checks of this value count them without verifying them
    /// again. Never filled from a file.
    signed_here: Vec<(Key, String)>,
}

impl<T: Role> Metadata<T> {
    /// Parse a top-level role's file (`root`, `timestamp`, `snapshot`,
    /// `targets`). Nothing is verified but the shape.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_slice_as(bytes, T::TYPE.name())
    }

    /// Parse a file of the role named `role` (a delegated targets role, say).
    pub fn from_slice_as(bytes: &[u8], role: &str) -> Result<Self, Error> {
        let err = |kind| Error::new(role, kind);
        if bytes.len() > MAX_METADATA_LEN {
            return Err(err(ErrorKind::TooLarge {
                size: bytes.len(),
                limit: MAX_METADATA_LEN,
            }));
        }
        let text = canonical::utf8_text(bytes).map_err(|e| err(ErrorKind::Json(e.to_string())))?;
        // Pass 1: strict syntax (no floats, no duplicate keys) and the
        // canonical bytes of `signed`, which signatures cover.
        let canonical_signed = match canonical_check::canonical_member(text, "signed") {
            // Canonical as it is (every file tuf-oci writes): no rewrite.
            Some(signed) => bytes[signed].to_vec(),
            None => canonical_signed(bytes).map_err(|e| err(ErrorKind::Json(e)))?,
        };

        // Pass 2: the typed model, straight from the text (UTF-8 already
        // checked: strings are not checked again).
        let envelope: Envelope<T> = typed(text).map_err(|e| {
            err(match role_type(bytes) {
                Some(found) if found != T::TYPE.name() => ErrorKind::WrongType {
                    expected: T::TYPE.name(),
                    found,
                },
                _ => ErrorKind::Json(e),
            })
        })?;
        if envelope.signed.role_type() != T::TYPE {
            return Err(err(ErrorKind::WrongType {
                expected: T::TYPE.name(),
                found: envelope.signed.role_type().name().to_owned(),
            }));
        }
        envelope
            .signed
            .validate()
            .map_err(|e| err(ErrorKind::Invalid(e)))?;
        Ok(Self {
            role: role.to_owned(),
            signed: envelope.signed,
            signatures: envelope.signatures,
            canonical_signed,
            signed_here: Vec::new(),
        })
    }

    /// Wrap a `signed` object built in memory, with no signatures yet.
    pub fn new(role: impl Into<String>, signed: T) -> Result<Self, Error> {
        let role = role.into();
        signed
            .validate()
            .map_err(|e| Error::new(role.clone(), ErrorKind::Invalid(e)))?;
        let canonical_signed = to_canonical_json_within(&signed, signed.encoded_len_hint())
            .map_err(|e| Error::new(role.clone(), ErrorKind::Json(e.to_string())))?;
        Ok(Self {
            role,
            signed,
            signatures: Vec::new(),
            canonical_signed,
            signed_here: Vec::new(),
        })
    }
}

impl<T> Metadata<T> {
    /// The role name this metadata was read or built as.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The OLPC canonical JSON of `signed`: the bytes signatures cover.
    pub fn canonical_signed(&self) -> &[u8] {
        &self.canonical_signed
    }

    /// Add a signature (replacing any earlier one by the same key).
    pub fn add_signature(&mut self, keyid: KeyId, sig: &[u8]) {
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig: hex::encode(sig),
            unrecognized: Unrecognized::new(),
        });
    }

    /// Add a signature this process made over
    /// [`canonical_signed`](Self::canonical_signed) with the private key of
    /// `key`, held in memory: threshold checks of this value count it
    /// without verifying it again.
    pub fn add_signature_made_here(&mut self, key: &Key, keyid: KeyId, sig: &[u8]) {
        self.add_signature(keyid, sig);
        self.signed_here.push((key.clone(), hex::encode(sig)));
    }

    /// The file's bytes: the canonical JSON of the whole envelope, with
    /// control characters in strings escaped so that it is valid JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let signatures = to_canonical_json(&self.signatures).expect("signatures always serialize");
        let signed = escape_control_characters(&self.canonical_signed);
        let mut out = Vec::with_capacity(signed.len() + signatures.len() + 32);
        out.extend_from_slice(b"{\"signatures\":");
        out.extend_from_slice(&escape_control_characters(&signatures));
        out.extend_from_slice(b",\"signed\":");
        out.extend_from_slice(&signed);
        out.push(b'}');
        out
    }

    /// Check that at least `threshold` distinct keys among `keyids` (looked
    /// up in `keys`) signed this metadata.
    ///
    /// Every signature is examined; none aborts the check. Signatures by
    /// unknown or unauthorised keys, undecodable or wrong signatures, keys of
    /// unsupported types, and repeated signatures by one key do not count.
    pub fn verify_threshold(
        &self,
        keys: &BTreeMap<KeyId, Key>,
        keyids: &[KeyId],
        threshold: u32,
    ) -> Result<(), Error> {
        let (counted, rejected) = self.check_signatures(keys, keyids);
        let valid = counted.len() as u32;
        if valid >= threshold && threshold > 0 {
            Ok(())
        } else {
            Err(Error::new(
                self.role.clone(),
                ErrorKind::Threshold {
                    threshold,
                    valid,
                    rejected,
                },
            ))
        }
    }

    /// The authorised keys (among `keyids`, looked up in `keys`) whose
    /// signatures on this metadata verify, each counted once, in file order.
    pub fn valid_signers(&self, keys: &BTreeMap<KeyId, Key>, keyids: &[KeyId]) -> Vec<KeyId> {
        self.check_signatures(keys, keyids).0
    }

    /// The counted signers and, for every other signature, why not.
    fn check_signatures(
        &self,
        keys: &BTreeMap<KeyId, Key>,
        keyids: &[KeyId],
    ) -> (Vec<KeyId>, Vec<String>) {
        let authorised: BTreeSet<&str> = keyids.iter().map(KeyId::as_str).collect();
        let mut counted: Vec<KeyId> = Vec::new();
        // The same public key listed under two key IDs counts once.
        let mut counted_keys: BTreeSet<&str> = BTreeSet::new();
        let mut rejected = Vec::new();
        for signature in &self.signatures {
            let id = signature.keyid.as_str();
            let short: String = id.chars().take(8).collect();
            if counted.iter().any(|c| c.as_str() == id) {
                continue;
            }
            if !authorised.contains(id) {
                rejected.push(format!("key {short}: not a key of this role"));
                continue;
            }
            let Some(key) = keys.get(id) else {
                rejected.push(format!(
                    "key {short}: not in the delegating metadata's keys"
                ));
                continue;
            };
            let made_here = self
                .signed_here
                .iter()
                .any(|(k, sig)| k == key && *sig == signature.sig);
            let outcome = if made_here {
                Ok(())
            } else {
                key.public_key().and_then(|public| {
                    let sig = hex::decode(&signature.sig).map_err(|_| {
                        crate::crypto::Error::BadSignature {
                            scheme: public.scheme().name(),
                        }
                    })?;
                    public.verify(&self.canonical_signed, &sig)
                })
            };
            match outcome {
                Ok(()) if !counted_keys.insert(key.keyval.public.as_str()) => {
                    rejected.push(format!(
                        "key {short}: same public key as another counted key"
                    ));
                }
                Ok(()) => counted.push(signature.keyid.clone()),
                Err(e) => rejected.push(format!("key {short}: {e}")),
            }
        }
        (counted, rejected)
    }
}

/// The canonical form of the member `signed` of the JSON text `bytes`.
fn canonical_signed(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (canonical, signed) =
        canonical::canonicalize_member(bytes, "signed").map_err(|e| e.to_string())?;
    match signed {
        Some(signed) => Ok(canonical[signed].to_vec()),
        None if canonical.first() == Some(&b'{') => Err("missing field \"signed\"".into()),
        None => Err("expected an object with \"signatures\" and \"signed\"".into()),
    }
}

/// The file as the typed model sees it.
struct Envelope<T> {
    signatures: Vec<Signature>,
    signed: T,
}

/// Reads an [`Envelope`] of a file of `file_len` bytes: `signed` through
/// [`Role::deserialize_sized`]. Unknown members are skipped; a member given
/// twice is an error.
struct EnvelopeSeed<T> {
    file_len: usize,
    role: PhantomData<T>,
}

/// `signed`, read knowing the file's length.
struct SignedSeed<T>(usize, PhantomData<T>);

impl<'de, T: Role> DeserializeSeed<'de> for SignedSeed<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize_sized(d, self.0)
    }
}

impl<'de, T: Role> DeserializeSeed<'de> for EnvelopeSeed<T> {
    type Value = Envelope<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Role> Visitor<'de> for EnvelopeSeed<T> {
    type Value = Envelope<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with \"signatures\" and \"signed\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<T>, A::Error> {
        let (mut signatures, mut signed) = (None, None);
        while let Some(Text(name)) = map.next_key()? {
            match &*name {
                "signatures" => {
                    read_once(&mut map, &mut signatures, "signatures")?;
                }
                "signed" if signed.is_some() => return Err(de::Error::duplicate_field("signed")),
                "signed" => {
                    signed = Some(map.next_value_seed(SignedSeed(self.file_len, self.role))?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            signatures: required(signatures, "signatures")?,
            signed: required(signed, "signed")?,
        })
    }
}

/// Deserialize the envelope; on failure, say where in the document.
fn typed<T: Role>(text: &str) -> Result<Envelope<T>, String> {
    let seed = || EnvelopeSeed {
        file_len: text.len(),
        role: PhantomData,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let read = seed()
        .deserialize(&mut de)
        .and_then(|e| de.end().map(|()| e));
    read.map_err(|_| {
        // Re-run with path tracking only on the error path: it is slower.
        let mut de = serde_json::Deserializer::from_str(text);
        let mut track = serde_path_to_error::Track::new();
        match seed().deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track)) {
            Err(e) => format!("{}: {e}", track.path()),
            Ok(_) => "does not match the schema".to_owned(),
        }
    })
}

/// `signed._type` of a document that did not match its schema, to tell a
/// file of another role from a malformed one.
fn role_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        signed: ProbeSigned,
    }
    #[derive(Deserialize)]
    struct ProbeSigned {
        #[serde(rename = "_type")]
        role_type: String,
    }
    serde_json::from_slice::<Probe>(bytes)
        .ok()
        .map(|p| p.signed.role_type)
}

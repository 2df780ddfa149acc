//! Keys in PKCS#11 tokens (HSMs, SoftHSM2), through `cryptoki`.
//!
//! Each module is loaded and initialised once per process. ECDSA P-256 is
//! hashed on the host and signed with `CKM_ECDSA` (SoftHSM has no
//! `CKM_ECDSA_SHA256`), the token's raw `r || s` converted to DER; Ed25519
//! uses `CKM_EDDSA` over the whole message; RSA uses
//! `CKM_SHA256_RSA_PKCS_PSS` with a 32-byte salt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use super::keyref::Pkcs11Uri;
use super::{Error, SignFuture, Signer};
use crate::crypto::hash::HashAlgorithm;
use crate::crypto::{KeyParts, PublicKey, Scheme, ecdsa_raw_to_der};
use crate::metadata::{Key, KeyId};

/// DER of the P-256 curve OID (CKA_EC_PARAMS).
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the Ed25519 OID (CKA_EC_PARAMS).
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// PrintableString "edwards25519", which pkcs11-tool writes instead.
const ED25519_NAMED: &[u8] = b"\x13\x0cedwards25519";

fn p11(context: &str) -> impl FnOnce(CkError) -> Error + '_ {
    move |e| Error::Pkcs11(format!("{context}: {e}"))
}

/// The loaded module at `path`, initialised once per process.
fn module(path: &Path) -> Result<Pkcs11, Error> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .expect("PKCS#11 module table");
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let context = format!("loading module {}", path.display());
    let pkcs11 = Pkcs11::new(path).map_err(p11(&context))?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(p11(&context)(e)),
    }
    modules.insert(path.to_owned(), pkcs11.clone());
    Ok(pkcs11)
}

/// A logged-in read-write session on the token the URI names.
fn session(uri: &Pkcs11Uri) -> Result<Session, Error> {
    let path = match &uri.module_path {
        Some(p) => p.clone(),
        None => std::env::var_os("TUF_OCI_PKCS11_MODULE")
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::Pkcs11(
                    "no module: give module-path= in the URI or set TUF_OCI_PKCS11_MODULE".into(),
                )
            })?,
    };
    let pkcs11 = module(&path)?;
    let slots = pkcs11
        .get_slots_with_token()
        .map_err(p11("listing slots"))?;
    let slot = slots
        .into_iter()
        .find(|s| {
            pkcs11.get_token_info(*s).is_ok_and(|t| {
                uri.token
                    .as_deref()
                    .is_none_or(|label| t.label().trim_end() == label)
            })
        })
        .ok_or_else(|| {
            Error::Pkcs11(format!(
                "no token labelled {:?}",
                uri.token.as_deref().unwrap_or("(any)")
            ))
        })?;
    let session = pkcs11
        .open_rw_session(slot)
        .map_err(p11("opening a session"))?;
    let pin = match (&uri.pin_value, &uri.pin_source) {
        (Some(pin), _) => pin.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map(|s| s.lines().next().unwrap_or_default().to_owned())
            .map_err(|e| {
                Error::Pkcs11(format!("cannot read the PIN file {}: {e}", file.display()))
            })?,
        (None, None) => std::env::var("TUF_OCI_PKCS11_PIN").map_err(|_| {
            Error::Pkcs11(
                "no PIN: give pin-value= or pin-source= in the URI or set TUF_OCI_PKCS11_PIN"
                    .into(),
            )
        })?,
    };
    // Login is per token and process: once logged in, the token accepts any
    // later login. Remember the PIN that logged in (hashed) and hold every
    // later one to it, so a wrong PIN never rides on an earlier login.
    static LOGGED_IN: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let token_key = format!("{}\0{}", path.display(), slot.id());
    let pin_hash = HashAlgorithm::Sha256.digest(pin.as_bytes());
    let mut logged_in = LOGGED_IN
        .get_or_init(Default::default)
        .lock()
        .expect("PKCS#11 login table");
    match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
        Ok(()) => {
            logged_in.insert(token_key, pin_hash);
            Ok(session)
        }
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _))
            if logged_in.get(&token_key) == Some(&pin_hash) =>
        {
            Ok(session)
        }
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn | RvError::PinIncorrect, _)) => {
            Err(Error::Pkcs11("login refused: wrong PIN".into()))
        }
        Err(e) => Err(p11("logging in")(e)),
    }
}

/// The search template for the URI's key of `class`.
fn template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

fn describe(uri: &Pkcs11Uri) -> String {
    match (&uri.object, &uri.id) {
        (Some(label), _) => format!("object {label:?}"),
        (None, Some(id)) => format!("id {}", hex::encode(id)),
        (None, None) => "the key".into(),
    }
}

fn one(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
    kind: &str,
) -> Result<ObjectHandle, Error> {
    let found = session
        .find_objects(&template(uri, class))
        .map_err(p11("searching the token"))?;
    match found.as_slice() {
        [handle] => Ok(*handle),
        [] => Err(Error::Pkcs11(format!(
            "no {kind} with {} on the token",
            describe(uri)
        ))),
        _ => Err(Error::Pkcs11(format!(
            "several {kind}s with {}: add id= to the URI",
            describe(uri)
        ))),
    }
}

/// Unwrap a DER OCTET STRING around an EC point, if the token added one.
/// Raw points are 32 bytes (Ed25519) or 65 (uncompressed P-256); anything
/// else that parses as an OCTET STRING around one of those is unwrapped.
fn ec_point(raw: &[u8]) -> &[u8] {
    match raw {
        [0x04, len, rest @ ..]
            if matches!(raw.len(), 34 | 67) && usize::from(*len) == rest.len() =>
        {
            rest
        }
        _ => raw,
    }
}

/// A private key found on a token: its label, and the signer over it (or
/// why it could not be opened).
pub type TokenKey = (String, Result<Pkcs11Signer, Error>);

/// A key in a PKCS#11 token.
pub struct Pkcs11Signer {
    session: Mutex<Session>,
    private: ObjectHandle,
    scheme: Scheme,
    key: Key,
    key_id: KeyId,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("scheme", &self.scheme)
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Pkcs11Signer {
    /// Every private key on the token the URI names: its label and, opened,
    /// its signer.
    pub fn list(uri: &Pkcs11Uri) -> Result<Vec<TokenKey>, Error> {
        let session = session(uri)?;
        let keys = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(p11("searching the token"))?;
        let mut out = Vec::new();
        for handle in keys {
            let attrs = session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(p11("reading labels"))?;
            let label = match attrs.first() {
                Some(Attribute::Label(l)) => String::from_utf8_lossy(l).into_owned(),
                _ => continue,
            };
            let this = Pkcs11Uri {
                object: Some(label.clone()),
                id: None,
                ..uri.clone()
            };
            out.push((label, Self::open(&this)));
        }
        Ok(out)
    }

    /// Open the private key the URI names, and read its public key.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Error> {
        if uri.object.is_none() && uri.id.is_none() {
            return Err(Error::Pkcs11(
                "name the key with object= or id= in the URI".into(),
            ));
        }
        let session = session(uri)?;
        let private = one(&session, uri, ObjectClass::PRIVATE_KEY, "private key")?;
        let public = one(&session, uri, ObjectClass::PUBLIC_KEY, "public key")?;
        let attrs = session
            .get_attributes(public, &[AttributeType::KeyType])
            .map_err(p11("reading the key type"))?;
        let key_type = match attrs.first() {
            Some(Attribute::KeyType(t)) => *t,
            _ => return Err(Error::Pkcs11("the public key has no key type".into())),
        };
        let get = |types: &[AttributeType]| {
            session
                .get_attributes(public, types)
                .map_err(p11("reading the public key"))
        };
        let public_key = if key_type == KeyType::RSA {
            let attrs = get(&[AttributeType::Modulus, AttributeType::PublicExponent])?;
            let (Some(Attribute::Modulus(n)), Some(Attribute::PublicExponent(e))) =
                (attrs.first(), attrs.get(1))
            else {
                return Err(Error::Pkcs11(
                    "RSA public key without modulus and exponent".into(),
                ));
            };
            PublicKey::from_parts(
                Scheme::RsaPssSha256,
                KeyParts::Rsa {
                    modulus: n,
                    exponent: e,
                },
            )?
        } else if key_type == KeyType::EC || key_type == KeyType::EC_EDWARDS {
            let attrs = get(&[AttributeType::EcParams, AttributeType::EcPoint])?;
            let (Some(Attribute::EcParams(params)), Some(Attribute::EcPoint(point))) =
                (attrs.first(), attrs.get(1))
            else {
                return Err(Error::Pkcs11(
                    "EC public key without parameters and point".into(),
                ));
            };
            let scheme = match params.as_slice() {
                p if p == P256_PARAMS => Scheme::EcdsaP256Sha256,
                p if p == ED25519_PARAMS || p == ED25519_NAMED => Scheme::Ed25519,
                _ => {
                    return Err(Error::Pkcs11(
                        "EC key on a curve other than P-256 or Ed25519".into(),
                    ));
                }
            };
            PublicKey::from_parts(scheme, KeyParts::Raw(ec_point(point)))?
        } else {
            return Err(Error::Pkcs11(format!("unsupported key type {key_type}")));
        };
        let key = Key::from_public(&public_key);
        let key_id = key.key_id();
        Ok(Self {
            session: Mutex::new(session),
            private,
            scheme: public_key.scheme(),
            key,
            key_id,
        })
    }

    /// Generate a key pair for `scheme` on the token (label `object`, and
    /// `id` when given; private half sensitive and not extractable), then
    /// open it.
    pub fn generate(uri: &Pkcs11Uri, scheme: Scheme) -> Result<Self, Error> {
        let session = session(uri)?;
        if !session
            .find_objects(&template(uri, ObjectClass::PRIVATE_KEY))
            .map_err(p11("searching"))?
            .is_empty()
        {
            return Err(Error::Pkcs11(format!(
                "the token already holds a key with {}",
                describe(uri)
            )));
        }
        let mut public = vec![Attribute::Token(true), Attribute::Verify(true)];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ];
        for t in [&mut public, &mut private] {
            if let Some(label) = &uri.object {
                t.push(Attribute::Label(label.as_bytes().to_vec()));
            }
            if let Some(id) = &uri.id {
                t.push(Attribute::Id(id.clone()));
            }
        }
        let mechanism = match scheme {
            Scheme::Ed25519 => {
                public.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
            Scheme::EcdsaP256Sha256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            _ => {
                public.push(Attribute::ModulusBits(3072.into()));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(p11("generating a key pair"))?;
        drop(session);
        Self::open(uri)
    }

    fn sign_now(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let session = self.session.lock().expect("PKCS#11 session lock");
        let signing = p11("signing");
        match self.scheme {
            Scheme::EcdsaP256Sha256 => {
                let digest = HashAlgorithm::Sha256.digest(msg);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.private, &digest)
                    .map_err(signing)?;
                Ok(ecdsa_raw_to_der(&raw)?)
            }
            Scheme::Ed25519 => {
                let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                session.sign(&mechanism, self.private, msg).map_err(signing)
            }
            _ => {
                let pss = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                };
                session
                    .sign(&Mechanism::Sha256RsaPkcsPss(pss), self.private, msg)
                    .map_err(signing)
            }
        }
    }
}

impl Signer for Pkcs11Signer {
    fn key(&self) -> &Key {
        &self.key
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign<'a>(&'a self, msg: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move { self.sign_now(msg) })
    }
}

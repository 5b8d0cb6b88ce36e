//! A command's first argument, the keyref (docs/keyrings.md#keyrefs):
//! `@<ring>` names a ring of the loaded keyring, anything else is a raw
//! sign key. Which secret signs a new token, and which secrets a token is
//! verified against, is decided here and nowhere else.

use crate::api::api;
use crate::config;
use crate::error::{Rejection, ShownName};
use crate::keyed_hmac;
use crate::keyring;
use crate::keyring_file::{Keyring, Ring};
use crate::token::AnyToken;
use hmac::Mac;
use redis_module::{Context, RedisString};
use std::sync::Arc;

pub enum Keyref<'a> {
    Raw(&'a [u8]),
    /// The keyring as it was when the command began, so that the ring is
    /// the same for the whole command whatever a RELOAD does later.
    Ring {
        keyring: Arc<Keyring>,
        name: &'a [u8],
    },
}

/// How a token verified: `stale` when only a `verify` secret of its ring
/// signed it, so the application should re-sign it (ROTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub stale: bool,
}

impl<'a> Keyref<'a> {
    /// `resolve` against this server's keyring and config, with the
    /// calling connection's ACL user.
    pub fn of(ctx: &Context, arg: &'a [u8]) -> Result<Self, Rejection> {
        Self::resolve(arg, keyring::current(), config::allow_raw_keys(), || {
            current_user(ctx)
        })
    }

    /// Step 2 of docs/errors.md#check-order, after the empty check: the
    /// ring must exist and `user` (the calling connection's ACL user, asked
    /// only for a ring with `users=`) must be on its list, or the reply is
    /// the same "does not exist"; a raw key must be allowed. An `@` keyref
    /// always means a ring, with or without a keyring loaded: it fails
    /// closed, never falling back to a raw key.
    pub fn resolve(
        arg: &'a [u8],
        keyring: Option<Arc<Keyring>>,
        allow_raw_keys: bool,
        user: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<Self, Rejection> {
        let Some(name) = arg.strip_prefix(b"@") else {
            return if allow_raw_keys {
                Ok(Keyref::Raw(arg))
            } else {
                Err(Rejection::RawKeysDisabled)
            };
        };
        let unknown = || Rejection::UnknownRing(ShownName::of(name));
        let keyring = keyring.ok_or_else(unknown)?;
        let ring = keyring.ring(name).ok_or_else(unknown)?;
        if ring.users().is_some() && !user().is_some_and(|user| ring.may_be_used_by(&user)) {
            return Err(unknown());
        }
        Ok(Keyref::Ring { keyring, name })
    }

    fn ring(&self) -> Option<&Ring> {
        match self {
            Keyref::Raw(_) => None,
            Keyref::Ring { keyring, name } => keyring.ring(name),
        }
    }

    /// The owner-index namespace of this keyref's application
    /// (docs/keys.md#owner-index): `r.<ring>`, or for a raw key `k.` and
    /// the first 8 bytes, hex, of HMAC-SHA256(raw key, `sessiongate owner
    /// namespace`), which names the key without showing it.
    pub fn namespace(&self) -> Vec<u8> {
        match self {
            Keyref::Ring { name, .. } => [&b"r."[..], name].concat(),
            Keyref::Raw(key) => {
                let mut mac = keyed_hmac::keyed(key);
                mac.update(b"sessiongate owner namespace");
                let digest = mac.finalize().into_bytes();
                let mut ns = b"k.".to_vec();
                for byte in &digest[..8] {
                    ns.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
                ns
            }
        }
    }

    /// The secret that signs new tokens: the raw key, or the ring's primary.
    pub fn signing_secret(&self) -> &[u8] {
        match (self, self.ring()) {
            (Keyref::Raw(key), _) => key,
            (_, Some(ring)) => ring.primary().bytes(),
            // `resolve` found the ring in this very keyring, which is never
            // changed in place; an empty key would sign nothing that verifies.
            (_, None) => b"",
        }
    }

    /// Whether `token` is signed by the raw key, or by the ring's primary
    /// and then by each of its `verify` secrets; each comparison is in
    /// constant time.
    pub fn verify(&self, token: &AnyToken) -> Option<Verified> {
        let Some(ring) = self.ring() else {
            let key = self.signing_secret();
            return token.is_signed_by(key).then_some(Verified { stale: false });
        };
        if token.is_signed_by(ring.primary().bytes()) {
            return Some(Verified { stale: false });
        }
        ring.verify()
            .iter()
            .any(|secret| token.is_signed_by(secret.bytes()))
            .then_some(Verified { stale: true })
    }
}

/// The ACL user of the connection running the command; `None` where there
/// is none.
fn current_user(ctx: &Context) -> Option<Vec<u8>> {
    // SAFETY: ctx is the live command context. The string returned is ours;
    // RedisString frees it on drop.
    let name = unsafe { api!(RedisModule_GetCurrentUserName)(ctx.ctx) };
    if name.is_null() {
        return None;
    }
    let name = RedisString::from_redis_module_string(std::ptr::null_mut(), name);
    Some(name.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring_file;
    use crate::token::{self, v2, Tag};

    const OLD: &str = "b2xkLXNlY3JldC0xMjM0NTY3OA=="; // "old-secret-12345678"
    const NEW: &str = "bmV3LXNlY3JldC0xMjM0NTY3OA=="; // "new-secret-12345678"
    const ID: &[u8; 16] = b"AbCdEfGh01234567";

    fn keyring(text: &str) -> Option<Arc<Keyring>> {
        Some(Arc::new(
            keyring_file::parse(text.as_bytes()).expect("a good file"),
        ))
    }

    fn user(name: &str) -> impl FnOnce() -> Option<Vec<u8>> + '_ {
        move || Some(name.as_bytes().to_vec())
    }

    fn rejection(result: Result<Keyref, Rejection>) -> Rejection {
        match result {
            Ok(_) => panic!("resolved"),
            Err(rejection) => rejection,
        }
    }

    #[test]
    fn an_at_sign_always_means_a_ring() {
        let ring = keyring(&format!("app primary {NEW}\n"));
        let unknown = |name: &[u8]| Rejection::UnknownRing(ShownName::of(name));
        assert_eq!(
            rejection(Keyref::resolve(b"@app", None, true, user("u"))),
            unknown(b"app")
        );
        assert_eq!(
            rejection(Keyref::resolve(b"@ap", ring.clone(), true, user("u"))),
            unknown(b"ap")
        );
        assert_eq!(
            rejection(Keyref::resolve(b"@", ring.clone(), true, user("u"))),
            unknown(b"")
        );
        assert!(matches!(
            Keyref::resolve(b"@app", ring.clone(), false, user("u")),
            Ok(Keyref::Ring { .. })
        ));
        assert!(matches!(
            Keyref::resolve(b"app", ring.clone(), true, user("u")),
            Ok(Keyref::Raw(b"app"))
        ));
        assert_eq!(
            rejection(Keyref::resolve(b"app", ring, false, user("u"))),
            Rejection::RawKeysDisabled
        );
    }

    #[test]
    fn a_user_off_the_list_is_told_the_ring_does_not_exist() {
        let ring = keyring(&format!("app primary {NEW} users=web,api\n"));
        let unknown = Rejection::UnknownRing(ShownName::of(b"app"));
        assert!(Keyref::resolve(b"@app", ring.clone(), true, user("web")).is_ok());
        assert!(Keyref::resolve(b"@app", ring.clone(), true, user("api")).is_ok());
        assert_eq!(
            rejection(Keyref::resolve(b"@app", ring.clone(), true, user("other"))),
            unknown
        );
        assert_eq!(
            rejection(Keyref::resolve(b"@app", ring, true, || None)),
            unknown
        );
        let open = keyring(&format!("app primary {NEW}\n"));
        let asked = std::cell::Cell::new(false);
        let resolved = Keyref::resolve(b"@app", open, true, || {
            asked.set(true);
            None
        });
        assert!(resolved.is_ok() && !asked.get(), "no users=, no question");
    }

    #[test]
    fn the_primary_signs_and_verify_secrets_still_verify() {
        let before = keyring(&format!("app primary {OLD}\n"));
        let during = keyring(&format!("app primary {NEW}\napp verify {OLD}\n"));
        let after = keyring(&format!("app primary {NEW}\n"));
        let signer = Keyref::resolve(b"@app", before, true, user("u")).expect("ring");
        assert_eq!(signer.signing_secret(), b"old-secret-12345678");
        let tag = Tag::of_slot(42).expect("a slot");
        let two = v2::mint(signer.signing_secret(), tag, ID);
        let one = token::format(ID, &token::sign(signer.signing_secret(), ID));
        for minted in [two.as_bytes(), &one[..]] {
            let minted = AnyToken::parse(minted).expect("a token");
            assert_eq!(signer.verify(&minted), Some(Verified { stale: false }));
            let during = Keyref::resolve(b"@app", during.clone(), true, user("u")).expect("ring");
            assert_eq!(during.signing_secret(), b"new-secret-12345678");
            assert_eq!(during.verify(&minted), Some(Verified { stale: true }));
            let after = Keyref::resolve(b"@app", after.clone(), true, user("u")).expect("ring");
            assert_eq!(after.verify(&minted), None);
        }
        assert_eq!(signer.namespace(), b"r.app");
        let raw = Keyref::resolve(b"old-secret-12345678", None, true, user("u")).expect("raw");
        // HMAC-SHA256("old-secret-12345678", "sessiongate owner namespace"), by openssl.
        assert_eq!(raw.namespace(), b"k.8187166df952a851");
        let minted = AnyToken::parse(two.as_bytes()).expect("a token");
        assert_eq!(raw.verify(&minted), Some(Verified { stale: false }));
    }
}

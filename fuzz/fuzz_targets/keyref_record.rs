//! Keyrefs and v2 records on arbitrary input. `Keyref::resolve` never
//! panics and keeps docs/keyrings.md#keyrefs: an `@` keyref is a ring or
//! the unknown-ring error (never a raw key), the ring only for a user its
//! `users=` lists, a raw key only when raw keys are allowed; a token
//! verifies exactly when the reference HMAC under one of the ring's
//! secrets (or the raw key) signs it, and is stale exactly when only a
//! verify secret does. `Record::decode` never panics, and what it reads
//! encodes back to the same bytes (docs/keys.md#v2-record).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use reference::{base64, hmac_hex};
use sessiongate::error::Rejection;
use sessiongate::keyref::{Keyref, Verified};
use sessiongate::keyring_file::{self, Keyring};
use sessiongate::record::{Owner, Record};
use sessiongate::token::{self, v2, AnyToken, Tag};
use std::sync::{Arc, OnceLock};

const SECRETS: [&[u8]; 3] = [b"primary-secret-0123", b"verify-secret-45678", b"other-ring-9abcdef0"];
const USERS: [&[u8]; 3] = [b"web", b"api", b"default"];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    keyref: Keyref_<'a>,
    allow_raw: bool,
    user: Option<u8>,
    /// Which secret (or the keyref's bytes, past the list) signs the token.
    signer: u8,
    version_two: bool,
    slot: u16,
    id: [u8; 16],
    tamper: Option<(u8, u8)>,
    record: &'a [u8],
    fields: Option<(i64, Option<i64>, Option<(&'a [u8], &'a [u8])>, Option<&'a [u8]>)>,
}

#[derive(Arbitrary, Debug)]
enum Keyref_<'a> {
    Ring(u8),
    Any(&'a [u8]),
}

fn keyring() -> Arc<Keyring> {
    static KEYRING: OnceLock<Arc<Keyring>> = OnceLock::new();
    KEYRING
        .get_or_init(|| {
            let text = format!(
                "app primary {}\napp verify {}\nbound primary {} users=web,api\n",
                String::from_utf8_lossy(&base64(SECRETS[0])),
                String::from_utf8_lossy(&base64(SECRETS[1])),
                String::from_utf8_lossy(&base64(SECRETS[2])),
            );
            Arc::new(keyring_file::parse(text.as_bytes()).expect("the fixed keyring"))
        })
        .clone()
}

fuzz_target!(|input: Input| {
    check_keyref(&input);
    check_record(&input);
});

fn check_keyref(input: &Input) {
    let arg: Vec<u8> = match input.keyref {
        Keyref_::Ring(pick) => match pick % 4 {
            0 => b"@app".to_vec(),
            1 => b"@bound".to_vec(),
            2 => b"@missing".to_vec(),
            _ => b"@".to_vec(),
        },
        Keyref_::Any(bytes) => bytes.to_vec(),
    };
    if arg.is_empty() {
        return; // step 2's empty check comes first, in validate
    }
    let user = input.user.map(|pick| USERS[usize::from(pick) % USERS.len()]);
    for loaded in [None, Some(keyring())] {
        let resolved = Keyref::resolve(&arg, loaded.clone(), input.allow_raw, || {
            user.map(<[u8]>::to_vec)
        });
        let name = arg.strip_prefix(b"@");
        let expected_ring: Option<&[&[u8]]> = match (name, &loaded) {
            (Some(b"app"), Some(_)) => Some(&SECRETS[..2]),
            (Some(b"bound"), Some(_)) if matches!(user, Some(b"web" | b"api")) => {
                Some(&SECRETS[2..])
            }
            _ => None,
        };
        let keyref = match (resolved, name) {
            (Ok(keyref), Some(_)) => {
                assert!(matches!(keyref, Keyref::Ring { .. }));
                assert!(expected_ring.is_some(), "{arg:?} resolved");
                keyref
            }
            (Ok(keyref), None) => {
                assert!(input.allow_raw && matches!(keyref, Keyref::Raw(raw) if raw == arg));
                keyref
            }
            (Err(Rejection::UnknownRing(shown)), Some(name)) => {
                assert!(expected_ring.is_none());
                let shown = shown.as_bytes();
                assert!(shown.len() <= 67);
                assert!(shown.iter().all(|b| b.is_ascii_alphanumeric() || b"_.-?".contains(b)));
                if name.len() <= 64 && name.iter().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b)) {
                    assert_eq!(shown, name);
                }
                continue;
            }
            (Err(Rejection::RawKeysDisabled), None) => {
                assert!(!input.allow_raw);
                continue;
            }
            (Err(other), _) => panic!("{arg:?}: {other:?}"),
        };
        let secrets: Vec<&[u8]> = match expected_ring {
            Some(secrets) => secrets.to_vec(),
            None => vec![&arg[..]],
        };
        assert_eq!(keyref.signing_secret(), secrets[0]);
        check_verify(input, &keyref, &secrets);
    }
}

fn check_verify(input: &Input, keyref: &Keyref, secrets: &[&[u8]]) {
    let signer: &[u8] = SECRETS
        .get(usize::from(input.signer) % 4)
        .copied()
        .unwrap_or(secrets[0]);
    let id = reference::id_from(input.id);
    let mut minted = if input.version_two {
        let tag = Tag::of_slot(usize::from(input.slot) % 16384).expect("every slot has a tag");
        v2::mint(signer, tag, &id).to_vec()
    } else {
        token::format(&id, &token::sign(signer, &id)).to_vec()
    };
    if let Some((at, byte)) = input.tamper {
        let at = usize::from(at) % minted.len();
        minted[at] = byte;
    }
    let Some(parsed) = AnyToken::parse(&minted) else {
        return;
    };
    let signed_part = match parsed {
        AnyToken::V1(_) => &minted[3..19],
        AnyToken::V2(_) => &minted[..minted.len() - 65],
    };
    let signature = parsed.signature();
    let signs = |secret: &[u8]| &hmac_hex(secret, signed_part) == signature;
    let expected = if signs(secrets[0]) {
        Some(Verified { stale: false })
    } else if secrets[1..].iter().any(|secret| signs(secret)) {
        Some(Verified { stale: true })
    } else {
        None
    };
    assert_eq!(keyref.verify(&parsed), expected);
}

fn check_record(input: &Input) {
    if let Some(record) = Record::decode(input.record) {
        assert_eq!(record.encode(), input.record);
    }
    let Some((created, deadline, owner, label)) = input.fields else {
        return;
    };
    let binding = [b'a'; 32];
    let fits = |bytes: &[u8], max: usize| (1..=max).contains(&bytes.len());
    let owner = owner
        .filter(|(name, namespace)| fits(name, 512) && fits(namespace, 255))
        .map(|(name, namespace)| Owner { name, namespace });
    let record = Record {
        binding: &binding,
        created,
        deadline,
        owner,
        label: label.filter(|label| fits(label, 512)),
    };
    let encoded = record.encode();
    assert_eq!(Record::decode(&encoded), Some(record));
}

//! `keyring_file::parse` on arbitrary text, and on files built line by line
//! from the format of docs/keyrings.md (most of them right, some a field
//! off): it never panics; what it accepts keeps every rule, and written
//! back canonically (`reference::keyring_text`) parses to the same rings;
//! what it refuses names a line of the file and shows no field of it.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use reference::{fingerprint, keyring_text};
use sessiongate::keyring_file::{self, Keyring};

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Text(&'a [u8]),
    Lines(Vec<Line<'a>>),
}

#[derive(Arbitrary, Debug)]
struct Line<'a> {
    content: Content<'a>,
    crlf: bool,
}

#[derive(Arbitrary, Debug)]
enum Content<'a> {
    Blank(Gap),
    Comment(Gap, &'a [u8]),
    Secret {
        indent: Option<Gap>,
        ring: Ring<'a>,
        state: State<'a>,
        secret: Secret<'a>,
        users: Option<Users<'a>>,
        extra: Option<&'a [u8]>,
        gap: Gap,
    },
    Raw(&'a [u8]),
}

/// The spaces and tabs between two fields.
#[derive(Arbitrary, Debug)]
enum Gap {
    Space,
    Tab,
    Mixed(u8),
}

#[derive(Arbitrary, Debug)]
enum Ring<'a> {
    /// One of a few names, so that rings get several lines.
    Named(u8),
    Any(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum State<'a> {
    Primary,
    Verify,
    Any(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum Secret<'a> {
    /// These bytes in standard base64.
    Encoded(&'a [u8]),
    /// `len` bytes (near the limits, or any up to 1100) in standard base64.
    Sized {
        len: u16,
        fill: u8,
        at_limit: bool,
    },
    Any(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum Users<'a> {
    /// `users=` and a few known names.
    Named(Vec<u8>),
    Any(&'a [u8]),
}

const RINGS: [&str; 4] = ["app", "other", "a.b-c_D9", "x"];
const USERS: [&str; 3] = ["web", "api", "default"];

fuzz_target!(|input: Input| {
    let text = match input {
        Input::Text(text) => text.to_vec(),
        Input::Lines(lines) => lines.iter().flat_map(written).collect(),
    };
    check(&text);
});

fn written(line: &Line) -> Vec<u8> {
    let mut out = Vec::new();
    match &line.content {
        Content::Blank(gap) => out.extend(gap_bytes(gap)),
        Content::Comment(gap, text) => {
            out.extend(gap_bytes(gap));
            out.push(b'#');
            out.extend(text.iter().filter(|&&byte| byte != b'\n'));
        }
        Content::Secret {
            indent,
            ring,
            state,
            secret,
            users,
            extra,
            gap,
        } => {
            if let Some(indent) = indent {
                out.extend(gap_bytes(indent));
            }
            out.extend(match ring {
                Ring::Named(at) => RINGS[usize::from(*at) % RINGS.len()].as_bytes().to_vec(),
                Ring::Any(bytes) => bytes.to_vec(),
            });
            out.extend(gap_bytes(gap));
            out.extend(match state {
                State::Primary => b"primary".to_vec(),
                State::Verify => b"verify".to_vec(),
                State::Any(bytes) => bytes.to_vec(),
            });
            out.extend(gap_bytes(gap));
            out.extend(match secret {
                Secret::Encoded(bytes) => reference::base64(bytes),
                Secret::Sized {
                    len,
                    fill,
                    at_limit,
                } => {
                    let len = match (at_limit, len % 4) {
                        (true, 0) => 15,
                        (true, 1) => 16,
                        (true, 2) => 1024,
                        (true, _) => 1025,
                        (false, _) => usize::from(len % 1100),
                    };
                    reference::base64(&vec![*fill; len])
                }
                Secret::Any(bytes) => bytes.to_vec(),
            });
            if let Some(users) = users {
                out.extend(gap_bytes(gap));
                match users {
                    Users::Named(picks) => {
                        let names: Vec<&str> = picks
                            .iter()
                            .map(|at| USERS[usize::from(*at) % USERS.len()])
                            .collect();
                        out.extend(format!("users={}", names.join(",")).into_bytes());
                    }
                    Users::Any(bytes) => out.extend(*bytes),
                }
            }
            if let Some(extra) = extra {
                out.extend(gap_bytes(gap));
                out.extend(*extra);
            }
        }
        Content::Raw(bytes) => out.extend(bytes.iter().filter(|&&byte| byte != b'\n')),
    }
    out.extend_from_slice(if line.crlf { b"\r\n" } else { b"\n" });
    out
}

fn gap_bytes(gap: &Gap) -> Vec<u8> {
    match gap {
        Gap::Space => vec![b' '],
        Gap::Tab => vec![b'\t'],
        Gap::Mixed(bits) => (0..=bits % 4)
            .map(|at| {
                if bits >> (at + 2) & 1 == 1 {
                    b'\t'
                } else {
                    b' '
                }
            })
            .collect(),
    }
}

fn check(text: &[u8]) {
    match keyring_file::parse(text) {
        Ok(keyring) => {
            keeps_the_rules(&keyring);
            let canonical = keyring_text(&keyring);
            let again = keyring_file::parse(&canonical)
                .unwrap_or_else(|refusal| panic!("the canonical text is refused: {refusal}"));
            assert_eq!(keyring_text(&again), canonical);
        }
        Err(refusal) => {
            let lines = text.split(|&byte| byte == b'\n').count();
            assert!((1..=lines).contains(&refusal.line), "{refusal:?}");
            let message = refusal.to_string();
            // Words this short cannot hold a field of 16 bytes or more (a
            // valid secret has 24 characters or more)...
            for word in message.split(' ') {
                assert!(word.len() < 16, "{message:?}");
            }
            // ... so none of the file's is in the message.
            for field in text
                .split(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
                .filter(|field| field.len() >= 16)
            {
                assert!(
                    !message
                        .as_bytes()
                        .windows(field.len())
                        .any(|window| window == field),
                    "{message:?} shows {field:?}"
                );
            }
        }
    }
}

/// docs/keyrings.md's rules, on what `parse` accepted.
fn keeps_the_rules(keyring: &Keyring) {
    for (name, ring) in keyring.rings() {
        assert!((1..=64).contains(&name.len()), "{name:?}");
        assert!(name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte)));
        assert_eq!(
            keyring.ring(name.as_bytes()).map(|r| r as *const _),
            Some(ring as *const _)
        );
        let secrets: Vec<_> = ring.secrets().collect();
        assert!(
            (1..=8).contains(&secrets.len()),
            "{name}: {} secrets",
            secrets.len()
        );
        assert_eq!(secrets.len(), 1 + ring.verify().len());
        for (_, secret) in secrets {
            assert!((16..=1024).contains(&secret.bytes().len()));
            assert_eq!(secret.fingerprint(), fingerprint(secret.bytes()));
        }
        match ring.users() {
            None => assert!(ring.may_be_used_by(b"anyone")),
            Some(users) => {
                assert!(!users.is_empty());
                for user in users {
                    assert!(!user.is_empty());
                    assert!(!user.contains(&b','));
                    assert!(ring.may_be_used_by(user));
                }
                // No ACL user name has a space.
                assert!(!ring.may_be_used_by(b"no one"));
            }
        }
    }
}

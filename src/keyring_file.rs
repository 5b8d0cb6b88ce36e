//! The keyring file of docs/keyrings.md: its text parsed and checked into
//! rings, or refused whole with the line and the field at fault. Pure, with
//! no Redis types, so that it is unit-tested and fuzzed without a server.
//! Reading the file, the config that names it, RELOAD and the calling ACL
//! user are the server's side and not here.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

pub const MAX_RING_NAME_LEN: usize = 64;
pub const MAX_SECRETS_PER_RING: usize = 8;
pub const MIN_SECRET_LEN: usize = 16;
pub const MAX_SECRET_LEN: usize = 1024;

/// The rings of a file that passed every rule, by name. Ordered by name, so
/// that `KEYRING LIST` answers alike on nodes whose files differ only in
/// the order of their lines.
#[derive(Debug, Default)]
pub struct Keyring {
    rings: BTreeMap<String, Ring>,
}

#[derive(Debug)]
pub struct Ring {
    primary: Secret,
    /// In file order.
    verify: Vec<Secret>,
    /// `None`: no `users=`, so any user may use the ring.
    users: Option<BTreeSet<Box<[u8]>>>,
}

/// A secret's bytes. Its `Debug` shows none of them, so that no `{:?}` of a
/// ring or a keyring can put a secret in a log.
pub struct Secret(Box<[u8]>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Primary,
    Verify,
}

/// Why a file is refused: the line, and what is wrong on it, never what the
/// line holds. A fault of a whole ring names the ring's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub fault: Fault,
}

/// Each variant holds nothing from the file but line numbers, so no
/// message can carry a secret, a ring's name or a user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    RingName,
    MissingState,
    UnknownState,
    MissingSecret,
    SecretEncoding,
    SecretLength,
    /// The same secret, in this ring or another, is on the line it holds.
    SecretRepeated(usize),
    /// A fourth field that does not start with `users=`.
    UnknownField,
    /// A fifth field, or more.
    ExtraField,
    /// Empty, or with a byte no Redis ACL user name has.
    UserName,
    UserRepeated,
    /// Ring faults: the line they hold is where the ring broke the rule.
    SecondPrimary(usize),
    TooManySecrets(usize),
    UsersDiffer(usize),
    NoPrimary,
}

impl Keyring {
    pub fn ring(&self, name: &[u8]) -> Option<&Ring> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|name| self.rings.get(name))
    }

    /// Every ring, by name.
    pub fn rings(&self) -> impl Iterator<Item = (&str, &Ring)> {
        self.rings.iter().map(|(name, ring)| (name.as_str(), ring))
    }
}

impl Ring {
    pub fn primary(&self) -> &Secret {
        &self.primary
    }

    pub fn verify(&self) -> &[Secret] {
        &self.verify
    }

    /// The primary, then the verify secrets in file order: the order tokens
    /// are verified in, and `KEYRING LIST` shows.
    pub fn secrets(&self) -> impl Iterator<Item = (State, &Secret)> {
        std::iter::once((State::Primary, &self.primary))
            .chain(self.verify.iter().map(|secret| (State::Verify, secret)))
    }

    /// The ACL users of `users=`; `None` when any user may.
    pub fn users(&self) -> Option<&BTreeSet<Box<[u8]>>> {
        self.users.as_ref()
    }

    /// Whether the connection's ACL user (by name, which Redis compares
    /// byte for byte) may use the ring.
    pub fn may_be_used_by(&self, acl_user: &[u8]) -> bool {
        self.users
            .as_ref()
            .is_none_or(|users| users.contains(acl_user))
    }
}

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The first 8 bytes of the secret's SHA-256, as 16 lowercase hex
    /// characters: what `KEYRING LIST` shows of it.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(&self.0)[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Primary => "primary",
            State::Verify => "verify",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keyring file line {}: {}", self.line, self.fault)
    }
}

impl std::error::Error for Refusal {}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Fault::*;
        match *self {
            RingName => write!(
                f,
                "<ring> must be 1 to {MAX_RING_NAME_LEN} bytes of A-Z a-z 0-9 _ . -"
            ),
            MissingState => f.write_str("<state> is missing"),
            UnknownState => f.write_str("<state> must be primary or verify"),
            MissingSecret => f.write_str("<secret> is missing"),
            SecretEncoding => f.write_str("<secret> is not standard base64 with padding"),
            SecretLength => write!(
                f,
                "<secret> must decode to {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes"
            ),
            SecretRepeated(first) => write!(f, "<secret> is the same as on line {first}"),
            UnknownField => f.write_str("the fourth field is not users="),
            ExtraField => f.write_str("a fifth field: a line has at most four"),
            UserName => f.write_str("users= has a user name that is empty or holds whitespace or NUL"),
            UserRepeated => f.write_str("users= names a user twice"),
            SecondPrimary(at) => write!(f, "this line's ring has a second primary, on line {at}"),
            TooManySecrets(at) => write!(
                f,
                "this line's ring has more than {MAX_SECRETS_PER_RING} secrets: the {}th is on line {at}",
                MAX_SECRETS_PER_RING + 1
            ),
            UsersDiffer(at) => write!(f, "this line's ring has another users= list on line {at}"),
            NoPrimary => f.write_str("this line's ring has no primary"),
        }
    }
}

/// A file group or others may read: `mode` is the file's `st_mode` (only
/// its permission bits count). Such a file is loaded with a warning.
pub fn readable_by_group_or_others(mode: u32) -> bool {
    mode & 0o044 != 0
}

/// The rings of a keyring file, or the first rule it breaks, reading from
/// the top and each line from the left; a ring without a primary is known
/// only at the end, and the one that starts first is named.
pub fn parse(text: &[u8]) -> Result<Keyring, Refusal> {
    let mut drafts: BTreeMap<String, Draft> = BTreeMap::new();
    // Secrets by their SHA-256, to find one used twice without keeping
    // copies of the secrets themselves.
    let mut seen: HashMap<[u8; 32], usize> = HashMap::new();
    for (index, line) in text.split(|&byte| byte == b'\n').enumerate() {
        let number = index + 1;
        let refused = |fault| Refusal {
            line: number,
            fault,
        };
        let Some(entry) = entry(line).map_err(refused)? else {
            continue;
        };
        let digest: [u8; 32] = Sha256::digest(&entry.secret.0).into();
        if let Some(&first) = seen.get(&digest) {
            return Err(refused(Fault::SecretRepeated(first)));
        }
        seen.insert(digest, number);
        match drafts.get_mut(entry.ring) {
            Some(draft) => draft.add(entry, number)?,
            None => {
                drafts.insert(entry.ring.to_owned(), Draft::new(entry, number));
            }
        }
    }
    if let Some(line) = drafts
        .values()
        .filter(|draft| draft.primary.is_none())
        .map(|draft| draft.first_line)
        .min()
    {
        return Err(Refusal {
            line,
            fault: Fault::NoPrimary,
        });
    }
    let rings = drafts
        .into_iter()
        .filter_map(|(name, draft)| Some((name, draft.into_ring()?)))
        .collect();
    Ok(Keyring { rings })
}

/// One line's secret, its fields checked.
struct Entry<'a> {
    ring: &'a str,
    state: State,
    secret: Secret,
    users: Option<BTreeSet<Box<[u8]>>>,
}

/// A ring as its lines arrive.
struct Draft {
    first_line: usize,
    primary: Option<Secret>,
    verify: Vec<Secret>,
    users: Option<BTreeSet<Box<[u8]>>>,
}

impl Draft {
    fn new(entry: Entry<'_>, line: usize) -> Draft {
        let mut draft = Draft {
            first_line: line,
            primary: None,
            verify: Vec::new(),
            users: entry.users,
        };
        draft.place(entry.state, entry.secret);
        draft
    }

    fn add(&mut self, entry: Entry<'_>, line: usize) -> Result<(), Refusal> {
        let refused = |fault| Refusal {
            line: self.first_line,
            fault,
        };
        if entry.users != self.users {
            return Err(refused(Fault::UsersDiffer(line)));
        }
        if entry.state == State::Primary && self.primary.is_some() {
            return Err(refused(Fault::SecondPrimary(line)));
        }
        if self.verify.len() + usize::from(self.primary.is_some()) == MAX_SECRETS_PER_RING {
            return Err(refused(Fault::TooManySecrets(line)));
        }
        self.place(entry.state, entry.secret);
        Ok(())
    }

    fn place(&mut self, state: State, secret: Secret) {
        match state {
            State::Primary => self.primary = Some(secret),
            State::Verify => self.verify.push(secret),
        }
    }

    fn into_ring(self) -> Option<Ring> {
        Some(Ring {
            primary: self.primary?,
            verify: self.verify,
            users: self.users,
        })
    }
}

/// A line's secret, `None` for a blank line or a comment.
fn entry(line: &[u8]) -> Result<Option<Entry<'_>>, Fault> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = line
        .split(|&byte| byte == b' ' || byte == b'\t')
        .filter(|field| !field.is_empty());
    let Some(ring) = fields.next() else {
        return Ok(None);
    };
    if ring.starts_with(b"#") {
        return Ok(None);
    }
    let ring = ring_name(ring).ok_or(Fault::RingName)?;
    let state = state(fields.next().ok_or(Fault::MissingState)?)?;
    let secret = secret(fields.next().ok_or(Fault::MissingSecret)?)?;
    let users = fields.next().map(users).transpose()?;
    if fields.next().is_some() {
        return Err(Fault::ExtraField);
    }
    Ok(Some(Entry {
        ring,
        state,
        secret,
        users,
    }))
}

fn ring_name(field: &[u8]) -> Option<&str> {
    let allowed = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-');
    if field.len() > MAX_RING_NAME_LEN || !field.iter().all(allowed) {
        return None;
    }
    // Only ASCII is left.
    std::str::from_utf8(field).ok()
}

fn state(field: &[u8]) -> Result<State, Fault> {
    match field {
        b"primary" => Ok(State::Primary),
        b"verify" => Ok(State::Verify),
        _ => Err(Fault::UnknownState),
    }
}

/// Standard base64 with its padding (the STANDARD engine also refuses
/// stray bits in the last character, so each secret has one spelling).
fn secret(field: &[u8]) -> Result<Secret, Fault> {
    let bytes = STANDARD.decode(field).map_err(|_| Fault::SecretEncoding)?;
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
        return Err(Fault::SecretLength);
    }
    Ok(Secret(bytes.into_boxed_slice()))
}

/// `users=<user>[,<user>…]`, as a set: two lines of a ring agree when they
/// name the same users in any order.
fn users(field: &[u8]) -> Result<BTreeSet<Box<[u8]>>, Fault> {
    let list = field.strip_prefix(b"users=").ok_or(Fault::UnknownField)?;
    let mut users = BTreeSet::new();
    for user in list.split(|&byte| byte == b',') {
        if !acl_user_name(user) {
            return Err(Fault::UserName);
        }
        if !users.insert(Box::from(user)) {
            return Err(Fault::UserRepeated);
        }
    }
    Ok(users)
}

/// What Redis allows as an ACL user name: not empty, and no whitespace
/// (C's `isspace`) or NUL, which ACL SETUSER refuses.
fn acl_user_name(name: &[u8]) -> bool {
    !name.is_empty()
        && !name
            .iter()
            .any(|&byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bytes 0..16, 16..32, 32..48 and 48..64, in standard base64.
    const A: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const B: &str = "EBESExQVFhcYGRobHB0eHw==";
    const C: &str = "ICEiIyQlJicoKSorLC0uLw==";
    const D: &str = "MDEyMzQ1Njc4OTo7PD0+Pw==";

    fn refused(text: &str) -> Refusal {
        match parse(text.as_bytes()) {
            Ok(keyring) => panic!("accepted: {keyring:?}"),
            Err(refusal) => refusal,
        }
    }

    /// The refusal, its exact message, and no field of 16 bytes or more
    /// (every secret here) anywhere in the message or its Debug.
    fn assert_refused(text: &str, line: usize, fault: Fault, message: &str) {
        let refusal = refused(text);
        assert_eq!(refusal, Refusal { line, fault }, "{text:?}");
        assert_eq!(refusal.to_string(), message);
        let shown = format!("{refusal} {refusal:?}");
        for field in text.split_whitespace().filter(|field| field.len() >= 16) {
            assert!(!shown.contains(field), "{shown:?} shows {field:?}");
        }
    }

    fn encoded(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn users(names: &[&str]) -> BTreeSet<Box<[u8]>> {
        names
            .iter()
            .map(|name| Box::from(name.as_bytes()))
            .collect()
    }

    #[test]
    fn a_good_file_gives_its_rings() {
        let text = format!(
            "# keyring\r\n\
             \r\n\
             \x20  \t\n\
             app primary {A} users=web,api\r\n\
             other\tprimary\t{C}\n\
             app \t verify  {B}  users=api,web\r\n\
             \x20 # an indented comment\n\
             app verify {D} users=web,api\n"
        );
        let keyring = parse(text.as_bytes()).unwrap();
        let names: Vec<&str> = keyring.rings().map(|(name, _)| name).collect();
        assert_eq!(names, ["app", "other"]);

        let app = keyring.ring(b"app").unwrap();
        assert_eq!(app.primary().bytes(), (0..16).collect::<Vec<u8>>());
        let verify: Vec<&[u8]> = app.verify().iter().map(Secret::bytes).collect();
        assert_eq!(
            verify,
            [
                &(16..32).collect::<Vec<u8>>()[..],
                &(48..64).collect::<Vec<u8>>()[..]
            ]
        );
        let states: Vec<State> = app.secrets().map(|(state, _)| state).collect();
        assert_eq!(states, [State::Primary, State::Verify, State::Verify]);
        assert_eq!(app.users(), Some(&users(&["api", "web"])));
        assert!(app.may_be_used_by(b"web"));
        assert!(app.may_be_used_by(b"api"));
        assert!(!app.may_be_used_by(b"default"));
        assert!(!app.may_be_used_by(b"Web"));
        assert!(!app.may_be_used_by(b""));

        let other = keyring.ring(b"other").unwrap();
        assert_eq!(other.primary().bytes(), (32..48).collect::<Vec<u8>>());
        assert!(other.verify().is_empty());
        assert_eq!(other.users(), None);
        assert!(other.may_be_used_by(b"default"));

        assert!(keyring.ring(b"nope").is_none());
        assert!(keyring.ring(b"").is_none());
        assert!(keyring.ring(b"\xff").is_none());
    }

    #[test]
    fn a_file_of_comments_and_blank_lines_has_no_rings() {
        for text in ["", "\n", "# only\r\n\r\n\t\n"] {
            assert_eq!(parse(text.as_bytes()).unwrap().rings().count(), 0);
        }
    }

    #[test]
    fn a_last_line_needs_no_newline_and_any_ring_name_byte_is_allowed() {
        let name = "A-z.0_9".repeat(10)[..MAX_RING_NAME_LEN].to_owned();
        let keyring = parse(format!("{name} primary {A}").as_bytes()).unwrap();
        assert!(keyring.ring(name.as_bytes()).is_some());
    }

    #[test]
    fn a_bad_ring_name_is_refused() {
        let message = "keyring file line 2: <ring> must be 1 to 64 bytes of A-Z a-z 0-9 _ . -";
        let long = "r".repeat(MAX_RING_NAME_LEN + 1);
        for ring in ["ap!p", "@app", "app/x", "ring\u{e9}", "a\x0bb", &long] {
            let text = format!("x primary {A}\n{ring} primary {B}\n");
            assert_refused(&text, 2, Fault::RingName, message);
        }
    }

    #[test]
    fn a_missing_or_unknown_state_is_refused() {
        assert_refused(
            "\napp\n",
            2,
            Fault::MissingState,
            "keyring file line 2: <state> is missing",
        );
        for state in ["Primary", "VERIFY", "sign", "primaryx"] {
            assert_refused(
                &format!("app {state} {A}\n"),
                1,
                Fault::UnknownState,
                "keyring file line 1: <state> must be primary or verify",
            );
        }
    }

    #[test]
    fn a_missing_secret_is_refused() {
        assert_refused(
            "# c\napp primary \t\r\n",
            2,
            Fault::MissingSecret,
            "keyring file line 2: <secret> is missing",
        );
    }

    #[test]
    fn a_secret_that_is_not_padded_standard_base64_is_refused() {
        let message = "keyring file line 3: <secret> is not standard base64 with padding";
        let url_safe_of_standard = ("+//7//v/+//7//v/+//7/w==", "-__7__v_-__7__v_-__7_w==");
        assert!(parse(format!("app primary {}", url_safe_of_standard.0).as_bytes()).is_ok());
        for secret in [
            A.trim_end_matches('='),                  // unpadded
            "AAECAwQFBgcICQoLDA0ODw=",                // half the padding
            url_safe_of_standard.1,                   // URL-safe alphabet
            "AAECAwQFBgcICQoLDA0ODx==",               // stray bits in the last character
            "AAECAwQFBgcI=CQoLDA0ODw==",              // padding inside
            "AAECAwQFBgcICQoLDA0ODw==\r",             // a second CR is not trailing
            "AAECAwQFBgcICQoLDA0ODw==AAECAwQFBgcICQ", // data after the padding
        ] {
            let text = format!("\n\napp primary {secret}\r\n");
            assert_refused(&text, 3, Fault::SecretEncoding, message);
            assert!(!refused(&text).to_string().contains(secret));
        }
    }

    #[test]
    fn a_secret_decodes_to_16_to_1024_bytes() {
        for len in [MIN_SECRET_LEN, MAX_SECRET_LEN] {
            let secret = vec![7; len];
            let text = format!("app primary {}\n", encoded(&secret));
            let keyring = parse(text.as_bytes()).unwrap();
            assert_eq!(keyring.ring(b"app").unwrap().primary().bytes(), secret);
        }
        for len in [0, 1, MIN_SECRET_LEN - 1, MAX_SECRET_LEN + 1] {
            let text = format!("app primary {}\n", encoded(&vec![7; len]));
            if len == 0 {
                // Nothing to decode is no field at all.
                assert_eq!(refused(&text).fault, Fault::MissingSecret);
                continue;
            }
            assert_refused(
                &text,
                1,
                Fault::SecretLength,
                "keyring file line 1: <secret> must decode to 16 to 1024 bytes",
            );
        }
    }

    #[test]
    fn the_same_secret_twice_is_refused_in_one_ring_or_two() {
        assert_refused(
            &format!("app primary {A}\napp verify {B}\n\napp verify {A}\n"),
            4,
            Fault::SecretRepeated(1),
            "keyring file line 4: <secret> is the same as on line 1",
        );
        // A secret shared by two rings would let the users of one sign for
        // the other's.
        assert_refused(
            &format!("app primary {A}\nother primary {A} users=x\n"),
            2,
            Fault::SecretRepeated(1),
            "keyring file line 2: <secret> is the same as on line 1",
        );
    }

    #[test]
    fn a_fourth_field_must_be_users_and_there_is_no_fifth() {
        for field in ["user=web", "Users=web", "#", "web"] {
            assert_refused(
                &format!("app primary {A} {field}\n"),
                1,
                Fault::UnknownField,
                "keyring file line 1: the fourth field is not users=",
            );
        }
        for extra in ["x", "users=web", "# comment"] {
            assert_refused(
                &format!("app primary {A} users=web {extra}\n"),
                1,
                Fault::ExtraField,
                "keyring file line 1: a fifth field: a line has at most four",
            );
        }
    }

    #[test]
    fn a_users_list_names_each_user_once() {
        for list in [
            "users=",
            "users=,web",
            "users=web,",
            "users=web,,api",
            "users=web\r\r",
            "users=we\x0bb",
            "users=we\x0cb",
            "users=we\0b",
        ] {
            assert_refused(
                &format!("app primary {A} {list}\n"),
                1,
                Fault::UserName,
                "keyring file line 1: users= has a user name that is empty or holds whitespace or NUL",
            );
        }
        let keyring = parse(format!("app primary {A} users=w\u{e9}b,a:b\r\n").as_bytes()).unwrap();
        assert_eq!(
            keyring.ring(b"app").unwrap().users(),
            Some(&users(&["w\u{e9}b", "a:b"]))
        );
        assert_refused(
            &format!("app primary {A} users=web,api,web\n"),
            1,
            Fault::UserRepeated,
            "keyring file line 1: users= names a user twice",
        );
    }

    #[test]
    fn a_ring_has_one_primary() {
        assert_refused(
            &format!("x primary {C}\napp primary {A}\nx verify {D}\napp primary {B}\n"),
            2,
            Fault::SecondPrimary(4),
            "keyring file line 2: this line's ring has a second primary, on line 4",
        );
        // Known only at the end: the ring that starts first is named.
        assert_refused(
            &format!("x primary {C}\n\napp verify {A}\nother verify {D}\napp verify {B}\n"),
            3,
            Fault::NoPrimary,
            "keyring file line 3: this line's ring has no primary",
        );
    }

    #[test]
    fn a_ring_has_at_most_8_secrets() {
        let lines: Vec<String> = (0..=MAX_SECRETS_PER_RING)
            .map(|at| {
                let state = if at == 3 { "primary" } else { "verify" };
                format!("app {state} {}\n", encoded(&[at as u8; 16]))
            })
            .collect();
        let eight = format!("# c\n{}", lines[..MAX_SECRETS_PER_RING].concat());
        let app = parse(eight.as_bytes()).unwrap();
        assert_eq!(app.ring(b"app").unwrap().secrets().count(), 8);
        assert_eq!(app.ring(b"app").unwrap().primary().bytes(), [3; 16]);

        assert_refused(
            &format!("# c\n{}", lines.concat()),
            2,
            Fault::TooManySecrets(10),
            "keyring file line 2: this line's ring has more than 8 secrets: the 9th is on line 10",
        );
    }

    #[test]
    fn every_line_of_a_ring_has_the_same_users() {
        let message = "keyring file line 1: this line's ring has another users= list on line 3";
        for (first, third) in [
            ("users=web", ""),
            ("", "users=web"),
            ("users=web", "users=web,api"),
            ("users=web", "users=Web"),
        ] {
            let text = format!("app primary {A} {first}\nx primary {C}\napp verify {B} {third}\n");
            assert_refused(&text, 1, Fault::UsersDiffer(3), message);
        }
    }

    #[test]
    fn a_secret_shows_none_of_its_bytes_in_debug() {
        let secret = [0xab; 16];
        let keyring = parse(format!("app primary {}\n", encoded(&secret)).as_bytes()).unwrap();
        let ring = keyring.ring(b"app").unwrap();
        assert_eq!(format!("{:?}", ring.primary()), "Secret(..)");
        let shown = format!("{keyring:?} {keyring:#?}");
        assert!(shown.contains("Secret(..)"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(!shown.contains(&encoded(&secret)), "{shown}");
    }

    #[test]
    fn the_fingerprint_is_the_start_of_the_secrets_sha256() {
        // `printf 0123456789abcdef | sha256sum` is 9f9f5111f7b27a78…
        let keyring = parse(b"app primary MDEyMzQ1Njc4OWFiY2RlZg==").unwrap();
        let ring = keyring.ring(b"app").unwrap();
        assert_eq!(ring.primary().bytes(), b"0123456789abcdef");
        assert_eq!(ring.primary().fingerprint(), "9f9f5111f7b27a78");
    }

    #[test]
    fn a_file_group_or_others_may_read_is_told_apart() {
        for mode in [0o600, 0o400, 0o700, 0o100600, 0o620, 0o602, 0o622] {
            assert!(!readable_by_group_or_others(mode), "{mode:o}");
        }
        for mode in [0o640, 0o604, 0o644, 0o100644, 0o040, 0o004] {
            assert!(readable_by_group_or_others(mode), "{mode:o}");
        }
    }
}

//! The pure argument checks of docs/errors.md#check-order, for every command,
//! on arbitrary argument lists: the `validate` functions chained in the
//! commands' order (as `src/commands.rs` chains them) must give the same
//! first rejection as the order restated here from docs/errors.md, with the
//! reference checks of the `reference` crate. Steps 8, 9 and 12 need the
//! store and are not here: a token that passes step 7 is taken as a live
//! session's.
//!
//! Also `validate::expiry` on its own, for any ttl and any `now`, near
//! i64::MAX and i64::MIN included: no overflow, no panic, the reference
//! deadline, and never before `now`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use reference::{hmac_hex, id_from, is_token_shape};
use sessiongate::error::Rejection;
use sessiongate::validate;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Start,
    Expire,
    Pset,
    Pget,
    Pdel,
    End,
    Ttl,
    Pgetall,
    Pmget,
    Pmset,
}

/// An integer near the edges, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Int {
    Any(i64),
    Max(u16),
    Min(u16),
    /// The largest ttl whose deadline from `now` still fits, plus `delta`.
    LastFromNow(i8),
    ThousandthOfMax(i8),
    Small(i8),
}

impl Int {
    fn value(self, now: i64) -> i64 {
        match self {
            Int::Any(v) => v,
            Int::Max(below) => i64::MAX - i64::from(below),
            Int::Min(above) => i64::MIN + i64::from(above),
            Int::LastFromNow(delta) => {
                (i64::MAX.saturating_sub(now.max(0)) / 1000).saturating_add(i64::from(delta))
            }
            Int::ThousandthOfMax(delta) => i64::MAX / 1000 + i64::from(delta),
            Int::Small(v) => i64::from(v),
        }
    }
}

/// The token argument: bytes as given, or a well-formed token whose
/// signature is right for the sign key given (or for another key), so that
/// the checks after step 7 are reached.
#[derive(Arbitrary, Debug)]
enum TokenArg<'a> {
    Given,
    Minted {
        id: [u8; 16],
        with_key: Option<&'a [u8]>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    command: Command,
    /// The arguments after the command name.
    argv: Vec<&'a [u8]>,
    token: TokenArg<'a>,
    /// What Redis' integer parser makes of the ttl argument (`None`: not an
    /// integer). The parser itself is Redis', not the module's.
    ttl: Option<Int>,
    now: Int,
    /// Small limits reach the too-long errors; `None` is the default.
    max_name: Option<u8>,
    max_data: Option<u8>,
}

const DEFAULT_MAX_NAME: usize = 200;
const DEFAULT_MAX_DATA: usize = 8_000_000;

struct Limits {
    name: usize,
    data: usize,
}

fuzz_target!(|input: Input| {
    let now = input.now.value(0);
    let ttl = input.ttl.map(|t| t.value(now));
    let limits = Limits {
        name: input.max_name.map_or(DEFAULT_MAX_NAME, usize::from),
        data: input.max_data.map_or(DEFAULT_MAX_DATA, usize::from),
    };

    check_expiry(ttl, now);

    let mut argv: Vec<Vec<u8>> = input.argv.iter().map(|a| a.to_vec()).collect();
    if let (TokenArg::Minted { id, with_key }, true) = (&input.token, argv.len() > 1) {
        let id = id_from(*id);
        let key = with_key.unwrap_or(&argv[0]);
        let mut minted = b"v1.".to_vec();
        minted.extend_from_slice(&id);
        minted.push(b'.');
        minted.extend_from_slice(&hmac_hex(key, &id));
        argv[1] = minted;
    }
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();

    let module = module_checks(input.command, &argv, ttl, now, &limits);
    let spec = spec_checks(input.command, &argv, ttl, now, &limits);
    assert_eq!(
        module, spec,
        "{:?} {argv:?} ttl {ttl:?} now {now}",
        input.command
    );
});

/// `validate::expiry` against the reference, for any pair of integers.
fn check_expiry(ttl: Option<i64>, now: i64) {
    let got = validate::expiry(ttl, now);
    let want = reference::expiry(ttl, now);
    assert_eq!(got, want, "expiry({ttl:?}, {now})");
    if let Ok(Some(at)) = got {
        assert!(at >= now, "expiry({ttl:?}, {now}) = {at}, before now");
    }
}

/// What the checks let through: the deadline START and EXPIRE computed.
type Passed = Option<Option<i64>>;

/// The module's side: `validate` chained as `src/commands.rs` chains it.
fn module_checks(
    command: Command,
    argv: &[&[u8]],
    ttl: Option<i64>,
    now: i64,
    limits: &Limits,
) -> Result<Passed, Rejection> {
    use Command::*;
    let verified = |key: &[u8], tok: &[u8]| -> Result<(), Rejection> {
        let token = validate::token(tok)?;
        if token.is_signed_by(key) {
            Ok(())
        } else {
            Err(Rejection::ForgedSignature)
        }
    };
    let name = |arg: &[u8]| validate::payload_name(arg, limits.name);
    let data = |arg: &[u8]| validate::payload_data(arg, limits.data);
    match (command, argv) {
        (Start, [key, _ttl]) => {
            validate::sign_key(key)?;
            Ok(Some(validate::expiry(ttl, now)?))
        }
        (Expire, [key, tok, _ttl]) => {
            let key = validate::sign_key(key)?;
            let token = validate::token(tok)?;
            let at = validate::expiry(ttl, now)?;
            if !token.is_signed_by(key) {
                return Err(Rejection::ForgedSignature);
            }
            Ok(Some(at))
        }
        (Pset, [key, tok, n, d]) => {
            verified(validate::sign_key(key)?, tok)?;
            name(n)?;
            data(d)?;
            Ok(None)
        }
        (Pget | Pdel, [key, tok, n]) => {
            verified(validate::sign_key(key)?, tok)?;
            name(n)?;
            Ok(None)
        }
        (End | Ttl | Pgetall, [key, tok]) => {
            verified(validate::sign_key(key)?, tok)?;
            Ok(None)
        }
        (Pmget, [key, tok, names @ ..]) if !names.is_empty() => {
            verified(validate::sign_key(key)?, tok)?;
            names.iter().try_for_each(|n| name(n))?;
            Ok(None)
        }
        (Pmset, [key, tok, rest @ ..]) if !rest.is_empty() && rest.len().is_multiple_of(2) => {
            verified(validate::sign_key(key)?, tok)?;
            for pair in rest.chunks_exact(2) {
                name(pair[0])?;
                data(pair[1])?;
            }
            Ok(None)
        }
        _ => Err(Rejection::WrongArity),
    }
}

/// The docs' side: docs/errors.md's numbered steps (and its PMGET/PMSET
/// rows in #by-command), one after the other, on plain predicates.
fn spec_checks(
    command: Command,
    argv: &[&[u8]],
    ttl: Option<i64>,
    now: i64,
    limits: &Limits,
) -> Result<Passed, Rejection> {
    use Command::*;
    use Rejection::*;
    // 1. Arity, counting the command name.
    let words = argv.len() + 1;
    let arity_ok = match command {
        Start | End | Ttl | Pgetall => words == 3,
        Expire | Pget | Pdel => words == 4,
        Pset => words == 5,
        Pmget => words >= 4,
        Pmset => words >= 5 && (words - 3).is_multiple_of(2),
    };
    if !arity_ok {
        return Err(WrongArity);
    }
    let ttl_step = || reference::expiry(ttl, now);
    let mut deadline = None;
    // 2.
    let key = argv[0];
    if key.is_empty() {
        return Err(EmptySignKey);
    }
    // 3.
    if command == Start {
        return Ok(Some(ttl_step()?));
    }
    // 4., 5.
    let tok = argv[1];
    if tok.is_empty() {
        return Err(EmptyToken);
    }
    if !is_token_shape(tok) {
        return Err(MalformedToken);
    }
    // 6.
    if command == Expire {
        deadline = Some(ttl_step()?);
    }
    // 7.
    if tok[20..] != hmac_hex(key, &tok[3..19]) {
        return Err(ForgedSignature);
    }
    // 8., 9.: the store's; taken as passed.
    // 10., 11.: pair by pair for PMSET.
    let name_ok = |n: &[u8]| {
        if n.is_empty() {
            Err(EmptyPayloadName)
        } else if n.len() > limits.name {
            Err(PayloadNameTooLong(limits.name))
        } else {
            Ok(())
        }
    };
    let data_ok = |d: &[u8]| {
        if d.is_empty() {
            Err(EmptyPayloadData)
        } else if d.len() > limits.data {
            Err(PayloadDataTooLong(limits.data))
        } else {
            Ok(())
        }
    };
    match command {
        Pset | Pmset => {
            for pair in argv[2..].chunks(2) {
                name_ok(pair[0])?;
                data_ok(pair[1])?;
            }
        }
        Pget | Pdel | Pmget => {
            for n in &argv[2..] {
                name_ok(n)?;
            }
        }
        Start | Expire | End | Ttl | Pgetall => {}
    }
    Ok(deadline)
}

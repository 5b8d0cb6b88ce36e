//! The constant-time comparison under every signature check
//! (`keyed_hmac::constant_time_eq`, public as `token::signatures_equal`) is
//! plain equality for any two byte strings.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sessiongate::token::signatures_equal;

#[derive(Arbitrary, Debug)]
enum Other<'a> {
    /// Any second string.
    Any(&'a [u8]),
    /// The first one again.
    Same,
    /// The first one with one byte changed (`at` wraps round its length).
    Flipped { at: usize, xor: u8 },
    /// The first one cut short or lengthened.
    Resized { len: usize, fill: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    a: &'a [u8],
    b: Other<'a>,
}

fuzz_target!(|input: Input| {
    let a = input.a;
    let b = match input.b {
        Other::Any(b) => b.to_vec(),
        Other::Same => a.to_vec(),
        Other::Flipped { at, xor } => {
            let mut b = a.to_vec();
            if !b.is_empty() {
                let at = at % b.len();
                b[at] ^= xor;
            }
            b
        }
        Other::Resized { len, fill } => {
            let mut b = a.to_vec();
            b.resize(len % (a.len() + 17), fill);
            b
        }
    };
    assert_eq!(signatures_equal(a, &b), a == b, "{a:?} vs {b:?}");
    assert_eq!(signatures_equal(&b, a), a == b, "{b:?} vs {a:?}");
});

//! Criterion micro-benchmarks of the pure token code: what each command
//! pays before it touches a key. `make bench` runs them.

use criterion::{criterion_group, criterion_main, Criterion};
use sessiongate::token::{self, Token};
use std::hint::black_box;

const SIGN_KEY: &[u8] = b"a-32-byte-long-sign-key-for-hmac";

fn token_code(c: &mut Criterion) {
    let mut rng = rand::rng();
    let id = token::random_id(&mut rng);
    let minted = token::format(&id, &token::sign(SIGN_KEY, &id));

    c.bench_function("mint (random id, sign, format)", |b| {
        b.iter(|| {
            let id = token::random_id(&mut rng);
            token::format(&id, &token::sign(black_box(SIGN_KEY), &id))
        })
    });
    c.bench_function("parse", |b| b.iter(|| Token::parse(black_box(&minted))));
    c.bench_function("sign (keyed state cached)", |b| {
        b.iter(|| token::sign(black_box(SIGN_KEY), black_box(&id)))
    });
    c.bench_function("verify (parse + HMAC + compare)", |b| {
        b.iter(|| Token::parse(black_box(&minted)).is_some_and(|t| t.is_signed_by(SIGN_KEY)))
    });
}

criterion_group!(benches, token_code);
criterion_main!(benches);

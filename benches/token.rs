//! Criterion micro-benchmarks of the pure token code: what each command
//! pays before it touches a key. `make bench` runs them.

use criterion::{criterion_group, criterion_main, Criterion};
use sessiongate::token::{self, v2, AnyToken, Tag, Token};
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

/// The same four for v2 tokens, in a slot with a three-character tag (the
/// longest message), and v1 through `AnyToken` to show what the version
/// dispatch costs.
fn v2_token_code(c: &mut Criterion) {
    let mut rng = rand::rng();
    let tag = (0..token::tag::SLOT_COUNT)
        .filter_map(Tag::of_slot)
        .find(|tag| tag.as_bytes().len() == 3);
    let Some(tag) = tag else { return };
    let id = token::random_id(&mut rng);
    let minted = v2::mint(SIGN_KEY, tag, &id);
    let minted_v1 = token::format(&id, &token::sign(SIGN_KEY, &id));

    c.bench_function("v2 mint (random id, sign, format)", |b| {
        b.iter(|| v2::mint(black_box(SIGN_KEY), tag, &token::random_id(&mut rng)))
    });
    c.bench_function("v2 parse (with canonical-tag check)", |b| {
        b.iter(|| v2::Token::parse(black_box(&minted)))
    });
    c.bench_function("v2 sign (keyed state cached)", |b| {
        b.iter(|| v2::sign(black_box(SIGN_KEY), tag, black_box(&id)))
    });
    c.bench_function("v2 verify (AnyToken parse + HMAC + compare)", |b| {
        b.iter(|| AnyToken::parse(black_box(&minted)).is_some_and(|t| t.is_signed_by(SIGN_KEY)))
    });
    c.bench_function("v1 verify (AnyToken parse + HMAC + compare)", |b| {
        b.iter(|| AnyToken::parse(black_box(&minted_v1)).is_some_and(|t| t.is_signed_by(SIGN_KEY)))
    });
}

criterion_group!(benches, token_code, v2_token_code);
criterion_main!(benches);

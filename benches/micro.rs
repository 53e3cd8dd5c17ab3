//! Micro-benchmarks of the pure functions on the verify hot path:
//! `cargo bench --bench micro`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenward::core::scopes::{Grants, Scope, decode, holds};
use tokenward::core::token_format::{self, Prefix, TokenHash};

fn token_format(c: &mut Criterion) {
    let prefix = Prefix::parse("tw_").expect("a valid prefix");
    let secret = token_format::generate(&prefix).expect("the OS random source");
    let text = secret.expose().to_owned();
    c.bench_function("token parse + checksum", |b| {
        b.iter(|| token_format::check(black_box(&text)))
    });
    c.bench_function("sha-256 of a token", |b| {
        b.iter(|| TokenHash::of(black_box(&text)))
    });
    c.bench_function("generate a token", |b| {
        b.iter(|| token_format::generate(black_box(&prefix)))
    });
}

fn scope_checks(c: &mut Criterion) {
    let held = decode("campaigns:read contacts domain:example.com knowledge-base tokens:read");
    let needed: Scope = "contacts:read".parse().expect("a valid scope");
    c.bench_function("scope check (5 held)", |b| {
        b.iter(|| holds(black_box(&held), black_box(&needed)))
    });
    let owner = Grants::Only(decode("contacts campaigns domains tokens"));
    c.bench_function("effective scopes (token ∩ owner)", |b| {
        b.iter(|| owner.narrow(black_box(&held)))
    });
}

criterion_group!(benches, token_format, scope_checks);
criterion_main!(benches);

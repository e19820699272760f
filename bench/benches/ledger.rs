//! The ledger's pure computations at 10, 1k and 10k grants: the balance at an instant (with one
//! usage event per grant) and the burn-down of one usage event across half the grants.
#![allow(clippy::unwrap_used)]
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use grants_bench::{at, grants, postings};
use grants_domain::ledger::{allocate, apply, balance_at, Effect};
use rust_decimal::Decimal;
use std::hint::black_box;

fn ledger(c: &mut Criterion) {
    let mut balance = c.benchmark_group("balance_at");
    for n in [10usize, 1_000, 10_000] {
        let gs = grants(n);
        let ps = postings(&gs);
        balance.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| balance_at(black_box(&gs), black_box(&ps), at(7200), at(0)));
        });
    }
    balance.finish();

    let mut burn = c.benchmark_group("burn_down");
    for n in [10usize, 1_000, 10_000] {
        let gs = grants(n);
        // Half of everything granted, in one event: it walks the burn order over n/2 grants.
        let amount = Decimal::from(50 * n);
        burn.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || gs.clone(),
                |mut gs| {
                    let a = allocate(&gs, at(7200), amount);
                    apply(&mut gs, &a.deductions, Effect::Consume);
                    (gs, a)
                },
                BatchSize::LargeInput,
            );
        });
    }
    burn.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);

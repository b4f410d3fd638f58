//! Prometheus metrics of the sync worker, registered in the shared registry served at
//! `/metrics`.

use mmf_shared::http::REGISTRY;
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use std::sync::LazyLock;

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("register metric");
    c
}

pub static ROWS_SHIPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "sync_rows_shipped_total",
                "Rows inserted into ClickHouse, replays included (daily_holdings: \
                 positions built)",
            ),
            &["stream"],
        )
        .expect("metric"),
    )
});

pub static BATCH_ROWS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new("sync_batch_rows", "Rows per shipped batch")
                .buckets(prometheus::exponential_buckets(1.0, 4.0, 10).expect("buckets")),
            &["stream"],
        )
        .expect("metric"),
    )
});

pub static BATCH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "sync_batch_seconds",
                "Time to read, insert and acknowledge one batch",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["stream"],
        )
        .expect("metric"),
    )
});

pub static ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("sync_errors_total", "Failed batches (retried with backoff)"),
            &["stream"],
        )
        .expect("metric"),
    )
});

pub static LAG_SECONDS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register(
        GaugeVec::new(
            Opts::new(
                "sync_lag_seconds",
                "Time since the stream last had nothing committed left to ship (0 to the poll \
                 interval when caught up)",
            ),
            &["stream"],
        )
        .expect("metric"),
    )
});

pub static ROWS_BEHIND: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "sync_rows_behind",
                "Rows past the saved cursor (committed or still in flight), counted every 5 s \
                 up to 1,000,000",
            ),
            &["stream"],
        )
        .expect("metric"),
    )
});

pub static XMIN_AGE_SECONDS: LazyLock<Gauge> = LazyLock::new(|| {
    register(
        Gauge::new(
            "sync_xmin_age_seconds",
            "Age of the oldest running Postgres transaction: the saved cursors cannot pass \
             it, and a transaction that commits while it runs may wait for it to end",
        )
        .expect("metric"),
    )
});

pub static HOLDINGS_LAG_DAYS: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "sync_holdings_lag_days",
            "Days between the latest income day distributed and the latest day whose daily \
             holdings are built",
        )
        .expect("metric"),
    )
});

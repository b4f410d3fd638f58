//! One part per closed year of the statements' journal (`journal_by_account`, decision 0034).
//! What a statement read costs is the parts it opens; ClickHouse's merges leave a year's
//! partition in several parts of uneven size, so once a year is over (and a week has passed for
//! rows still arriving with its dates), its partition is merged to one part.

use anyhow::Context;
use chrono::{Datelike, NaiveDate};

/// Rows effective in a year may still arrive this many days into the next.
const SETTLING_DAYS: u32 = 7;

/// Merges every year's partition of `journal_by_account` that [`closed_years`] names. Returns
/// the years merged. A row replayed into a merged year later adds a part, and the next call
/// merges it again.
pub async fn merge_closed_years(
    ch: &clickhouse::Client,
    day: NaiveDate,
) -> anyhow::Result<Vec<u32>> {
    let years = closed_years(ch, day).await?;
    for year in &years {
        ch.query(&format!(
            "OPTIMIZE TABLE journal_by_account PARTITION {year} FINAL"
        ))
        .execute()
        .await
        .with_context(|| format!("merging the journal's year {year}"))?;
        tracing::info!(year, "statements' journal: closed year merged to one part");
    }
    Ok(years)
}

/// The years before `day`'s whose partition has more than one part, once `day` is past the
/// settling week of its year.
pub async fn closed_years(ch: &clickhouse::Client, day: NaiveDate) -> anyhow::Result<Vec<u32>> {
    let closed_before = if day.ordinal() > SETTLING_DAYS {
        day.year()
    } else {
        day.year() - 1
    };
    ch.query(
        "SELECT toUInt32(partition) AS y FROM system.parts \
         WHERE database = currentDatabase() AND table = 'journal_by_account' AND active \
           AND toUInt32(partition) < ? \
         GROUP BY partition HAVING count() > 1 ORDER BY y",
    )
    .bind(closed_before)
    .fetch_all()
    .await
    .context("reading the journal's yearly partitions")
}

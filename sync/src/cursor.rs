//! Saved stream positions (`sync_cursors` in Postgres). A cursor moves only after ClickHouse
//! acknowledged everything up to it, so a restart resumes there and replays at most one batch.

use crate::tables::Cursor;
use anyhow::Context;
use tokio_postgres::GenericClient;

/// The saved position of `stream`, created at the start if the stream is new.
pub async fn load(pg: &impl GenericClient, stream: &str) -> anyhow::Result<Cursor> {
    pg.execute(
        "INSERT INTO sync_cursors (stream) VALUES ($1) ON CONFLICT (stream) DO NOTHING",
        &[&stream],
    )
    .await
    .context("creating sync cursor (are the Postgres migrations applied?)")?;
    let row = pg
        .query_one(
            "SELECT txid::text::bigint, key FROM sync_cursors WHERE stream = $1",
            &[&stream],
        )
        .await?;
    let txid: i64 = row.get(0);
    Ok(Cursor {
        txid: u64::try_from(txid)?,
        key: row.get(1),
    })
}

/// Moves `stream` to `to`, adding `rows` to its shipped count.
pub async fn save(
    pg: &impl GenericClient,
    stream: &str,
    to: &Cursor,
    rows: usize,
) -> anyhow::Result<()> {
    let txid = to.txid.to_string();
    let rows = i64::try_from(rows)?;
    pg.execute(
        "UPDATE sync_cursors SET txid = $2::text::xid8, key = $3, \
         rows_shipped = rows_shipped + $4, updated_at = now() WHERE stream = $1",
        &[&stream, &txid, &to.key, &rows],
    )
    .await
    .context("saving sync cursor")?;
    Ok(())
}

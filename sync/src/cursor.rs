//! Saved stream positions (`sync_cursors` in Postgres). A cursor moves only after ClickHouse
//! acknowledged everything up to it, so a restart resumes there and replays at most one batch.

use crate::tables::Cursor;
use anyhow::Context;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mmf_shared::schema::sql_types::Xid8;
use mmf_shared::schema::sync_cursors::dsl as c;

/// The saved position of `stream`, created at the start if the stream is new.
#[tracing::instrument(level = "debug", skip(pg))]
pub async fn load(pg: &mut AsyncPgConnection, stream: &str) -> anyhow::Result<Cursor> {
    diesel::insert_into(c::sync_cursors)
        .values(c::stream.eq(stream))
        .on_conflict(c::stream)
        .do_nothing()
        .execute(pg)
        .await
        .context("creating sync cursor (are the Postgres migrations applied?)")?;
    // xid8 has no Rust type in diesel; it travels as bigint.
    let (txid, key): (i64, String) = c::sync_cursors
        .find(stream)
        .select((sql::<BigInt>("txid::text::bigint"), c::key))
        .first(pg)
        .await
        .context("reading sync cursor")?;
    Ok(Cursor {
        txid: u64::try_from(txid)?,
        key,
    })
}

/// Moves `stream` to `to`, adding `rows` to its shipped count.
#[tracing::instrument(level = "debug", skip(pg, to), fields(txid = to.txid))]
pub async fn save(
    pg: &mut AsyncPgConnection,
    stream: &str,
    to: &Cursor,
    rows: usize,
) -> anyhow::Result<()> {
    let txid = sql::<Xid8>("")
        .bind::<Text, _>(to.txid.to_string())
        .sql("::text::xid8");
    diesel::update(c::sync_cursors.find(stream))
        .set((
            c::txid.eq(txid),
            c::key.eq(&to.key),
            c::rows_shipped.eq(c::rows_shipped + i64::try_from(rows)?),
            c::updated_at.eq(diesel::dsl::now),
        ))
        .execute(pg)
        .await
        .context("saving sync cursor")?;
    Ok(())
}

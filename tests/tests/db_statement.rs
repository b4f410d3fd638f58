//! `mmf_shared::db::statement`: a hand-written statement runs with typed binds into a typed
//! row, and is prepared once per connection however often it runs.

use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_shared::db::statement;
use mmf_tests::fresh_db;

#[derive(QueryableByName, Debug, PartialEq)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Row {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Text>)]
    label: Option<String>,
}

const SQL: &str =
    "SELECT n, CASE WHEN n > $2 THEN 'big' END AS label FROM unnest($1::int8[]) AS n ORDER BY n";

#[tokio::test]
async fn statements_bind_load_and_are_prepared_once() {
    let db = fresh_db().await;
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    for round in 0..3i64 {
        let rows: Vec<Row> = statement(SQL)
            .bind::<Array<BigInt>, _>(vec![1, 5, 9 + round])
            .bind::<BigInt, _>(4)
            .load(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                Row { n: 1, label: None },
                Row {
                    n: 5,
                    label: Some("big".into())
                },
                Row {
                    n: 9 + round,
                    label: Some("big".into())
                },
            ]
        );
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let prepared: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'SELECT n, CASE%'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(prepared.n, 1, "one prepared statement for three runs");
}

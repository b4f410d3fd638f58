//! The error answers an operation can give whatever its handler does, added to the OpenAPI
//! document in one place so that no operation leaves one out: bad input (extractors), missing
//! or bad credentials, a body too large or not JSON, and a store that cannot be reached.

use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder};

/// Who calls a group of operations, which decides what its authentication can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Signed partner requests: the signature check reads every body (at most 64 KiB).
    Partner,
    /// Ops bearer token: only operations with a request body read one.
    Ops,
}

/// Adds to every operation of `api` (all of which read a store) the answers its extractors,
/// authentication and store can give, unless the operation documents them itself: 400, 401,
/// 413 (when a body is read), 415 (JSON bodies) and 503 (with `Retry-After`).
pub fn document_errors(mut api: OpenApi, caller: Caller) -> OpenApi {
    for item in api.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            add_errors(op, caller);
        }
    }
    api
}

fn add_errors(op: &mut Operation, caller: Caller) {
    let body = op.request_body.as_ref();
    let json_body = body.is_some_and(|b| b.content.contains_key("application/json"));
    let reads_body = body.is_some() || caller == Caller::Partner;
    let mut answers = vec![
        (
            "400",
            "invalid path, query or body (`invalid_field`, `bad_json`, ...)",
        ),
        ("401", "missing or bad credentials"),
    ];
    if reads_body {
        answers.push(("413", "`body_too_large`"));
    }
    if json_body {
        answers.push((
            "415",
            "`bad_content_type`: the body must be application/json",
        ));
    }
    for (status, description) in answers {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error(description).build().into());
    }
    op.responses
        .responses
        .entry("503".to_string())
        .or_insert_with(|| {
            error("`unavailable`: a store cannot be reached; retry after `Retry-After` seconds")
                .header("Retry-After", Header::default())
                .build()
                .into()
        });
}

fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

//! Input hygiene in one place: extractors for JSON bodies, raw bodies, path and query
//! parameters whose every rejection is an [`ApiError`] in the JSON shape, and which refuse
//! control characters (NUL included) in any string before a handler, Postgres or ClickHouse
//! sees it.

use super::ApiError;
use crate::http::ErrorCode;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashSet;

/// A JSON body. Wrong or missing content type is `415 bad_content_type`, a body over the limit
/// `413 body_too_large`, malformed JSON `400 bad_json`, a string with a control character or a
/// missing or mistyped field `400 invalid_field` naming the field.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(bad_content_type());
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse(&bytes).map(Json)
    }
}

/// A JSON body that may be left out: an empty body is `None`; any other body is read as
/// [`Json`] reads it.
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(bad_content_type());
        }
        parse(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// The body as bytes (uploaded files); over the limit is `413 body_too_large`.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

/// Path parameters. A value that is not valid UTF-8 once percent-decoded, contains a control
/// character or does not parse is `400 invalid_field` naming the parameter.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(path_rejection)?;
        // Parsed, so every parameter is there and valid UTF-8.
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("path", e.body_text()))?;
        for (key, value) in &raw {
            refuse_control(key, value)?;
        }
        Ok(Path(v))
    }
}

/// Query parameters. A parameter given twice, a value with a control character or one that
/// does not parse, and an unknown parameter where the type forbids it, are `400 invalid_field`
/// naming the parameter.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::new(ErrorCode::InvalidField, e.body_text()))?;
        let mut seen = HashSet::new();
        for (key, value) in &pairs.0 {
            refuse_control(key, key)?;
            refuse_control(key, value)?;
            if !seen.insert(key.as_str()) {
                return Err(ApiError::invalid(
                    key,
                    format!("query parameter {key} is given more than once"),
                ));
            }
        }
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                Err(ApiError::new(ErrorCode::InvalidField, &text).with_field(&field_of(&text)))
            }
            Err(e) => Err(ApiError::new(ErrorCode::InvalidField, e.body_text())),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn bad_content_type() -> ApiError {
    ApiError::new(
        ErrorCode::BadContentType,
        "Content-Type must be application/json",
    )
}

fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::BodyTooLarge, "request body is too large")
    } else {
        ApiError::new(ErrorCode::BadBody, e.body_text())
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(e) = e else {
        return ApiError::internal(e);
    };
    let field = match e.kind() {
        ErrorKind::ParseErrorAtKey { key, .. }
        | ErrorKind::InvalidUtf8InPathParam { key }
        | ErrorKind::DeserializeError { key, .. } => key.clone(),
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            return ApiError::internal(e.body_text());
        }
        _ => "path".to_string(),
    };
    ApiError::invalid(&field, e.body_text())
}

/// Parses a JSON body: syntax first, then control characters in any string, then the type.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::BadJson,
            format!("Failed to parse the request body as JSON: {e}"),
        )
    })?;
    refuse_control_in(&value, "")?;
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(v)) => Ok(v),
        Err(JsonRejection::JsonDataError(e)) => {
            let text = e.body_text();
            Err(ApiError::new(ErrorCode::InvalidField, &text).with_field(&field_of(&text)))
        }
        Err(e) => Err(ApiError::new(ErrorCode::BadJson, e.body_text())),
    }
}

/// Refuses control characters in every string of a JSON value (keys included); `field` is the
/// dotted path of object keys down to it (array positions are left out: the field is the array).
fn refuse_control_in(v: &Value, field: &str) -> Result<(), ApiError> {
    match v {
        Value::String(s) => refuse_control(field, s),
        Value::Array(items) => items.iter().try_for_each(|i| refuse_control_in(i, field)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let path = if field.is_empty() {
                k.clone()
            } else {
                format!("{field}.{k}")
            };
            refuse_control(&path, k)?;
            refuse_control_in(v, &path)
        }),
        _ => Ok(()),
    }
}

fn refuse_control(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        // The name itself may be what holds the control character: it is shown escaped.
        let shown = field.escape_default().to_string();
        return Err(ApiError::invalid(
            &shown,
            format!("{shown} must not contain control characters"),
        ));
    }
    Ok(())
}

/// Pulls the field name out of a deserialization message (`missing field `amount``,
/// `unknown field `x``, `duplicate field `to``, or the `amount: ...` path prefix).
fn field_of(text: &str) -> String {
    for marker in ["missing field `", "unknown field `", "duplicate field `"] {
        if let Some(i) = text.find(marker) {
            let rest = &text[i + marker.len()..];
            return rest.split('`').next().unwrap_or("").to_string();
        }
    }
    let body = text.split_once("into the target type: ").map_or_else(
        || text.split_once("query string: ").map_or(text, |(_, b)| b),
        |(_, b)| b,
    );
    body.split(':').next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_refused_with_their_field() {
        let err = refuse_control_in(&json!({"name": "a\u{0}b"}), "").unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("invalid_field", Some("name"))
        );
        let err = refuse_control_in(&json!({"holidays": ["2026-01-01", "x\ny"]}), "").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("holidays"));
        let err = refuse_control_in(&json!({"a": {"b": "\u{7f}"}}), "").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("a.b"));
        let err = refuse_control_in(&json!({"k\u{1}": 1}), "").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("k\\u{1}"));
        assert!(refuse_control_in(&json!({"name": "张三 O'Brien", "n": 1, "x": null}), "").is_ok());
    }

    #[test]
    fn fields_from_deserialization_messages() {
        assert_eq!(field_of("Failed to deserialize the JSON body into the target type: missing field `amount` at line 1"), "amount");
        assert_eq!(field_of("Failed to deserialize the JSON body into the target type: amount: invalid type: integer"), "amount");
        assert_eq!(
            field_of("Failed to deserialize query string: hour: invalid digit found in string"),
            "hour"
        );
        assert_eq!(
            field_of("Failed to deserialize query string: duplicate field `to`"),
            "to"
        );
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}

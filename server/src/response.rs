//! The HTTP answers every module gives: one response type, and the short plain-text answers
//! of the health check, the metrics and every refusal.

use http_body_util::Full;
use hyper::Response;
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};

/// The response type of every HTTP answer the server gives.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A short plain-text answer.
pub(crate) fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut response = with_type(
        Bytes::from_static(body.as_bytes()),
        "text/plain; charset=utf-8",
    );
    *response.status_mut() = status;
    response
}

/// A `200` answer of `body`, of type `content_type`, which browsers must take as given
/// (`X-Content-Type-Options: nosniff`: a file is never run as a script or page it is not).
pub(crate) fn with_type(body: Bytes, content_type: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The Prometheus text of `/metrics`.
pub(crate) fn metrics(text: String) -> HttpResponse {
    with_type(
        Bytes::from(text),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

//! The page: plain `GET` and `HEAD` requests are answered with files from one directory
//! (`www/`, with the built client in `www/pkg/`).
//!
//! A handful of static files with known types does not need a file-serving framework; what
//! matters is that no request can reach outside the directory, which [`resolve`] ensures by
//! accepting only plain path segments.

use std::path::{Path, PathBuf};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::HttpResponse;
use crate::handshake::plain;

/// Answers a plain HTTP request with the file it names under `root`.
pub async fn respond<B>(root: Option<&Path>, request: &Request<B>) -> HttpResponse {
    let head = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            let allow = HeaderValue::from_static("GET, HEAD");
            response.headers_mut().insert(ALLOW, allow);
            return response;
        }
    };
    let Some(path) = root.and_then(|root| resolve(root, request.uri().path())) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let Ok(contents) = tokio::fs::read(&path).await else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let length = contents.len();
    let body = if head {
        Full::default()
    } else {
        Full::new(Bytes::from(contents))
    };
    Response::builder()
        .header(CONTENT_TYPE, content_type(&path))
        .header(CONTENT_LENGTH, length)
        // The page and the wasm change with every build; always revalidate.
        .header(CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static headers are valid")
}

/// Maps a URL path to a file under `root`, or `None` when the path has anything but plain
/// segments (`..`, `.`, empty, backslashes, NUL): nothing outside `root` is ever named.
/// A path ending in `/` names that directory's `index.html`.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = url_path.strip_prefix('/')?;
    let mut path = root.to_path_buf();
    let mut segments = relative.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "" if last => path.push("index.html"),
            "" | "." | ".." => return None,
            _ if segment.contains(['\\', '\0']) => return None,
            _ => path.push(segment),
        }
    }
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        // Browsers compile wasm while it downloads only when it has this type.
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_plain_paths_and_index() {
        let root = Path::new("/srv/www");
        assert_eq!(resolve(root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(root, "/pkg/a.js"), Some(root.join("pkg/a.js")));
        assert_eq!(resolve(root, "/pkg/"), Some(root.join("pkg/index.html")));
    }

    #[test]
    fn never_leaves_the_root() {
        let root = Path::new("/srv/www");
        for path in [
            "/../etc/passwd",
            "/pkg/../../x",
            "//etc",
            "/a\\b",
            "/./a",
            "",
            "x",
        ] {
            assert_eq!(resolve(root, path), None, "{path:?}");
        }
    }
}
